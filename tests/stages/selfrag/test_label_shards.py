"""``selfrag.label`` writes the same targets whatever the shard count: its random rules (an
initial [No Retrieval] item kept with probability 0.4, NQ's extra drop) draw from a generator
seeded by the item's id, not by the shard (which gave other targets on 1, 2 or 8 GPUs)."""

from __future__ import annotations

from pathlib import Path

from orchestrator.api import File
from orchestrator.artifacts import Ref
from stages.schemas import Retrieved
from stages.selfrag.label import LabelConfig, label
from stages.selfrag.schemas import IsRelPrompt, MultiRetrievalPrompt, SplitItems, SupportPrompt
from stages.schemas import Model

PROMPTS = Path(__file__).resolve().parents[3] / "conf" / "prompts" / "selfrag"


def _prompt(kind: type[File], name: str):
    return kind(Ref("file", kind.type_name(), "hash", [str(PROMPTS / f"{name}.yaml")]))


def _run(model_env, rows: list[dict], shard: int, num: int) -> list[dict]:
    art, ctx = model_env
    # items that start with [No Retrieval] need no critic call: only the random rules act
    return label(art(SplitItems, rows), art(Retrieved, []), art(Retrieved, []),
                 art(Model, "unused-critic"),
                 _prompt(IsRelPrompt, "relevance"), _prompt(SupportPrompt, "support"),
                 _prompt(MultiRetrievalPrompt, "multi_retrieval"), LabelConfig(),
                 ctx("label", shard, num))


def test_label_two_shards_give_the_unsharded_targets(model_env):
    rows = [{"id": f"q{i}", "dataset": "nq", "question": f"What is {i}?", "answers": [str(i)],
             "gold": [], "decision": "[No Retrieval]", "utility": "[Utility:5]",
             "sentences": [str(i)], "skipped": [False]} for i in range(40)]
    whole = _run(model_env, rows, 0, 1)
    halves = _run(model_env, rows[:20], 0, 2) + _run(model_env, rows[20:], 1, 2)
    assert 0 < len(whole) < 40            # the rules kept some items and dropped others
    assert halves == whole


def test_split_warns_when_the_critic_never_retrieves(model_env, monkeypatch, caplog):
    """An undertrained critic that answers [No Retrieval] for every item used to surface only
    as "retrieve_sentences input 'questions' is empty"; split now says why and what to do."""
    from stages.schemas import Questions
    from stages.selfrag.schemas import RetrievalPrompt, UtilityPrompt
    from stages.selfrag.split import SplitConfig, split
    from tests.stages.conftest import fake_endpoint

    fake_endpoint(monkeypatch, lambda conversation, params: "[No Retrieval]")
    art, ctx = model_env
    rows = [{"id": f"q{i}", "dataset": "synthkb", "question": f"Who founded town {i}?",
             "answers": [f"Ardan founded town {i} in the year 1852."], "gold": ["p1"]}
            for i in range(3)]
    out = split(art(Questions, rows), art(Model, "unused-critic"),
                _prompt(RetrievalPrompt, "retrieval"), _prompt(UtilityPrompt, "utility"),
                SplitConfig(), ctx("split"))
    assert out.queries == [] and len(out.items) == 3
    assert "the critic chose [No Retrieval] for all 3 items from the data" in caplog.text
    caplog.clear()
    no_ret = [{**r, "dataset": "no_retrieval"} for r in rows]   # nothing to retrieve: no warning
    split(art(Questions, no_ret), art(Model, "unused-critic"),
          _prompt(RetrievalPrompt, "retrieval"), _prompt(UtilityPrompt, "utility"),
          SplitConfig(), ctx("split"))
    assert "the critic chose" not in caplog.text
