"""An OpenAI-compatible ``/v1/chat/completions`` server over HTTP (httpx).

Works with ``vllm serve``, SGLang, llama.cpp's server, and hosted APIs. Requests go out from a
thread pool of ``max_concurrency`` threads sharing one ``httpx.Client`` (a connection pool of
the same size). 429, 5xx, connection errors and a 200 without a completion (a body that is not
JSON, or one carrying ``error``) are retried with exponential backoff and jitter, honouring
``retry-after-ms`` and ``Retry-After`` (:mod:`stages.lib.endpoint.retry`); 401/403, an unknown
model, a wrong ``base_url`` or an answer of another shape fail at once with one line that says
what to fix. ``timeout`` bounds each wait for data (connecting, sending, each read of the
answer), not the whole request: a server that keeps sending a byte now and then holds it longer.

Ctrl-C or SIGTERM (a ``KeyboardInterrupt`` while :meth:`OpenAIHttpBackend.run` is consumed)
stops at once: no attempt or backoff sleep starts after it, and the connections in flight are
shut down, so their threads end within moments instead of after every retry.

We use httpx rather than the ``openai`` package: the retry policy must be the same for every
server and visible in the step log (each retry is logged with its cause), the errors must be
ours (naming the environment variable, listing the served models), and non-OpenAI servers
return fields (``top_logprobs`` for any token) that the SDK's types do not need to know about.
httpx is the HTTP library the ``openai`` package itself is built on.

The API key is read from the environment variable ``api_key_env`` once, kept only in the
client's ``Authorization`` header, and scrubbed from every error message (as written, and as a
repr would escape it); a password in ``base_url`` is left out of every message.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from urllib.parse import urlsplit, urlunsplit

from orchestrator.api import ConfigError, RagError
from stages.lib.endpoint.config import EndpointConfig
from stages.lib.endpoint.request import ChatReply, ChatRequest
from stages.lib.endpoint.retry import RETRY_STATUS, backoff_delay

log = logging.getLogger(__name__)

OnReply = Callable[[int, ChatReply], None]

OPENAI_URL = "https://api.openai.com/v1"


class EndpointError(RagError):
    """A request failed for a reason that retrying did not (or cannot) fix."""


class _Retry(Exception):
    """One attempt failed in a way worth retrying: its one-line ``cause``, the HTTP ``status``
    (None: no answer) and the answer's ``headers`` (``Retry-After``)."""

    def __init__(self, cause: str, status: int | None = None,
                 headers: Mapping[str, str] | None = None):
        super().__init__(cause)
        self.cause, self.status, self.headers = cause, status, headers or {}


def read_api_key(api_key_env: str | None, base_url: str) -> str | None:
    """The key from ``$api_key_env`` (None when no key is configured); a one-line error, which
    never shows the key, if it is unset or holds a space, a line break or a character that is
    not printable ASCII (``export KEY=$(cat keyfile)`` of a two-line file; a pasted ellipsis).
    """
    if api_key_env is None:
        return None
    key = os.environ.get(api_key_env, "").strip()
    if not key:
        raise ConfigError(f"environment variable {api_key_env} is not set (the API key for "
                          f"{base_url})", hint=f"export {api_key_env}=...; or set api_key_env: "
                                               f"null for a server that needs no key")
    if not all("!" <= c <= "~" for c in key):
        raise ConfigError(f"environment variable {api_key_env} holds a space, a line break or a "
                          f"non-ASCII character inside the API key for {base_url}",
                          hint=f"set it to the key alone, on one line: export {api_key_env}="
                               f"\"$(head -n 1 KEYFILE)\"")
    return key


