"""``reinforced_ir.evaluate``'s ``label`` ("a name for the results table", set on every step of
the recipes) was only logged, and with no ``display`` block the end-of-run table showed its
first 8 numbers, MRR@10 (a README column) not among them (audit_eval42, finding 10)."""

from __future__ import annotations

import pytest

from orchestrator.cli.summary import shown
from stages.common.index import IndexConfig
from stages.reinforced_ir.embed import EncoderConfig
from stages.reinforced_ir.evaluate import RetrievalEvalConfig, evaluate
from stages.schemas import Model, Questions
from tests.stages.conftest import index_corpus

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_results_table_gets_the_label_and_the_readmes_columns(model_env, models):
    art, ctx = model_env
    idx = index_corpus(art, ctx, models, IndexConfig(normalize=True, dtype="float32",
                                                     batch_size=8))
    cfg = RetrievalEvalConfig(encoder=EncoderConfig(pooling="mean", normalize=True),
                              label="base retriever")
    queries = [{"id": f"q{i}", "dataset": "scifact", "question": f"Where was Entity {i} born?",
                "answers": [], "gold": [f"p{i}"]} for i in range(4)]
    out = evaluate(art(Questions, queries), idx, art(Model, models["enc"]), cfg, ctx("eval_1"))
    assert out["label"] == "base retriever"
    assert list(shown(out).values()) == ["nDCG@10", "Recall@10", "Recall@1", "MRR@10"]
