"""``infer_topk`` on a tiny model: the generator reads the first k passages (k = 0: none);
greedy by default, seeded sampling when asked, and the sampling settings keyed only when set.
With ``reader`` (an LLM endpoint) instead of a wired ``model``: the same rows from a real
OpenAI-compatible server (tests/stages/lib/endpoint/chat_server.py) serving the same model, and
``rag plan`` refuses both readers or neither."""

from pathlib import Path

import pytest

from orchestrator.api import ConfigError
from stages.common.infer_topk import InferTopkConfig, infer_topk
from stages.lib.endpoint import EndpointConfig
from stages.schemas import Model, Predictions, Retrieved
from tests.stages.conftest import QUESTIONS, fake_endpoint, prompt_file, retrieved_rows

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("k", [3, 0])
def test_infer_topk(model_env, models, k):
    art, ctx = model_env
    cfg = InferTopkConfig(k=k, max_new_tokens=5, batch_size=4)
    rows = art(Predictions, infer_topk(art(Retrieved, retrieved_rows()), prompt_file("generator"),
                                       cfg, ctx("infer"), model=art(Model, str(models["lm"])))
               ).rows()
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


def test_a_set_named_in_k_by_set_reads_its_own_number_of_passages(model_env, models):
    art, ctx = model_env
    questions = [{**r, "dataset": "webqsp" if i % 2 else "nq"}
                 for i, r in enumerate(retrieved_rows())]
    cfg = InferTopkConfig(k=3, k_by_set={"webqsp": 2}, max_new_tokens=2, batch_size=4)
    rows = art(Predictions, infer_topk(art(Retrieved, questions), prompt_file("generator"), cfg,
                                       ctx("by_set"), model=art(Model, str(models["lm"])))).rows()
    assert [len(r["ctxs"]) for r in rows] == [2 if i % 2 else 3 for i in range(len(rows))]


def _run(model_env, models, **settings) -> list[str]:
    art, ctx = model_env
    cfg = InferTopkConfig(k=2, max_new_tokens=6, **settings)
    rows = art(Predictions, infer_topk(art(Retrieved, retrieved_rows()), prompt_file("generator"),
                                       cfg, ctx("infer"), model=art(Model, str(models["lm"])))
               ).rows()
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


def _step(wire_model: bool = True, **settings):
    """The ``infer_topk`` step of a small recipe, built (and plan-checked) by the DAG builder."""
    from orchestrator.dag import build_dag

    inputs = {"questions": "retrieve", "prompt": "prompt", **({"model": "model"} if wire_model
                                                                else {})}
    recipe = {"sources": {"model": "lm", "prompt": "p.yaml"}, "steps": {
        "load": {"stage": "load_data"},
        "retrieve": {"stage": "retrieve", "inputs": {"questions": "load.eval"}},
        "infer": {"stage": "infer_topk", **settings, "inputs": inputs}}}
    return build_dag(Path("r.yaml"), recipe).steps["infer"]


def _key(wire_model: bool = True, **settings) -> str:
    """The cache key of an ``infer_topk`` step with these settings (inputs' hashes fixed)."""
    from orchestrator.resolve import step_keys

    hashes = HASHES if wire_model else {**HASHES, "model": None}
    (task,) = step_keys(_step(wire_model, **settings), hashes)
    return task.key


def test_sampling_settings_at_their_defaults_keep_the_key():
    from orchestrator.keys import material, task_key

    # the key infer_topk had before temperature, top_p, seed and reader existed (at the current
    # version: v3 seeds sampled answers by the question's id, not its position in the shard; v4
    # shows a question's options; v5 stops at a chat template's end of turn)
    before = task_key(material("infer_topk", 5, {"k": 10, "max_new_tokens": 200, "dataset": None,
                                                 "backend": "auto"}, HASHES, None))
    assert _key() == _key(temperature=0.0, top_p=1.0, seed=0, reader=None, k_by_set={}) == before
    assert _key(k_by_set={"webqsp": 2}) != before
    changed = [_key(temperature=0.5), _key(temperature=0.7), _key(temperature=0.5, top_p=0.9),
               _key(temperature=0.5, seed=1)]
    assert len({before, *changed}) == 5


