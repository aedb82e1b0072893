"""``infer_topk`` on a tiny model: the generator reads the first k passages (k = 0: none);
greedy by default, seeded sampling when asked, and the sampling settings keyed only when set."""

from pathlib import Path

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


def _run(model_env, models, **settings) -> list[str]:
    art, ctx = model_env
    cfg = InferTopkConfig(k=2, max_new_tokens=6, **settings)
    rows = art(Predictions, infer_topk(art(Retrieved, retrieved_rows()),
                                       art(Model, str(models["lm"])), prompt_file("generator"), cfg,
                                       ctx("infer"))).rows()
    return [r["prediction"] for r in rows]


def test_seeded_sampling_gives_the_same_answers_again(model_env, models):
    sampled = dict(temperature=1.0, top_p=0.9, seed=3)
    first = _run(model_env, models, batch_size=4, **sampled)
    assert _run(model_env, models, batch_size=3, **sampled) == first   # batch size: no matter
    assert _run(model_env, models, batch_size=4, **{**sampled, "seed": 4}) != first
    assert _run(model_env, models, batch_size=4) != first               # default: greedy


def test_default_is_greedy(model_env, models, monkeypatch):
    import stages.lib.models.generation as generation

    calls = []

    class Recorder:
        def chat(self, conversations, **params):
            calls.append(params)
            return [["answer"] for _ in conversations]

    monkeypatch.setattr(generation, "load_generator", lambda *a, **kw: Recorder())
    _run(model_env, models)
    _run(model_env, models, temperature=0.5, top_p=0.9, seed=7)
    assert [(c["temperature"], c["top_p"], c["seed"]) for c in calls] == [(0.0, 1.0, 0),
                                                                          (0.5, 0.9, 7)]


HASHES = {"questions": "q-hash", "model": "m-hash", "prompt": "p-hash"}


def _key(**settings) -> str:
    """The cache key of an ``infer_topk`` step with these settings (inputs' hashes fixed)."""
    from orchestrator.dag import build_dag
    from orchestrator.resolve import step_keys

    recipe = {"sources": {"model": "lm", "prompt": "p.yaml"}, "steps": {
        "load": {"stage": "load_data"},
        "retrieve": {"stage": "retrieve", "inputs": {"questions": "load.eval"}},
        "infer": {"stage": "infer_topk", **settings,
                  "inputs": {"questions": "retrieve", "model": "model", "prompt": "prompt"}}}}
    (task,) = step_keys(build_dag(Path("r.yaml"), recipe).steps["infer"], HASHES)
    return task.key


def test_sampling_settings_at_their_defaults_keep_the_key():
    from orchestrator.keys import material, task_key

    # the key infer_topk v2 had before temperature, top_p and seed existed
    before = task_key(material("infer_topk", 2, {"k": 10, "max_new_tokens": 200, "dataset": None,
                                                 "backend": "auto"}, HASHES, None))
    assert _key() == _key(temperature=0.0, top_p=1.0, seed=0) == before
    changed = [_key(temperature=0.5), _key(temperature=0.7), _key(temperature=0.5, top_p=0.9),
               _key(temperature=0.5, seed=1)]
    assert len({before, *changed}) == 5
