"""``rerank``: the has-answer label and a tiny monoT5-style cross-encoder."""


import pytest

from orchestrator.api import ConfigError
from stages.common.rerank import RerankConfig, rerank
from stages.schemas import Model, Reranked, Retrieved
from tests.stages.conftest import retrieved_rows

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_rerank_methods(model_env, models):
    art, ctx = model_env
    retrieved = art(Retrieved, retrieved_rows())
    ha = art(Reranked, rerank(retrieved, RerankConfig(method="has_answer", num_docs=4),
                              ctx("rerank"))).rows()
    assert len(ha) == len(retrieved_rows()) and all(len(r["ctxs"]) == 4 for r in ha)
    assert all(r["ctxs"][0]["relevant"] for r in ha)            # own passage has the answer
    t5 = art(Reranked, rerank(retrieved, RerankConfig(num_docs=None, reorder=True),
                              ctx("rerank"), model=art(Model, str(models["t5"])))).rows()
    scores = [c["rerank_score"] for c in t5[0]["ctxs"]]
    assert len(scores) == 6 and scores == sorted(scores, reverse=True)
    assert all(c["relevant"] == (c["rerank_score"] > 0.5) for r in t5 for c in r["ctxs"])
    with pytest.raises(ConfigError, match="needs the 'model' input"):
        rerank(retrieved, RerankConfig(), ctx("rerank"))