def redact_url(url: str) -> str:
    """``url`` with its password (``user:password@host``) replaced by ``***``, for messages.

    >>> redact_url("http://user:pw@127.0.0.1:8000/v1"), redact_url("https://api.openai.com/v1")
    ('http://user:***@127.0.0.1:8000/v1', 'https://api.openai.com/v1')
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def give_up_hint(status: int | None) -> str:
    """What to do when every attempt failed, the last with HTTP ``status`` (None: no answer).

    >>> give_up_hint(429).split(":")[0], give_up_hint(None).split("?")[0]
    ('the server is rate limiting', 'is the server up and base_url right')
    """
    resume = "the answers received so far are cached, so a rerun resumes"
    if status == 429:
        return (f"the server is rate limiting: lower max_concurrency or raise max_retries in the "
                f"endpoint config; {resume}")
    if status == 200:
        return f"the server (or a proxy before it) answered 200 without a completion; {resume}"
    return (f"is the server up and base_url right? (max_retries, timeout in the endpoint config); "
            f"{resume}")


def _asked_logprobs(item: dict, asked: tuple[str, ...]) -> dict[str, float]:
    """``{asked token: logprob}`` at one position of an OpenAI ``logprobs.content`` list."""
    found = {alt["token"]: float(alt["logprob"]) for alt in item.get("top_logprobs") or []}
    found.setdefault(item["token"], float(item["logprob"]))
    return {tok: found[tok] for tok in asked if tok in found}


def parse_choices(data: dict, asked: tuple[str, ...], own: bool = False) -> ChatReply:
    """A :class:`ChatReply` from a chat-completions response body; ``own``: read each generated
    token's log-probability (``choices[].logprobs.content[].logprob``) into ``token_logprobs``.
    Each choice's ``finish_reason`` goes to ``meta["finish_reasons"]``.

    >>> body = {"choices": [{"message": {"content": " Paris"}, "finish_reason": "stop",
    ...     "logprobs": {"content": [
    ...     {"token": "Paris", "logprob": -0.5,
    ...      "top_logprobs": [{"token": "Rome", "logprob": -2.0}]},
    ...     {"token": ".", "logprob": -0.25, "top_logprobs": []}]}}]}
    >>> r = parse_choices(body, ("Rome",), own=True)
    >>> r.texts, r.tokens, r.logprobs, r.token_logprobs, r.meta
    (['Paris'], [['Paris', '.']], [[{'Rome': -2.0}, {}]], [[-0.5, -0.25]], \
{'finish_reasons': ['stop']})
    """
    choices = data.get("choices") or []
    texts = [((c.get("message") or {}).get("content") or "").strip() for c in choices]
    content = [((c.get("logprobs") or {}).get("content") or []) for c in choices]
    reply = ChatReply(texts, meta={"finish_reasons": [c.get("finish_reason") for c in choices]})
    if own:
        reply.token_logprobs = [[float(it["logprob"]) for it in items] for items in content]
    if asked:
        reply.tokens = [[it["token"] for it in items] for items in content]
        reply.logprobs = [[_asked_logprobs(it, asked) for it in items] for items in content]
    return reply


def _shut(stream) -> None:
    """Shut an httpcore network stream's socket down: a thread blocked reading it wakes up."""
    try:
        stream.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
    except (OSError, AttributeError):    # already closed
        pass


