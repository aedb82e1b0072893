"""The HTTP endpoint client when a server misbehaves: empty and cut-off replies, Ctrl-C with
requests in flight, bad API keys, malformed 200 answers, rate limits, a trickling answer.

Each test scripts a small OpenAI-compatible server (standard library, a thread of this process,
on 127.0.0.1): ``answer(n, body)`` gives the n-th request's ``(status, body, headers)``, a body
being a dict (sent as JSON) or text; it may block on ``release`` (set when the test ends)."""

from __future__ import annotations

import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orchestrator.api import ConfigError
from stages.lib.endpoint import ChatRequest, EndpointConfig, open_client
from stages.lib.endpoint import openai_http
from stages.lib.endpoint.openai_http import EndpointError

KEY = "sk-failures-Key4242"
HI = [{"role": "user", "content": "Hi"}]


def questions(m: int) -> list[list[dict]]:
    return [[{"role": "user", "content": f"question {i}"}] for i in range(m)]


def records(cache) -> int:
    return sum(1 for _ in cache.glob("*/*.json"))


def completion(text: str | None = "Score: 80", finish: str | None = "stop") -> dict:
    message = None if text is None else {"role": "assistant", "content": text}
    return {"id": "c", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}]}


class Scripted:
    """The server's state: requests received, the script, and the event hung requests wait on."""

    def __init__(self):
        self.lock = threading.Lock()
        self.received = 0
        self.release = threading.Event()
        self.answer = lambda n, body: (200, completion(), {})

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers.get("Content-Length") or 0)))
        with self.lock:
            n, self.received = self.received, self.received + 1
        status, data, headers = self.answer(n, body)
        if callable(data):                   # writes the answer itself (a trickle)
            return data(handler)
        raw = (data if isinstance(data, str) else json.dumps(data)).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(raw)


@pytest.fixture
def fake(monkeypatch):
    """A scripted server on 127.0.0.1 in a thread: ``(state, base_url)``; the key in $FAIL_KEY."""
    state = Scripted()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            try:
                state.handle(self)
            except OSError:                  # the client cut the connection
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("FAIL_KEY", KEY)
    yield state, f"http://127.0.0.1:{server.server_address[1]}/v1"
    state.release.set()
    server.shutdown()
    server.server_close()


def cfg_for(base_url: str, **kw) -> EndpointConfig:
    return EndpointConfig(**{"base_url": base_url, "model": "m", "api_key_env": "FAIL_KEY",
                             "max_concurrency": 2, "timeout": 30, "max_retries": 2,
                             "max_tokens": 8, **kw})


def endpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("endpoint")]


def wait_until(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# F8: empty replies and replies that did not end by themselves

def test_an_empty_reply_is_returned_counted_and_not_cached_so_a_rerun_asks_again(
        fake, tmp_path, caplog):
    state, base_url = fake
    state.answer = lambda n, body: (200, completion("" if n % 2 == 0 else None), {})
    with open_client(cfg_for(base_url), tmp_path / "c") as llm:
        replies = llm.chat(questions(2))
        assert llm.empty == 2
    assert [r.texts for r in replies] == [[""], [""]]
    assert replies[0].meta == {"finish_reasons": ["stop"]}
    assert records(tmp_path / "c") == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["m: 2 of 2 replies were empty (the server sent no text), not cached: "
                        "the step, if it is computed again, asks them again"]
    state.answer = lambda n, body: (200, completion("Score: 70"), {})
    with open_client(cfg_for(base_url), tmp_path / "c") as llm:
        assert [r.text for r in llm.chat(questions(2))] == ["Score: 70", "Score: 70"]
    assert state.received == 4 and records(tmp_path / "c") == 2


@pytest.mark.parametrize("finish, why", [("length", "were cut off at max_tokens"),
                                         ("content_filter", "were stopped by the server's "
                                                            "content filter")])
def test_a_reply_that_did_not_end_by_itself_is_cached_with_its_reason_and_one_warning(
        fake, tmp_path, caplog, finish, why):
    state, base_url = fake
    state.answer = lambda n, body: (200, completion("The answer is", finish), {})
    with open_client(cfg_for(base_url), tmp_path / "c") as llm:
        replies = llm.chat(questions(3))
        assert llm.finish_reasons == {finish: 3} and llm.empty == 0
    assert replies[0].meta == {"finish_reasons": [finish]}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"m: 3 of 3 replies {why} (finish_reason {finish!r}), cached as they are"]
    with open_client(cfg_for(base_url), tmp_path / "c") as llm:      # from the cache
        again = llm.chat(questions(3))
    assert state.received == 3 and again[0].meta == {"finish_reasons": [finish]}