def test_a_reader_endpoint_is_keyed_by_what_changes_its_answers():
    gpt = {"backend": "openai", "model": "gpt-3.5-turbo"}
    key = _key(False, reader=gpt)
    assert key == _key(False, reader={**gpt, "max_concurrency": 2, "api_key_env": "MY_KEY"})
    assert key != _key(False, reader={**gpt, "model": "gpt-4o-mini"})
    assert key != _key(False, reader={**gpt, "base_url": "http://127.0.0.1:8000/v1"})


def test_plan_names_the_reader_endpoint_and_not_a_wired_model():
    assert _step(False, reader={"model": "gpt-4o-mini"}).notes == [
        "reader: openai gpt-4o-mini at https://api.openai.com/v1"]
    assert _step(False, reader={"model": "tiny", "base_url": "http://127.0.0.1:8000/v1"}).notes \
        == ["reader: openai tiny at http://127.0.0.1:8000/v1"]
    assert _step(True).notes == []


def test_plan_refuses_both_readers_or_neither():
    with pytest.raises(ConfigError) as both:
        _step(True, reader={"model": "gpt-4o-mini"})
    assert both.value.message == ("r.yaml: steps.infer: reader is set and inputs.model is "
                                  "wired: the step would have two readers")
    assert "inputs: {model: null}" in both.value.hint and "reader: null" in both.value.hint
    with pytest.raises(ConfigError) as neither:
        _step(False)
    assert neither.value.message == ("r.yaml: steps.infer: no reader: inputs.model is not "
                                     "wired and reader is not set")
    assert "wire inputs.model" in neither.value.hint
    with pytest.raises(ConfigError, match=r"^r.yaml: steps.infer: reader.model is empty"):
        _step(False, reader={"backend": "transformers", "model": ""})


def test_the_stage_refuses_neither_reader_when_called_directly(model_env):
    art, ctx = model_env
    with pytest.raises(ConfigError, match=r"^steps.infer: no reader"):
        infer_topk(art(Retrieved, retrieved_rows()), prompt_file("generator"),
                   InferTopkConfig(k=2), ctx("infer"))


def test_reader_requests_carry_the_step_settings(model_env, monkeypatch):
    calls = fake_endpoint(monkeypatch, lambda conv, params: "city 3")
    art, ctx = model_env
    cfg = InferTopkConfig(k=2, max_new_tokens=7, temperature=0.5, top_p=0.9, seed=7,
                          reader=EndpointConfig(model="gpt-4o-mini"))
    rows = art(Predictions, infer_topk(art(Retrieved, retrieved_rows()), prompt_file("generator"),
                                       cfg, ctx("infer"))).rows()
    assert [r["prediction"] for r in rows] == ["city 3"] * len(QUESTIONS)
    ((asked, params),) = calls
    assert asked == len(QUESTIONS)
    assert {k: params[k] for k in ("max_tokens", "temperature", "top_p", "seed")} == {
        "max_tokens": 7, "temperature": 0.5, "top_p": 0.9, "seed": 7}


@pytest.fixture(scope="module")
def lm_server(models, tmp_path_factory):
    """The session's tiny LM behind a real OpenAI-compatible server (no key)."""
    from tests.stages.lib.endpoint.conftest import start_server

    proc, server = start_server(models["lm"], tmp_path_factory.mktemp("lm_server"))
    yield server
    proc.terminate()
    proc.wait(timeout=30)


def test_reader_over_http_gives_the_local_rows(model_env, models, lm_server):
    art, ctx = model_env
    questions = art(Retrieved, retrieved_rows())
    local = art(Predictions, infer_topk(questions, prompt_file("generator"),
                                        InferTopkConfig(k=2, max_new_tokens=6, batch_size=1),
                                        ctx("infer"), model=art(Model, str(models["lm"])))).rows()
    reader = EndpointConfig(model="tiny", base_url=lm_server.base_url, api_key_env=None)
    cfg = InferTopkConfig(k=2, max_new_tokens=6, reader=reader)
    lm_server.reset()
    served = art(Predictions, infer_topk(questions, prompt_file("generator"), cfg,
                                         ctx("infer"))).rows()
    assert served == local          # the same Predictions rows, the same greedy answers
    assert lm_server.stats()["served"] == len(QUESTIONS)
    # the same step again (its scratch directory kept, as after a kill): all from the cache
    again = art(Predictions, infer_topk(questions, prompt_file("generator"), cfg,
                                        ctx("infer"))).rows()
    assert again == served and lm_server.stats()["received"] == len(QUESTIONS)
