"""``dynamicrag.infer`` on a tiny model: the model selects its passages (dynamic, windowed)."""

import pytest

from stages.dynamicrag.infer import InferConfig, infer
from stages.schemas import Model, Predictions, Retrieved
from tests.stages.conftest import QUESTIONS, prompt_file, retrieved_rows

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("mode", ["dynamic", "windowed"])
def test_infer_modes(model_env, models, mode):
    art, ctx = model_env
    cfg = InferConfig(mode=mode, num_docs=2, top_n=5, max_new_tokens=5,
                      rerank_max_new_tokens=6, batch_size=4)
    rows = art(Predictions, infer(art(Retrieved, retrieved_rows()), art(Model, str(models["lm"])),
                                  prompt_file("reranker"), prompt_file("generator"), cfg,
                                  ctx("infer"))).rows()
    assert len(rows) == len(QUESTIONS)
    for r in rows:
        assert isinstance(r["prediction"], str)
        assert all(1 <= i <= len(r["ctxs"]) for i in r["selected"])
        if mode == "dynamic":
            assert len(r["ctxs"]) == 2
        if mode == "windowed":
            assert len(r["ctxs"]) == 5 and len(r["selected"]) <= 2
