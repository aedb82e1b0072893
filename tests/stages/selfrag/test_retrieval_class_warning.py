"""``selfrag.label`` warns when no generator target of the whole step can start with
[No Retrieval] (audit owndata41 F3: with ``steps.instructions.no_retrieval=0`` the critic chose
[Retrieval] for every item, adaptive retrieval then always retrieved, and nothing said so).
The check reads the whole items table, so a shard that holds only retrieving items (the demo's
made-up no-retrieval instructions come last) does not warn falsely; shard 0 says it once."""

from __future__ import annotations

import logging

from stages.schemas import Model, Retrieved
from stages.selfrag.label import LabelConfig, label
from stages.selfrag.schemas import IsRelPrompt, MultiRetrievalPrompt, SplitItems, SupportPrompt
from tests.stages.selfrag.test_label_shards import _prompt


def _item(i: int, decision: str, dataset: str = "synthkb") -> dict:
    # one short (skipped) sentence: a [Retrieval] item needs no critic call and is kept
    return {"id": f"q{i}", "dataset": dataset, "question": f"What is {i}?", "answers": [str(i)],
            "gold": [], "decision": decision, "utility": "[Utility:5]", "sentences": [str(i)],
            "skipped": [True]}


def _label(model_env, items: SplitItems, shard: int, num: int, cfg=None) -> list[dict]:
    art, ctx = model_env
    return label(items, art(Retrieved, []), art(Retrieved, []), art(Model, "unused-critic"),
                 _prompt(IsRelPrompt, "relevance"), _prompt(SupportPrompt, "support"),
                 _prompt(MultiRetrievalPrompt, "multi_retrieval"), cfg or LabelConfig(),
                 ctx("label", shard, num))


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_label_warns_when_no_item_is_no_retrieval(model_env, caplog):
    art, _ = model_env
    items = art(SplitItems, [_item(i, "[Retrieval]") for i in range(6)])
    with caplog.at_level(logging.INFO):
        out = _label(model_env, SplitItems(items.ref, 0, 3), 0, 2)
        _label(model_env, SplitItems(items.ref, 3, 6), 1, 2)
    assert len(out) == 3
    (warning,) = _warnings(caplog)          # shard 0 alone, counting the whole step
    assert warning.startswith("label: the critic chose [Retrieval] for all 6 items (all shards), "
                              "so no generator target starts with [No Retrieval]")
    assert "adaptive retrieval will always retrieve" in warning
    assert "steps.instructions.no_retrieval" in warning
    # made-up no-retrieval instructions that got [Retrieval] too: the critic is the cause
    caplog.clear()
    made_up = art(SplitItems, [_item(0, "[Retrieval]"), _item(1, "[Retrieval]", "no_retrieval")])
    with caplog.at_level(logging.INFO):
        _label(model_env, made_up, 0, 1)
    (warning,) = _warnings(caplog)
    assert warning.startswith("label: the critic chose [Retrieval] for all 2 items (all shards; "
                              "1 of them made-up instructions that need no documents), so no ")
    assert warning.endswith("; train the critic more (steps.critic.max_steps, epochs) or check "
                            "the judge's labels in its log")


def test_label_does_not_warn_for_a_shard_of_retrieving_items_alone(model_env, caplog):
    art, _ = model_env
    rows = [_item(i, "[Retrieval]") for i in range(3)]
    rows += [_item(i, "[No Retrieval]", "no_retrieval") for i in range(3, 6)]
    items = art(SplitItems, rows)
    with caplog.at_level(logging.INFO):
        _label(model_env, SplitItems(items.ref, 0, 3), 0, 2)   # [Retrieval] items only
    assert not _warnings(caplog)
    # every [No Retrieval] item thinned away by keep_no_retrieval 0: warned, naming the setting
    with caplog.at_level(logging.INFO):
        out = _label(model_env, items, 0, 1, LabelConfig(keep_no_retrieval=0.0))
    assert not any(r["messages"][1]["content"].startswith("[No Retrieval]") for r in out)
    (warning,) = _warnings(caplog)
    assert warning.startswith("label: keep_no_retrieval is 0: it drops all 3 items the critic "
                              "chose [No Retrieval] for, so no generator target starts with")
    assert "raise steps.label.keep_no_retrieval" in warning
