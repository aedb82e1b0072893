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


class Scripted:
    """A generator that, as reranker, selects the second and first passage of what it is shown
    ("[2], [1]") and, as generator, records the prompt it was given and answers "an answer"."""

    def __init__(self):
        self.answered = []

    def chat(self, convs, n=1, **kw):
        out = []
        for conv in convs:
            if "identifiers" in conv[0]["content"]:    # the reranker's instructions
                out.append(["[2], [1]"] * n)
            else:
                self.answered.append(conv[-1]["content"])
                out.append(["an answer"] * n)
        return out


@pytest.mark.parametrize("mode", ["dynamic", "windowed"])
def test_infer_gives_the_generator_the_passages_the_reranker_chose(model_env, monkeypatch, mode):
    """``test_infer_modes``' untrained model selects nothing: here the selection is scripted, so
    the ids it names are checked against the passages the generator is then given."""
    import stages.lib.models.generation as generation

    gen = Scripted()
    monkeypatch.setattr(generation, "load_generator", lambda *a, **kw: gen)
    art, ctx = model_env
    cfg = InferConfig(mode=mode, num_docs=2, top_n=5, max_new_tokens=5)
    rows = art(Predictions, infer(art(Retrieved, retrieved_rows()), art(Model, "unused"),
                                  prompt_file("reranker"), prompt_file("generator"), cfg,
                                  ctx("infer"))).rows()
    assert len(rows) == len(QUESTIONS) == len(gen.answered)
    for r, prompt in zip(rows, gen.answered):
        assert len(r["selected"]) == 2 and all(1 <= i <= len(r["ctxs"]) for i in r["selected"])
        first, second = (r["ctxs"][i - 1]["text"] for i in r["selected"])
        assert first in prompt and second in prompt and prompt.index(first) < prompt.index(second)
    if mode == "dynamic":   # one window: the reranker's [2], [1] as it said
        assert all(r["selected"] == [2, 1] for r in rows)