def test_a_reply_cut_off_with_no_visible_text_is_an_answer_and_cached(fake, tmp_path):
    state, base_url = fake
    state.answer = lambda n, body: (200, completion("", "length"), {})
    with open_client(cfg_for(base_url), tmp_path / "c") as llm:
        llm.chat(questions(1))
        assert llm.empty == 0 and llm.finish_reasons == {"length": 1}
    assert records(tmp_path / "c") == 1


# F9: Ctrl-C / SIGTERM with requests in flight

def hang_after_first(state):
    """The first request is answered; the others wait (unanswered) until the test ends."""
    def answer(n, body):
        if n > 0:
            state.release.wait(60)
        return 200, completion(f"answer {n}"), {}
    return answer


@pytest.mark.parametrize("where, sent", [("loop", 3), ("wait", 4)])
def test_ctrl_c_stops_the_requests_in_flight_at_once_and_keeps_the_answers(
        fake, tmp_path, monkeypatch, where, sent):
    """A KeyboardInterrupt in the caller's loop (``where=loop``: 3 requests sent), or while the
    backend waits for the next answer (``wait``: the 4th was sent when the 1st came back),
    returns at once; the requests in flight are cut off (their threads end), none is retried,
    and the answer that came is cached."""
    state, base_url = fake
    state.answer = hang_after_first(state)
    got, interrupted = [], []

    def progress(items):
        for item in items:
            got.append(item)
            if where == "loop":
                assert wait_until(lambda: state.received == sent, 10.0)   # all in flight
                interrupted.append(time.monotonic())
                raise KeyboardInterrupt
            yield item

    if where == "wait":
        real_wait = openai_http.wait

        def interrupted_wait(*args, **kw):
            if got:
                assert wait_until(lambda: state.received == sent, 10.0)
                interrupted.append(time.monotonic())
                raise KeyboardInterrupt
            return real_wait(*args, **kw)

        monkeypatch.setattr(openai_http, "wait", interrupted_wait)
    cfg = cfg_for(base_url, max_concurrency=3, max_retries=3)
    with pytest.raises(KeyboardInterrupt), open_client(cfg, tmp_path / "c") as llm:
        llm.chat(questions(6), progress=progress)
    assert time.monotonic() - interrupted[0] < 2.0
    assert wait_until(lambda: not endpoint_threads(), 3.0), "requests in flight were not cut off"
    time.sleep(0.3)
    assert state.received == sent, "nothing is retried or started after Ctrl-C"
    assert records(tmp_path / "c") == 1


def test_ctrl_c_during_a_backoff_sleep_ends_it(fake, tmp_path, monkeypatch):
    state, base_url = fake
    state.answer = lambda n, body: (503, {"error": {"message": "busy"}}, {"Retry-After": "20"})
    real_wait = openai_http.wait

    def interrupted_wait(fs, **kw):
        real_wait(fs, timeout=0.5, **{k: v for k, v in kw.items() if k != "timeout"})
        raise KeyboardInterrupt

    monkeypatch.setattr(openai_http, "wait", interrupted_wait)
    with pytest.raises(KeyboardInterrupt), open_client(cfg_for(base_url), tmp_path / "c") as llm:
        llm.chat(questions(2))
    assert wait_until(lambda: not endpoint_threads(), 3.0), "a backoff sleep was not cut short"
    assert state.received == 2


