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


def test_standard_rag_prompt_for_the_baselines():
    from stages.lib.prompts import generator_messages, load_prompt

    prompt = load_prompt(prompt_file("rag", recipe="common").path)
    docs = [{"title": "Paris", "text": "Paris is the capital of France."},
            {"title": "Lyon", "text": "Lyon is a city."}]
    (msg,) = generator_messages(prompt, "Capital of France?", docs, "nq")
    assert msg["role"] == "user" and msg["content"] == (
        "Answer the question using the passages below. Answer with a short phrase.\n\n"
        "[1] Paris\nParis is the capital of France.\n[2] Lyon\nLyon is a city.\n\n"
        "Question: Capital of France?\nAnswer:")
    (none,) = generator_messages(prompt, "Is Paris in France?", [], "fever")
    assert "(no passages)" in none["content"] and '"SUPPORTS", "REFUTES" or "NEI"' in none["content"]
