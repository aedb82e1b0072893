"""``reinforced_ir.mine`` mines the same negatives whatever the shard count: its random draws
come from a generator seeded by the query's id, not by the shard (which gave other training
groups on 1, 2 or 8 GPUs)."""

from __future__ import annotations

import pytest

from stages.common.index import IndexConfig
from stages.reinforced_ir.mine import MineConfig, mine
from stages.reinforced_ir.schemas import Augmented, RetrieverData
from stages.schemas import Model, Passages
from tests.stages.conftest import PASSAGES, index_corpus

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_mine_two_shards_give_the_unsharded_groups(model_env, models):
    art, ctx = model_env
    idx = index_corpus(art, ctx, models, IndexConfig(normalize=True, dtype="float32",
                                                     batch_size=8))
    rows = [{"id": f"a{i}", "dataset": "d", "question": f"Where was Entity {i} born?",
             "answers": [], "gold": [f"p{i}"], "augmentations": [f"Entity {i} city"]}
            for i in range(12)]
    # the random rule draws its negatives from the ranks 5..40: every group uses the generator
    cfg = MineConfig(top_k=40, rule="random", pool=10, keep=5, fallback_lo=5, fallback_hi=40)
    wired = {"index": idx, "corpus": art(Passages, PASSAGES),
             "encoder": art(Model, str(models["enc"]))}

    def run(part, shard, num):
        return art(RetrieverData, mine(art(Augmented, part), cfg=cfg, ctx=ctx("mine", shard, num),
                                       **wired)).rows()

    whole = run(rows, 0, 1)
    assert len(whole) == 12 and all(len(r["neg"]) == 5 for r in whole)
    assert run(rows[:6], 0, 2) + run(rows[6:], 1, 2) == whole
