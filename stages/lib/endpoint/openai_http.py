"""An OpenAI-compatible ``/v1/chat/completions`` server over HTTP (httpx).

Works with ``vllm serve``, SGLang, llama.cpp's server, and hosted APIs. Requests go out from a
thread pool of ``max_concurrency`` threads sharing one ``httpx.Client`` (a connection pool of
the same size). 429, 5xx and connection errors are retried with exponential backoff and jitter,
honouring ``Retry-After`` (:mod:`stages.lib.endpoint.retry`); 401/403, an unknown model or a
wrong ``base_url`` fail at once with one line that says what to fix.

We use httpx rather than the ``openai`` package: the retry policy must be the same for every
server and visible in the step log (each retry is logged with its cause), the errors must be
ours (naming the environment variable, listing the served models), and non-OpenAI servers
return fields (``top_logprobs`` for any token) that the SDK's types do not need to know about.
httpx is the HTTP library the ``openai`` package itself is built on.

The API key is read from the environment variable ``api_key_env`` once, kept only in the
client's ``Authorization`` header, and scrubbed from every error message.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from orchestrator.api import ConfigError, RagError
from stages.lib.endpoint.config import EndpointConfig
from stages.lib.endpoint.request import ChatReply, ChatRequest
from stages.lib.endpoint.retry import RETRY_STATUS, backoff_delay

log = logging.getLogger(__name__)

OnReply = Callable[[int, ChatReply], None]

OPENAI_URL = "https://api.openai.com/v1"


class EndpointError(RagError):
    """A request failed for a reason that retrying did not (or cannot) fix."""


def read_api_key(api_key_env: str | None, base_url: str) -> str | None:
    """The key from ``$api_key_env`` (None when no key is configured); one-line error if unset."""
    if api_key_env is None:
        return None
    key = os.environ.get(api_key_env, "").strip()
    if not key:
        raise ConfigError(f"environment variable {api_key_env} is not set (the API key for "
                          f"{base_url})", hint=f"export {api_key_env}=...; or set api_key_env: "
                                               f"null for a server that needs no key")
    return key


def _asked_logprobs(item: dict, asked: tuple[str, ...]) -> dict[str, float]:
    """``{asked token: logprob}`` at one position of an OpenAI ``logprobs.content`` list."""
    found = {alt["token"]: float(alt["logprob"]) for alt in item.get("top_logprobs") or []}
    found.setdefault(item["token"], float(item["logprob"]))
    return {tok: found[tok] for tok in asked if tok in found}


def parse_choices(data: dict, asked: tuple[str, ...], own: bool = False) -> ChatReply:
    """A :class:`ChatReply` from a chat-completions response body; ``own``: read each generated
    token's log-probability (``choices[].logprobs.content[].logprob``) into ``token_logprobs``.

    >>> body = {"choices": [{"message": {"content": " Paris"}, "logprobs": {"content": [
    ...     {"token": "Paris", "logprob": -0.5,
    ...      "top_logprobs": [{"token": "Rome", "logprob": -2.0}]},
    ...     {"token": ".", "logprob": -0.25, "top_logprobs": []}]}}]}
    >>> r = parse_choices(body, ("Rome",), own=True)
    >>> r.texts, r.tokens, r.logprobs, r.token_logprobs
    (['Paris'], [['Paris', '.']], [[{'Rome': -2.0}, {}]], [[-0.5, -0.25]])
    """
    choices = data.get("choices") or []
    texts = [((c.get("message") or {}).get("content") or "").strip() for c in choices]
    content = [((c.get("logprobs") or {}).get("content") or []) for c in choices]
    reply = ChatReply(texts)
    if own:
        reply.token_logprobs = [[float(it["logprob"]) for it in items] for items in content]
    if asked:
        reply.tokens = [[it["token"] for it in items] for items in content]
        reply.logprobs = [[_asked_logprobs(it, asked) for it in items] for items in content]
    return reply


class OpenAIHttpBackend:
    """:class:`~stages.lib.endpoint.client.Backend` over an OpenAI-compatible HTTP server."""

    def __init__(self, cfg: EndpointConfig):
        import httpx

        self.cfg, self.model = cfg, cfg.model
        self.base_url = (cfg.base_url or OPENAI_URL).rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        self._key = read_api_key(cfg.api_key_env, self.base_url)
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        limits = httpx.Limits(max_connections=cfg.max_concurrency,
                              max_keepalive_connections=cfg.max_concurrency)
        self.http = httpx.Client(headers=headers, limits=limits,
                                 timeout=httpx.Timeout(cfg.timeout, connect=min(cfg.timeout, 10)))
        self._count_lock = threading.Lock()
        self.attempts = 0       # HTTP requests sent, retries included

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

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
            body["logprobs"], body["top_logprobs"] = True, self.cfg.top_logprobs
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
                return ConfigError(f"{self.url} answered HTTP {status}: it needs an API key and "
                                   f"api_key_env is null", hint="set api_key_env to the name of "
                                   "the environment variable that holds the key")
            env = self.cfg.api_key_env
            return ConfigError(f"{self.url} refused the API key in environment variable {env} "
                               f"(HTTP {status})", hint=f"export {env}=<a valid key for "
                                                        f"{self.base_url}>")
        if status in (400, 404, 422):
            served = self._served_models()
            if served is not None and self.model not in served:
                from orchestrator.errors import did_you_mean
                return ConfigError(f"model {self.model!r} is not served at {self.base_url}"
                                   f"{did_you_mean(self.model, served)}; served: {served[:10]}")
            if status == 404:
                return ConfigError(f"no OpenAI-compatible chat route at {self.url} (HTTP 404)",
                                   hint="base_url is the server root ending in /v1, e.g. "
                                        "http://127.0.0.1:8000/v1")
            if body.get("continue_final_message"):
                return ConfigError(f"{self.url} refused a reply that continues an assistant "
                                   f"prefix (continue_final_message; HTTP {status}: {detail})",
                                   hint="a prefix needs a vLLM- or SGLang-style server, or "
                                        "backend: transformers/vllm")
            if "repetition_penalty" in body:
                return ConfigError(f"{self.url} refused a request with repetition_penalty "
                                   f"(HTTP {status}: {detail})",
                                   hint="hosted OpenAI does not accept repetition_penalty: ask a "
                                        "vLLM- or SGLang-style server, use backend: "
                                        "transformers/vllm, or leave repetition_penalty unset")
        return EndpointError(f"{self.url} answered HTTP {status}: {detail}")

    def _served_models(self) -> list[str] | None:
        """Model ids from ``GET {base_url}/models``, or None if the server has no such route."""
        try:
            resp = self.http.get(f"{self.base_url}/models")
            resp.raise_for_status()
            return [m["id"] for m in resp.json().get("data", [])]
        except Exception:  # noqa: BLE001 - only used to improve an error message
            return None

    def post(self, body: dict) -> dict:
        """POST one body, retrying 429/5xx/connection errors; the parsed JSON answer."""
        import httpx

        retries = self.cfg.max_retries
        for attempt in range(retries + 1):
            with self._count_lock:
                self.attempts += 1
            try:
                resp = self.http.post(self.url, json=body)
            except httpx.TransportError as err:
                cause, wait_for = f"{type(err).__name__}: {self._scrub(str(err))}", None
            else:
                if resp.status_code == 200:
                    try:
                        return resp.json()
                    except ValueError:
                        raise EndpointError(f"{self.url} answered 200 with a body that is not "
                                            f"JSON: {resp.text[:200]!r}") from None
                if resp.status_code not in RETRY_STATUS:
                    raise self._fatal(resp.status_code, resp.text, body)
                detail = self._scrub(" ".join(resp.text.split()))[:200]
                cause = f"HTTP {resp.status_code}" + (f" {detail}" if detail else "")
                wait_for = resp.headers.get("retry-after")
            if attempt == retries:
                break
            delay = backoff_delay(attempt, wait_for)
            log.warning("%s: %s; retry %d/%d in %.1f s", self.url, cause, attempt + 1, retries,
                        delay)
            time.sleep(delay)
        raise EndpointError(f"{self.url} failed after {retries + 1} attempts: {cause}",
                            hint="is the server up and base_url right? (max_retries, timeout "
                                 "in the endpoint config)")

    def complete(self, req: ChatRequest) -> ChatReply:
        """One request; asks again for the rest when a server returns fewer than ``n`` choices."""
        reply = ChatReply([], tokens=[] if req.logprobs_of else None,
                          logprobs=[] if req.logprobs_of else None,
                          token_logprobs=[] if req.token_logprobs else None)
        while len(reply.texts) < req.n:
            got = parse_choices(self.post(self._body(req, req.n - len(reply.texts),
                                                     req.seed + len(reply.texts))),
                                req.logprobs_of, req.token_logprobs)
            if not got.texts:
                raise EndpointError(f"{self.url}: the answer for model {self.model!r} has no "
                                    f"choices")
            reply.texts += got.texts
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
        lose). On the first failure no new request starts; the ones in flight finish and are yielded
        (so their answers are cached), then the failure is raised.
        """
        with ThreadPoolExecutor(max_workers=self.cfg.max_concurrency,
                                thread_name_prefix="endpoint") as pool:
            pending: dict[Future, int] = {}
            todo = iter(range(len(requests)))
            error: BaseException | None = None
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
            if error is not None:
                raise error

    def close(self) -> None:
        self.http.close()
