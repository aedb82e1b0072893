"""``dynamicrag.label`` called directly: BC targets and the SFT / DPO split."""


import pytest

from orchestrator.api import DataError
from stages.dynamicrag.label import LabelConfig, label
from stages.dynamicrag.schemas import BCTargets
from stages.schemas import Reranked
from tests.stages.dynamicrag.rows import question


def test_label(env):
    table, written, ctx = env
    rows = [question("a", [False, True, False]), question("b", [True, True, True]),
            question("c", [False, False, False]), question("d", [False, True, False])]
    cfg = LabelConfig(max_len=3, bucket_cap=1, total_cap=None, n_sft=1, seed=0)
    out = label(table(Reranked, rows), cfg, ctx("label"))
    bc = written(BCTargets, out.bc)
    # a: L=1, L=2; b: 3 true > max L 2; c: L=0 (L=1, 2 full); d: buckets 1, 2 full
    assert [(r["id"], r["sequence_length"]) for r in bc] == [("a", 1), ("a", 2), ("c", 0)]
    assert bc[0]["sequence"] == [2] and bc[2]["sequence"] == []
    sft, dpo = written(Reranked, out.sft), written(Reranked, out.dpo)
    assert len(sft) == 1 and len(dpo) == 1
    assert sorted(r["id"] for r in sft + dpo) == ["b", "d"]


def test_label_needs_relevance_labels(env):
    table, _, ctx = env
    with pytest.raises(DataError, match="relevant"):
        label(table(Reranked, [question("a", [None, None])]), LabelConfig(), ctx("label"))


def test_split_fractions_and_refusal_of_an_empty_dpo(env):
    from orchestrator.api import ConfigError

    table, written, ctx = env
    rows = [question(q, [False, True, True, True]) for q in "abcdefgh"]   # none fits max_len 3
    cfg = dict(max_len=3, bucket_cap=1, total_cap=None, seed=0)
    out = label(table(Reranked, rows), LabelConfig(n_sft=0.75, **cfg), ctx("label"))
    assert (len(written(Reranked, out.sft)), len(written(Reranked, out.dpo))) == (6, 2)
    # the user's case: n_sft 40 with 30 questions would send none to DPO
    with pytest.raises(ConfigError, match=r"n_sft = 8 sends all 8 questions .* none to DPO") as e:
        label(table(Reranked, rows), LabelConfig(n_sft=8, **cfg), ctx("label"))
    assert "steps.label.n_sft below 8" in e.value.hint
    with pytest.raises(ConfigError, match="a count .* or a fraction in"):
        label(table(Reranked, rows), LabelConfig(n_sft=2.5, **cfg), ctx("label"))
    capped = label(table(Reranked, rows), LabelConfig(n_sft=2, n_dpo=100, **cfg), ctx("label"))
    assert len(written(Reranked, capped.dpo)) == 6      # clamped, with a warning
