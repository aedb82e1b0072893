"""``dynamicrag.sample`` on a tiny model: n trajectories per question, reproducible."""


import pytest

from stages.common.rerank import RerankConfig, rerank
from stages.dynamicrag.sample import SampleConfig, sample
from stages.dynamicrag.schemas import Trajectories
from stages.schemas import Model, Reranked, Retrieved
from tests.stages.conftest import QUESTIONS, prompt_file, retrieved_rows

PROMPTS = (prompt_file("reranker"), prompt_file("generator"))
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_sample_trajectories(model_env, models):
    art, ctx = model_env
    reranked = art(Reranked, rerank(art(Retrieved, retrieved_rows()),
                                    RerankConfig(method="has_answer"), ctx("rerank")))
    cfg = SampleConfig(n=3, max_new_tokens=8, answer_max_new_tokens=6, num_docs=4,
                       temperature=1.0, batch_size=6)
    rows = art(Trajectories, sample(reranked, art(Model, str(models["lm"])), *PROMPTS, cfg,
                                    ctx("sample"))).rows()
    assert len(rows) == len(QUESTIONS)
    for r in rows:
        assert len(r["ctxs"]) == 4 and len(r["trajectories"]) == 3
        for t in r["trajectories"]:
            assert all(1 <= i <= 4 for i in t["ids"]) and isinstance(t["response"], str)
    again = sample(reranked, art(Model, str(models["lm"])), *PROMPTS, cfg, ctx("sample"))
    assert [r["trajectories"] for r in again] == [r["trajectories"] for r in rows]


def test_answers_of_a_multiple_choice_question_see_its_options(model_env, monkeypatch):
    import stages.lib.models.generation as generation

    class Recorder:                      # selects passage 1; answers "A"
        def __init__(self):
            self.asked = []

        def chat(self, convs, n=1, **kw):
            self.asked.append(convs)
            return [["[1]"] * n for _ in convs]

    gen = Recorder()
    monkeypatch.setattr(generation, "load_generator", lambda *a, **kw: gen)
    art, ctx = model_env
    row = {**retrieved_rows()[0], "dataset": "arc", "answers": ["A"], "choices": ["iron", "wood"]}
    sample(art(Reranked, [row]), art(Model, "unused"), *PROMPTS, SampleConfig(n=2),
           ctx("sample"))
    selections, answers = gen.asked
    assert f"{row['question']}\nA: iron\nB: wood" in answers[0][-1]["content"]
    assert "A: iron" not in selections[0][-1]["content"]    # the reranker's prompt as before


def test_trajectories_hold_the_ids_the_reranker_named(model_env, monkeypatch):
    """``test_sample_trajectories``' untrained model names no passage: here the reranker's
    reply is scripted ("[3], [1]", and one out of range), so the ids are checked."""
    import stages.lib.models.generation as generation

    class Scripted:
        def chat(self, convs, n=1, **kw):
            if "identifiers" in convs[0][0]["content"]:       # the reranker's instructions
                return [["[3], [1], [9]"] * n for _ in convs]
            return [[f"answer {i}"] * n for i, _ in enumerate(convs)]

    monkeypatch.setattr(generation, "load_generator", lambda *a, **kw: Scripted())
    art, ctx = model_env
    rows = art(Trajectories, sample(art(Reranked, retrieved_rows()), art(Model, "unused"),
                                    *PROMPTS, SampleConfig(n=2, num_docs=4), ctx("sample"))).rows()
    assert len(rows) == len(QUESTIONS)
    assert all([t["ids"] for t in r["trajectories"]] == [[3, 1], [3, 1]] for r in rows)
    assert all(t["response"].startswith("answer") for r in rows for t in r["trajectories"])
