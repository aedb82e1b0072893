"""The in-process transformers backend: same interface, same cache, same answers as the server."""

from __future__ import annotations

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


def test_local_backend_errors_are_one_line(local_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"is \d+ tokens for .*, not one"), \
            open_client(local_cfg, tmp_path / "c") as llm:
        llm.chat([conv(0)], logprobs_of=("Paris is the capital of France",))
    with pytest.raises(ConfigError, match="is not a checkpoint directory"):
        open_client(EndpointConfig(backend="transformers", model=str(tmp_path / "nope")),
                    tmp_path / "c")


def test_vllm_output_is_read_into_a_reply():
    """vLLM itself needs a GPU; its output shapes (vllm/outputs.py CompletionOutput, vllm/logprobs.py
    Logprob: SampleLogprobs = list[dict[token id, Logprob]]) are rebuilt here to check the reading."""
    from types import SimpleNamespace as NS

    from stages.lib.endpoint.local import _vllm_reply

    lp = lambda value, text: NS(logprob=value, rank=1, decoded_token=text)  # noqa: E731
    out = NS(outputs=[NS(text=" Yes ", token_ids=[7, 2],
                         logprobs=[{7: lp(-0.1, "Yes"), 9: lp(-2.5, "No")},
                                   {2: lp(-0.01, "</s>"), 7: lp(-6.0, "Yes")}])])
    reply = _vllm_reply(ChatRequest([], logprobs_of=("No", "Maybe")), out)
    assert reply.texts == ["Yes"] and reply.tokens == [["Yes", "</s>"]]
    assert reply.logprobs == [[{"No": -2.5}, {}]]
    assert _vllm_reply(ChatRequest([]), out).tokens is None