# F4: API keys that cannot be a header; an illegal header is not retried

@pytest.mark.parametrize("bad", ["sk-PARTONE-aaaa\nsk-PARTTWO-bbbb", "sk-PARTONE-cc\u2026dd",
                                 "sk-PARTONE-ee ff-PARTTWO"])
def test_a_key_with_a_line_break_space_or_non_ascii_character_is_refused_unseen(
        fake, tmp_path, monkeypatch, bad):
    state, base_url = fake
    monkeypatch.setenv("FAIL_KEY", bad)
    with pytest.raises(ConfigError) as err:
        open_client(cfg_for(base_url), tmp_path / "c")
    assert err.value.message == (f"environment variable FAIL_KEY holds a space, a line break or "
                                 f"a non-ASCII character inside the API key for {base_url}")
    assert "PARTONE" not in str(err.value) and "PARTONE" not in repr(err.value)
    assert state.received == 0


def test_an_illegal_header_is_not_retried_and_the_escaped_key_is_scrubbed(fake, tmp_path,
                                                                         monkeypatch, caplog):
    state, base_url = fake
    caplog.set_level(logging.INFO)   # what a step log records (httpcore's DEBUG trace quotes it)
    bad = "sk-PARTONE-aaaa\nsk-PARTTWO-bbbb"     # as if read_api_key had let it through
    monkeypatch.setattr(openai_http, "read_api_key", lambda env, url: bad)
    with pytest.raises(EndpointError) as err, open_client(cfg_for(base_url), tmp_path / "c") as llm:
        llm.chat(questions(1))
    assert llm.backend.attempts == 1 and state.received == 0
    assert err.value.message.startswith(f"{base_url}/chat/completions: the request could not be "
                                        f"sent (LocalProtocolError: ")
    assert "***" in err.value.message
    for part in ("PARTONE", "PARTTWO"):
        assert part not in str(err.value) and part not in caplog.text


# F11: 200 answers that hold no completion

@pytest.mark.parametrize("body, what", [
    ([1, 2], "[1, 2]"),
    ({"choices": {"a": 1}}, '{"choices": {"a": 1}}'),
    ({"id": "x"}, '{"id": "x"}'),
    ({"choices": []}, '{"choices": []}'),
    ({"choices": ["text"]}, '{"choices": ["text"]}')])
def test_an_answer_of_another_shape_is_one_line_naming_the_url_and_quoting_it(
        fake, tmp_path, body, what):
    state, base_url = fake
    state.answer = lambda n, req: (200, body, {})
    with pytest.raises(EndpointError) as err, open_client(cfg_for(base_url), tmp_path / "c") as llm:
        llm.chat(questions(1))
    assert err.value.message == (f"{base_url}/chat/completions: unexpected answer, not a JSON "
                                 f"object with a list 'choices' of objects: {what!r}")
    assert state.received == 1


def test_a_choice_without_its_logprob_is_one_line_quoting_the_answer(fake, tmp_path):
    state, base_url = fake
    choice = {"message": {"content": "x"}, "logprobs": {"content": [{"token": "x"}]}}
    state.answer = lambda n, req: (200, {"choices": [choice]}, {})
    with pytest.raises(EndpointError) as err, open_client(cfg_for(base_url), tmp_path / "c") as llm:
        llm.complete([ChatRequest(HI, logprobs_of=("x",))])
    assert err.value.message.startswith(f"{base_url}/chat/completions: unexpected answer "
                                        f"(KeyError: 'logprob'): '{{\"choices\": ")