class OpenAIHttpBackend:
    """:class:`~stages.lib.endpoint.client.Backend` over an OpenAI-compatible HTTP server."""

    def __init__(self, cfg: EndpointConfig):
        import httpx

        self.cfg, self.model = cfg, cfg.model
        self.base_url = (cfg.base_url or OPENAI_URL).rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self.shown_base_url = redact_url(self.base_url)     # what messages show
        self.where = redact_url(self.url)
        self._key = read_api_key(cfg.api_key_env, self.shown_base_url)
        self._secrets = [s for s in (self._key, repr(self._key)[1:-1] if self._key else None,
                                     urlsplit(self.base_url).password) if s and len(s) >= 4]
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        limits = httpx.Limits(max_connections=cfg.max_concurrency,
                              max_keepalive_connections=cfg.max_concurrency)
        self.http = httpx.Client(headers=headers, limits=limits,
                                 timeout=httpx.Timeout(cfg.timeout, connect=min(cfg.timeout, 10)))
        self._count_lock = threading.Lock()
        self.attempts = 0       # HTTP requests sent, retries included
        self._stop = threading.Event()      # set by stop(): no attempt or sleep starts after it
        self._streams: weakref.WeakSet = weakref.WeakSet()   # the connections' network streams
        self._streams_lock = threading.Lock()

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _quote(self, text: str) -> str:
        """The first 200 characters of a body, scrubbed, on one line, quoted."""
        return repr(self._scrub(" ".join(text.split()))[:200])

    def _trace(self, event: str, info: dict) -> None:
        """httpcore's ``trace`` hook: keep each new connection's stream, for :meth:`stop` (one
        that connects after it is shut down at once)."""
        stream = info.get("return_value")
        if event.endswith(".complete") and hasattr(stream, "get_extra_info"):
            with self._streams_lock:
                if not self._stop.is_set():
                    self._streams.add(stream)
                    return
            _shut(stream)

    def stop(self) -> None:
        """Stop now: no new attempt or backoff sleep, and every open connection is shut down,
        so a thread waiting for an answer gets an error at once (closing the client alone does
        not wake it). The backend cannot be used after this."""
        with self._streams_lock:
            self._stop.set()
            streams = list(self._streams)
        for stream in streams:
            _shut(stream)
        self.http.close()

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise EndpointError(f"{self.where}: stopped (interrupted)")

    def _body(self, req: ChatRequest, n: int, seed: int) -> dict:
        messages = req.messages
        if req.prefix:     # vLLM/SGLang: the reply continues the last assistant message
            messages = [*messages, {"role": "assistant", "content": req.prefix}]
        body = {"model": self.model, "messages": messages, "max_tokens": req.max_tokens,
                "temperature": req.temperature, "top_p": req.top_p, "seed": seed, "n": n}
        if req.prefix:
            body["continue_final_message"], body["add_generation_prompt"] = True, False
        if req.stop:
            body["stop"] = list(req.stop)
        if req.logprobs_of:
            body["logprobs"], body["top_logprobs"] = True, req.top_logprobs or self.cfg.top_logprobs
        elif req.token_logprobs:
            body["logprobs"] = True      # the generated tokens' own, no alternatives
        if req.repetition_penalty is not None:
            # a vLLM/SGLang sampling extension, sent only when set: hosted OpenAI rejects
            # request fields it does not know (HTTP 400, see _fatal)
            body["repetition_penalty"] = req.repetition_penalty
        return body

    def _fatal(self, status: int, text: str, body: dict) -> RagError:
        """The one-line error for a response that retrying cannot fix."""
        detail = self._scrub(" ".join(text.split()))[:300]
        if status in (401, 403):
            if self.cfg.api_key_env is None:
                return ConfigError(f"{self.where} answered HTTP {status}: it needs an API key and "
                                   f"api_key_env is null", hint="set api_key_env to the name of "
                                   "the environment variable that holds the key")
            env = self.cfg.api_key_env
            return ConfigError(f"{self.where} refused the API key in environment variable {env} "
                               f"(HTTP {status})", hint=f"export {env}=<a valid key for "
                                                        f"{self.shown_base_url}>")
        if status in (400, 404, 422):
            served = self._served_models()
            if served is not None and self.model not in served:
                from orchestrator.errors import did_you_mean
                return ConfigError(f"model {self.model!r} is not served at {self.shown_base_url}"
                                   f"{did_you_mean(self.model, served)}; served: {served[:10]}")
            if status == 404:
                return ConfigError(f"no OpenAI-compatible chat route at {self.where} (HTTP 404)",
                                   hint="base_url is the server root ending in /v1, e.g. "
                                        "http://127.0.0.1:8000/v1")
            if body.get("continue_final_message"):
                return ConfigError(f"{self.where} refused a reply that continues an assistant "
                                   f"prefix (continue_final_message; HTTP {status}: {detail})",
                                   hint="a prefix needs a vLLM- or SGLang-style server, or "
                                        "backend: transformers/vllm")
            if "repetition_penalty" in body:
                return ConfigError(f"{self.where} refused a request with repetition_penalty "
                                   f"(HTTP {status}: {detail})",
                                   hint="hosted OpenAI does not accept repetition_penalty: ask a "
                                        "vLLM- or SGLang-style server, use backend: "
                                        "transformers/vllm, or leave repetition_penalty unset")
        return EndpointError(f"{self.where} answered HTTP {status}: {detail}")

    def _served_models(self) -> list[str] | None:
        """Model ids from ``GET {base_url}/models``, or None if the server has no such route."""
        try:
            resp = self.http.get(f"{self.base_url}/models")
            resp.raise_for_status()
            return [m["id"] for m in resp.json().get("data", [])]
        except Exception:  # noqa: BLE001 - only used to improve an error message
            return None

    def post(self, body: dict) -> dict:
        """POST one body, retrying 429/5xx/connection errors and a 200 without a completion;
        the parsed answer (a JSON object with a non-empty list ``choices`` of objects)."""
        retries = self.cfg.max_retries
        for attempt in range(retries + 1):
            self._check_stop()
            with self._count_lock:
                self.attempts += 1
            try:
                return self._attempt(body)
            except _Retry as err:
                failure = err
            if attempt == retries:
                break
            delay = backoff_delay(attempt, failure.headers.get("retry-after"),
                                  retry_after_ms=failure.headers.get("retry-after-ms"))
            log.warning("%s: %s; retry %d/%d in %.1f s", self.where, failure.cause, attempt + 1,
                        retries, delay)
            self._stop.wait(delay)
        self._check_stop()
        raise EndpointError(f"{self.where} failed after {retries + 1} attempts: {failure.cause}",
                            hint=give_up_hint(failure.status))

    def _attempt(self, body: dict) -> dict:
        """One POST: the answer, or :class:`_Retry` for a failure worth retrying."""
        import httpx

        try:
            resp = self.http.post(self.url, json=body, extensions={"trace": self._trace})
        except httpx.LocalProtocolError as err:     # e.g. an illegal header: a retry cannot help
            raise EndpointError(f"{self.where}: the request could not be sent "
                                f"({type(err).__name__}: {self._scrub(str(err))})") from None
        except httpx.TransportError as err:
            self._check_stop()                          # cut off by stop(): not a server fault
            raise _Retry(f"{type(err).__name__}: {self._scrub(str(err))}") from None
        if resp.status_code == 200:
            return self._answer(resp)
        if resp.status_code not in RETRY_STATUS:
            raise self._fatal(resp.status_code, resp.text, body)
        detail = self._scrub(" ".join(resp.text.split()))[:200]
        raise _Retry(f"HTTP {resp.status_code}" + (f" {detail}" if detail else ""),
                     resp.status_code, resp.headers)

    def _answer(self, resp) -> dict:
        """The body of a 200, checked: :class:`_Retry` if it is not JSON or carries ``error``
        (a gateway's page, a proxy's error), an :class:`EndpointError` if it has another shape."""
        try:
            data = resp.json()
        except ValueError:
            raise _Retry(f"HTTP 200 with a body that is not JSON: {self._quote(resp.text)}",
                         200, resp.headers) from None
        if isinstance(data, dict) and data.get("error") and not data.get("choices"):
            raise _Retry(f"HTTP 200 carrying an error: {self._quote(json.dumps(data['error']))}",
                         200, resp.headers)
        choices = data.get("choices") if isinstance(data, dict) else None
        if not (isinstance(choices, list) and choices
                and all(isinstance(c, dict) for c in choices)):
            raise EndpointError(f"{self.where}: unexpected answer, not a JSON object with a list "
                                f"'choices' of objects: {self._quote(resp.text)}")
        return data

    def _parse(self, data: dict, req: ChatRequest) -> ChatReply:
        """:func:`parse_choices`, with a one-line error for a choice of another shape."""
        try:
            return parse_choices(data, req.logprobs_of, req.token_logprobs)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise EndpointError(f"{self.where}: unexpected answer ({type(err).__name__}: "
                                f"{self._scrub(str(err))[:80]}): "
                                f"{self._quote(json.dumps(data))}") from None

    def complete(self, req: ChatRequest) -> ChatReply:
        """One request; asks again for the rest when a server returns fewer than ``n`` choices."""
        reply = ChatReply([], tokens=[] if req.logprobs_of else None,
                          logprobs=[] if req.logprobs_of else None,
                          token_logprobs=[] if req.token_logprobs else None,
                          meta={"finish_reasons": []})
        while len(reply.texts) < req.n:
            got = self._parse(self.post(self._body(req, req.n - len(reply.texts),
                                                   req.seed + len(reply.texts))), req)
            reply.texts += got.texts
            reply.meta["finish_reasons"] += got.meta["finish_reasons"]
            if req.logprobs_of:
                reply.tokens += got.tokens
                reply.logprobs += got.logprobs
            if req.token_logprobs:
                reply.token_logprobs += got.token_logprobs
        return reply

    def _complete_and_keep(self, i: int, req: ChatRequest, on_reply: OnReply) -> ChatReply:
        reply = self.complete(req)
        on_reply(i, reply)      # in this worker thread: cached before the next request starts
        return reply

    def run(self, requests: list[ChatRequest],
            on_reply: OnReply) -> Iterator[tuple[int, ChatReply]]:
        """``(index, reply)`` as each request completes, at most ``max_concurrency`` at once.

        ``on_reply`` runs in the worker thread as soon as an answer arrives, so at any instant
        at most ``max_concurrency`` answers exist that are not yet cached (what a kill can
        lose). On the first failure no new request starts; the ones in flight finish and are
        yielded (so their answers are cached), then the failure is raised. If the caller stops
        (Ctrl-C, SIGTERM: an exception here or at a ``yield``), :meth:`stop` cuts the requests
        in flight off and the pool is shut down without waiting for them.
        """
        pool = ThreadPoolExecutor(max_workers=self.cfg.max_concurrency,
                                  thread_name_prefix="endpoint")
        error: BaseException | None = None
        finished = False
        try:
            pending: dict[Future, int] = {}
            todo = iter(range(len(requests)))
            while True:
                # no queue beyond the workers: after a failure nothing new is sent
                while error is None and len(pending) < self.cfg.max_concurrency:
                    i = next(todo, None)
                    if i is None:
                        break
                    pending[pool.submit(self._complete_and_keep, i, requests[i], on_reply)] = i
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    i = pending.pop(fut)
                    if fut.exception() is not None:
                        error = error or fut.exception()
                    else:
                        yield i, fut.result()
            finished = True
        finally:
            if not finished:
                self.stop()
            pool.shutdown(wait=finished, cancel_futures=not finished)
        if error is not None:
            raise error

    def close(self) -> None:
        self.http.close()
