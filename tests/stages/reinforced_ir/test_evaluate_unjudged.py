"""``reinforced_ir.evaluate`` scores the queries with a gold passage id; those without (a BEIR
``queries.jsonl`` holds every split, only the test qrels' are judged) were left out without a
word. The log now counts them, and a set with none judged names what to give, and that given
qrels' query ids must be the questions' ids."""

from __future__ import annotations

import logging

import pytest

from orchestrator.api import DataError
from stages.common.index import IndexConfig
from stages.reinforced_ir.embed import EncoderConfig
from stages.reinforced_ir.evaluate import RetrievalEvalConfig, evaluate
from stages.schemas import Model, Questions
from tests.stages.conftest import index_corpus

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _queries(judged):
    return [{"id": f"q{i}", "dataset": "scifact", "question": f"Where was Entity {i} born?",
             "answers": [], "gold": [f"p{i}"] if i in judged else []} for i in range(6)]


def test_unjudged_queries_are_counted_in_the_log(model_env, models, caplog):
    art, ctx = model_env
    idx = index_corpus(art, ctx, models, IndexConfig(normalize=True, dtype="float32",
                                                     batch_size=8))
    cfg = RetrievalEvalConfig(encoder=EncoderConfig(pooling="mean", normalize=True))
    with caplog.at_level(logging.INFO):
        out = evaluate(art(Questions, _queries({0, 2})), idx, art(Model, models["enc"]), cfg,
                       ctx("eval_1"))
    assert out["queries"] == 2
    assert "4 of 6 queries have no gold passage id (not judged in the qrels) and are not " \
           "scored" in caplog.text
    with pytest.raises(DataError, match="none of the 6 evaluation queries has a gold passage "
                                        "id") as e:
        evaluate(art(Questions, _queries(set())), idx, art(Model, models["enc"]), cfg,
                 ctx("eval_1"))
    assert "qrels" in e.value.hint
    # qrels given for other ids gave this hint too, as if none had been given
    assert "if qrels were given, they judge none of these queries: the qrels' query ids must " \
           "be the questions' ids" in e.value.hint