def test_a_200_that_is_not_json_or_carries_an_error_is_retried_quoted_and_scrubbed(fake,
                                                                                  tmp_path):
    state, base_url = fake
    page = f"<html>gateway timeout for Bearer {KEY}</html>"
    state.answer = lambda n, req: ((200, page, {}) if n == 0 else
                                   (200, {"error": {"message": "overloaded"}}, {}))
    with pytest.raises(EndpointError) as err, \
            open_client(cfg_for(base_url, max_retries=1), tmp_path / "c") as llm:
        llm.chat(questions(1))
    assert err.value.message == (f"{base_url}/chat/completions failed after 2 attempts: HTTP 200 "
                                 f"carrying an error: '{{\"message\": \"overloaded\"}}'")
    assert "answered 200 without a completion" in err.value.hint
    assert state.received == 2
    state.received = 0
    state.answer = lambda n, req: (200, page, {}) if n == 0 else (200, completion("ok"), {})
    with open_client(cfg_for(base_url, max_retries=1), tmp_path / "c2") as llm:
        assert llm.chat(questions(1))[0].text == "ok"
    state.answer = lambda n, req: (200, page, {})
    with pytest.raises(EndpointError) as err, \
            open_client(cfg_for(base_url, max_retries=0), tmp_path / "c3") as llm:
        llm.chat(questions(1))
    assert err.value.message.endswith("HTTP 200 with a body that is not JSON: '<html>gateway "
                                      "timeout for Bearer ***</html>'")


def test_a_password_in_base_url_is_not_in_the_messages(fake, tmp_path):
    state, base_url = fake
    state.answer = lambda n, req: (200, {"id": "x"}, {})
    url = base_url.replace("http://", "http://proxyuser:PW-secret-77@")
    with pytest.raises(EndpointError) as err, open_client(cfg_for(url), tmp_path / "c") as llm:
        llm.chat(questions(1))
    assert err.value.message.startswith(
        f"{base_url.replace('http://', 'http://proxyuser:***@')}/chat/completions: unexpected")


# F12: rate limits

def test_429_honours_retry_after_ms_and_gives_up_with_a_rate_limit_hint(fake, tmp_path, caplog):
    state, base_url = fake
    state.answer = lambda n, req: (429, {"error": {"message": "slow down"}},
                                   {"retry-after-ms": "150", "Retry-After": "3"})
    start = time.monotonic()
    with pytest.raises(EndpointError) as err, open_client(cfg_for(base_url), tmp_path / "c") as llm:
        llm.chat(questions(1))
    waited = time.monotonic() - start
    assert 0.3 <= waited < 2.0, f"retry-after-ms 150 twice took {waited:.2f} s"
    assert "retry 1/2 in 0.1 s" in caplog.text
    assert err.value.message.startswith(f"{base_url}/chat/completions failed after 3 attempts: "
                                        f"HTTP 429")
    assert err.value.hint == ("the server is rate limiting: lower max_concurrency or raise "
                              "max_retries in the endpoint config; the answers received so far "
                              "are cached, so a rerun resumes")


def test_a_server_error_that_persists_still_asks_whether_the_server_is_up(fake, tmp_path):
    state, base_url = fake
    state.answer = lambda n, req: (503, {"error": {"message": "down"}}, {"Retry-After": "0"})
    with pytest.raises(EndpointError) as err, open_client(cfg_for(base_url), tmp_path / "c") as llm:
        llm.chat(questions(1))
    assert err.value.hint.startswith("is the server up and base_url right?")


# F10: `timeout` bounds each wait for data, not the whole request (documented)

def test_timeout_is_per_read_so_a_trickling_answer_outlasts_it(fake, tmp_path):
    state, base_url = fake
    data = json.dumps(completion("slow")).encode()

    def trickle(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(4 + len(data)))
        handler.end_headers()
        for _ in range(4):
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.4)
        handler.wfile.write(data)

    state.answer = lambda n, req: (200, trickle, {})
    start = time.monotonic()
    with open_client(cfg_for(base_url, timeout=1.0, max_retries=0), tmp_path / "c") as llm:
        assert llm.chat(questions(1))[0].text == "slow"
    assert time.monotonic() - start >= 1.5
