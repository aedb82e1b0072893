"""``synthesize``, ``feedback`` and ``mine`` read of the corpus only its id column whole, and
then the rows they use: MS MARCO's 8.8M passages as Python rows cost about 15 GB a process
(``bench/bench_reinforced_ir.py``). A corpus handle that refuses any other whole read proves it;
the rows they pick are the ones a whole read picked."""

from __future__ import annotations

import random

import pytest

from orchestrator.api import DataError
from stages.common.index import IndexConfig
from stages.reinforced_ir.feedback_pairs import FeedbackConfig, feedback
from stages.reinforced_ir.mine import MineConfig, mine
from stages.reinforced_ir.schemas import AugmentationPrompt, Augmented, QualityPrompt, QueryPrompt
from stages.reinforced_ir.synthesize import SynthesizeConfig, synthesize
from stages.schemas import Model, Passages
from tests.stages.conftest import PASSAGES, fake_endpoint, index_corpus
from tests.stages.reinforced_ir.synthesize_helpers import PROMPTS, file_input

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class IdsOnly(Passages):
    """A corpus handle that may be read whole only as its id column."""

    def read(self, columns=None):
        if columns != ["id"]:
            raise AssertionError(f"the corpus was read whole ({columns or 'every column'})")
        return super().read(columns)

    def iter_tables(self, batch_size=65_536, columns=None):
        raise AssertionError("the corpus was streamed whole")


def queries(n: int) -> list[dict]:
    return [{"id": f"a{i}", "dataset": "d", "question": f"Where was Entity {i} born?",
             "answers": [], "gold": [f"p{3 * i}"],
             "augmentations": [f"Entity {3 * i} city", f"city of {i}", f"born {i}"]}
            for i in range(n)]


def test_synthesize_picks_the_sampled_passages_from_their_rows_alone(model_env, monkeypatch):
    art, ctx = model_env
    fake_endpoint(monkeypatch, lambda conv, params: "1" if params["max_tokens"] == 4
                  else "Where was it?")
    cfg = SynthesizeConfig(n_passages=9, seed=3)
    out = synthesize(IdsOnly(art(Passages, PASSAGES).ref), file_input(QueryPrompt,
                     PROMPTS / "query.yaml"), file_input(QualityPrompt, PROMPTS / "quality.yaml"),
                     cfg, ctx("synthesize"))
    # the passages a sample of the rows themselves draws, in its order
    assert [r["gold"] for r in out] == [[p["id"]] for p in random.Random(3).sample(PASSAGES, 9)]


def test_feedback_reads_only_the_source_passages(model_env, models):
    art, ctx = model_env
    corpus = IdsOnly(art(Passages, PASSAGES).ref)
    cfg = FeedbackConfig(require_gain=False, margin=100.0)
    got = feedback(art(Augmented, queries(6)), corpus, art(Model, str(models["enc"])),
                   file_input(AugmentationPrompt, PROMPTS / "augment.yaml"), cfg, ctx("feedback"))
    assert [r["id"] for r in got] == [f"a{i}" for i in range(6)]
    with pytest.raises(DataError, match="1 queries name a source passage that is not in the "
                                        "corpus \\(first: bad\\)"):
        feedback(art(Augmented, queries(2) + [{**queries(1)[0], "id": "bad", "gold": ["nope"]}]),
                 corpus, art(Model, str(models["enc"])),
                 file_input(AugmentationPrompt, PROMPTS / "augment.yaml"), cfg, ctx("feedback"))


def test_mine_reads_only_the_passages_it_keeps(model_env, models):
    art, ctx = model_env
    idx = index_corpus(art, ctx, models, IndexConfig(normalize=True, dtype="float32",
                                                     batch_size=8))
    cfg = MineConfig(top_k=40, rule="95neg", pool=10, keep=4, fallback_lo=5, fallback_hi=40)
    wired = {"index": idx, "encoder": art(Model, str(models["enc"]))}
    whole = mine(art(Augmented, queries(8)), corpus=art(Passages, PASSAGES), cfg=cfg,
                 ctx=ctx("mine"), **wired)
    guarded = mine(art(Augmented, queries(8)), corpus=IdsOnly(art(Passages, PASSAGES).ref),
                   cfg=cfg, ctx=ctx("mine"), **wired)
    assert guarded == whole and all(len(r["neg"]) == 4 for r in whole)
    texts = {f"{p['title']} {p['text']}" for p in PASSAGES}
    assert all(r["pos"][0] in texts and set(r["neg"]) <= texts for r in whole)


def test_mine_names_an_index_built_from_another_corpus(model_env, models):
    art, ctx = model_env
    idx = index_corpus(art, ctx, models, IndexConfig(normalize=True, dtype="float32",
                                                     batch_size=8))
    with pytest.raises(DataError, match=r"mine: \d+ of the passages the index returned are "
                                        r"not in the corpus \(first: 'p\d+'\)") as got:
        mine(art(Augmented, queries(8)), idx, art(Passages, PASSAGES[:30]),
             art(Model, str(models["enc"])), MineConfig(top_k=40), ctx("mine"))
    assert "rebuild the index from this corpus" in got.value.hint
