"""``infer_topk`` on a tiny model: the generator reads the first k passages (k = 0: none)."""

import pytest

from stages.common.infer_topk import InferTopkConfig, infer_topk
from stages.schemas import Model, Predictions, Retrieved
from tests.stages.conftest import QUESTIONS, prompt_file, retrieved_rows

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("k", [3, 0])
def test_infer_topk(model_env, models, k):
    art, ctx = model_env
    cfg = InferTopkConfig(k=k, max_new_tokens=5, batch_size=4)
    rows = art(Predictions, infer_topk(art(Retrieved, retrieved_rows()),
                                       art(Model, str(models["lm"])), prompt_file("generator"), cfg,
                                       ctx("infer"))).rows()
    assert len(rows) == len(QUESTIONS)
    for r in rows:
        assert isinstance(r["prediction"], str)
        assert r["selected"] == list(range(1, k + 1)) and len(r["ctxs"]) == k
        assert r["selection"] == (", ".join(f"[{i}]" for i in r["selected"]) or "None")
