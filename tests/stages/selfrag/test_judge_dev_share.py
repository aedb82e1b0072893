"""``selfrag.judge`` warns when its dev split takes a large share of the critic's judgments: a
count set for the paper's data (1,500 of many thousand) took 20 of 57 judgments on 10 of a
user's own questions, for a split the demo never reads, without a word."""

from __future__ import annotations

import logging

from tests.stages.selfrag.test_instructions_and_judge import _judge


def _rows(n):
    return [{"id": f"q{i}", "dataset": "nq", "question": f"Who founded town {i}?",
             "answers": ["Ardan"], "gold": ["1"],
             "ctxs": [{"id": "1", "title": "T", "text": "Ardan founded it.", "score": None}]}
            for i in range(n)]


def test_a_dev_split_taking_a_large_share_is_warned(env, caplog):
    table, _, ctx = env
    with caplog.at_level(logging.WARNING, logger="test.judge"):
        _judge(table, ctx, _rows(8), dev_size=6)
    assert "dev split (dev_size 6) holds 6 of the" in caplog.text
    assert "lower steps.judge.dev_size on data this small" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="test.judge"):
        _judge(table, ctx, _rows(8), dev_size=1)
    assert "dev split" not in caplog.text
