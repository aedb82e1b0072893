"""pltrdy's ROUGE-L rebuilds each LCS recursively, one call per word: a response against a gold
of about 1,000 words without a "." raised RecursionError, which failed the whole
``dynamicrag.reward`` step (and evaluation). The score is computed."""

from __future__ import annotations

import pytest

pytest.importorskip("rouge")


def test_a_long_sentence_is_scored_not_raised():
    from stages.dynamicrag.reward_logic import score_group
    from stages.lib.metrics.answer import rouge_l_pltrdy

    gold = " ".join(f"w{i}" for i in range(1200))          # one sentence, no "."
    response = " ".join(f"w{i}" for i in range(0, 1200, 7))  # 172 of its words, in order
    recall, precision = 172 / 1200, 1.0
    f = 2 * precision * recall / (precision + recall)
    assert rouge_l_pltrdy(response, [gold]) == pytest.approx(f, abs=1e-6)   # its epsilon
    rewards = score_group("q", [gold], [response, "x"], [[1], []], {"rouge_l": 1.0},
                          rouge="pltrdy").rewards
    assert rewards[0] == pytest.approx(f, abs=1e-6)
