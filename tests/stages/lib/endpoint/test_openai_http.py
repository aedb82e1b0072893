"""The OpenAI-compatible HTTP backend against a real server: retries, and one-line errors."""

from __future__ import annotations

import socket
import time

import pytest

from orchestrator.api import ConfigError
from stages.lib.endpoint import ChatRequest, open_client
from stages.lib.endpoint.openai_http import EndpointError, parse_choices

HI = [[{"role": "user", "content": "What is the capital of France?"}]]


def test_429_with_retry_after_is_retried_then_succeeds(server, endpoint_cfg, tmp_path, caplog):
    server.control(fail=[[429, "0.4"], [429, "0.4"]])
    start = time.monotonic()
    with open_client(endpoint_cfg, tmp_path / "c") as llm:
        replies = llm.chat(HI)
        attempts = llm.backend.attempts
    waited = time.monotonic() - start
    assert isinstance(replies[0].text, str)
    assert server.stats()["rejected"] == 2 and server.stats()["served"] == 1
    assert attempts == 3
    assert waited >= 0.8, f"Retry-After 0.4 s twice was not honoured ({waited:.2f} s)"
    assert "HTTP 429 {\"error\": {\"message\": \"injected\"}}; retry 1/3 in 0.4 s" in caplog.text


def test_5xx_is_retried_with_backoff_then_gives_up_with_one_line(server, endpoint_cfg, tmp_path):
    server.control(fail=[[503, None]] * 4)
    endpoint_cfg.max_retries = 2
    with pytest.raises(EndpointError) as err, open_client(endpoint_cfg, tmp_path / "c") as llm:
        llm.chat(HI)
    assert str(err.value).splitlines()[0] == (f"{server.base_url}/chat/completions failed after 3 "
                                              f'attempts: HTTP 503 {{"error": {{"message": '
                                              f'"injected"}}}}')
    assert server.stats()["rejected"] == 3


def test_401_names_the_environment_variable(server, endpoint_cfg, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_JUDGE_KEY", "sk-not-the-right-one")
    endpoint_cfg.api_key_env = "MY_JUDGE_KEY"
    with pytest.raises(ConfigError) as err, open_client(endpoint_cfg, tmp_path / "c") as llm:
        llm.chat(HI)
    assert err.value.message == (f"{server.base_url}/chat/completions refused the API key in "
                                 f"environment variable MY_JUDGE_KEY (HTTP 401)")
    assert "sk-not-the-right-one" not in str(err.value)
    assert server.stats()["received"] == 1, "401 must not be retried"


def test_unset_key_variable_fails_before_any_request(server, endpoint_cfg, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ConfigError, match=r"^environment variable OPENAI_API_KEY is not set "
                                          r"\(the API key for http://127"):
        open_client(endpoint_cfg, tmp_path / "c")
    assert server.stats()["received"] == 0


def test_wrong_model_name_lists_the_served_models(server, endpoint_cfg, tmp_path):
    endpoint_cfg.model = "tiny-2"
    with pytest.raises(ConfigError) as err, open_client(endpoint_cfg, tmp_path / "c") as llm:
        llm.chat(HI)
    assert err.value.message == (f"model 'tiny-2' is not served at {server.base_url} (did you "
                                 f"mean 'tiny'?); served: ['tiny']")


def test_wrong_base_url_path_says_where_the_route_should_be(server, endpoint_cfg, tmp_path):
    endpoint_cfg.base_url = server.root            # forgot the /v1
    with pytest.raises(ConfigError) as err, open_client(endpoint_cfg, tmp_path / "c") as llm:
        llm.chat(HI)
    assert err.value.message == (f"no OpenAI-compatible chat route at {server.root}/chat/"
                                 f"completions (HTTP 404)")
    assert "ending in /v1" in err.value.hint


def test_nothing_listening_fails_after_retries_naming_the_url(endpoint_cfg, tmp_path):
    with socket.socket() as s:                     # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint_cfg.base_url, endpoint_cfg.max_retries = f"http://127.0.0.1:{port}/v1", 1
    with pytest.raises(EndpointError) as err, open_client(endpoint_cfg, tmp_path / "c") as llm:
        llm.chat(HI)
    assert err.value.message.startswith(f"http://127.0.0.1:{port}/v1/chat/completions failed "
                                         f"after 2 attempts: ConnectError")
    assert list((tmp_path / "c").rglob("*.json")) == []


def test_n_completions_and_logprobs_of_asked_tokens(server, endpoint_cfg, tmp_path):
    endpoint_cfg.top_logprobs = 5
    with open_client(endpoint_cfg, tmp_path / "c") as llm:
        sampled, = llm.complete([ChatRequest(HI[0], temperature=1.0, n=3, seed=7)])
        probe, = llm.complete([ChatRequest(HI[0], max_tokens=4, logprobs_of=("Paris",))])
        first = probe.tokens[0][0]   # greedy: the first token is its position's top choice
        scored, = llm.complete([ChatRequest(HI[0], max_tokens=4, logprobs_of=(first, "Paris"))])
    assert len(sampled.texts) == 3
    assert 1 <= len(scored.tokens[0]) == len(scored.logprobs[0]) <= 4
    assert first in scored.logprobs[0][0]     # an asked token in the top 5 comes back
    for token, asked in zip(scored.tokens[0], scored.logprobs[0]):
        assert set(asked) <= {first, "Paris"}
        assert all(v <= 0.0 for v in asked.values())


def test_doctests():
    import doctest

    from stages.lib.endpoint import local, openai_http

    assert doctest.testmod(openai_http).failed == 0 and doctest.testmod(local).failed == 0


def test_parse_choices_keeps_only_asked_tokens_in_the_top_alternatives():
    data = {"choices": [{"message": {"content": " Yes "}, "logprobs": {"content": [
        {"token": "Yes", "logprob": -0.1,
         "top_logprobs": [{"token": "Yes", "logprob": -0.1}, {"token": "No", "logprob": -2.4}]}]}}]}
    reply = parse_choices(data, ("No", "Maybe"))
    assert reply.texts == ["Yes"] and reply.tokens == [["Yes"]]
    assert reply.logprobs == [[{"No": -2.4}]]


def test_other_4xx_is_not_retried_and_quotes_the_server(server, endpoint_cfg, tmp_path):
    server.control(fail=[[400, None]])
    with pytest.raises(EndpointError) as err, open_client(endpoint_cfg, tmp_path / "c") as llm:
        llm.chat(HI)
    assert err.value.message == (f'{server.base_url}/chat/completions answered HTTP 400: '
                                 f'{{"error": {{"message": "injected"}}}}')
    assert server.stats()["received"] == 1


def test_a_server_without_prefix_continuation_says_so_in_one_line(server, endpoint_cfg, tmp_path):
    server.control(refuse_prefix=True)
    with pytest.raises(ConfigError) as err, open_client(endpoint_cfg, tmp_path / "c") as llm:
        llm.chat(HI, prefix="[Retrieval]")
    assert err.value.message.startswith(f"{server.base_url}/chat/completions refused a reply that "
                                        f"continues an assistant prefix (continue_final_message;"
                                        f" HTTP 400: ")
    assert "vLLM- or SGLang-style server" in err.value.hint
