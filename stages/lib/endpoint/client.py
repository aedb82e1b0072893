"""``EndpointClient``: ask an LLM many chat requests, each paid for once.

    from stages.lib.endpoint import EndpointConfig, open_client

    with open_client(cfg.judge, ctx.scratch / "judge", device=ctx.device,
                     answers=ctx.answers, refresh=ctx.forced) as llm:
        replies = llm.chat(conversations, max_tokens=512,
                           progress=lambda it: ctx.progress(it, desc="judge"))
    texts = [r.text for r in replies]

Before asking, every request is looked up in the on-disk cache: a server's answers in the
cache's ``answers/`` folder (``ctx.answers``, shared by every step, sweep member and run), an
in-process model's under the caller's directory (the step's ``ctx.scratch``, which survives a
killed task); only misses go to the backend, and each answer is written to the cache as it
arrives. A step killed after 60,000 of 100,000 calls therefore resumes at call 60,001.
Identical requests in one batch are asked once.

A server's empty reply (:attr:`ChatReply.unanswered`: ``content: ""`` or a null message, and
not cut off at ``max_tokens``) is returned but not cached, so the step, computed again, asks it
again; replies
that did not end by themselves (``finish_reason`` ``length``: cut off at ``max_tokens``;
``content_filter``) are cached as they are. Each kind is counted and logged as one warning
per batch. On Ctrl-C or SIGTERM (``KeyboardInterrupt``) the backend stops its requests at once;
the answers that arrived before stay cached.

Backends (``EndpointConfig.backend``): ``openai`` (any OpenAI-compatible HTTP server, see
:mod:`~stages.lib.endpoint.openai_http`), ``transformers`` and ``vllm`` (a checkpoint directory
run in this process, see :mod:`~stages.lib.endpoint.local`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

from stages.lib.endpoint.cache import RequestCache
from stages.lib.endpoint.config import EndpointConfig
from stages.lib.endpoint.request import ChatReply, ChatRequest, request_key, request_record

log = logging.getLogger(__name__)

Progress = Callable[[Iterable], Iterable]
"""``ctx.progress``-style: wraps an iterable (with ``len``) and yields its items."""


class Backend(Protocol):
    """What a model backend offers the client (requests arrive with every default resolved)."""

    model: str

    def run(self, requests: list[ChatRequest],
            on_reply: Callable[[int, ChatReply], None]) -> Iterator[tuple[int, ChatReply]]:
        """``(index into requests, reply)`` pairs, in any order, as soon as each is done.

        ``on_reply(index, reply)`` is called (in any thread) the moment a reply exists, before
        it is yielded and before that thread asks anything else: the client caches it there.
        """

    def close(self) -> None: ...


class _Sized:
    """An iterator with a length, so ``ctx.progress`` can show ``done/total``."""

    def __init__(self, it: Iterator, n: int):
        self.it, self.n = it, n

    def __iter__(self) -> Iterator:
        return self.it

    def __len__(self) -> int:
        return self.n


FINISHED = (None, "stop")
"""``finish_reason`` values of a completion that ended by itself (None: not reported)."""

WHY = {"length": "were cut off at max_tokens", "content_filter": "were stopped by the server's "
                                                                 "content filter"}


def finish_warnings(reasons: dict[str, int], total: int) -> list[str]:
    """One warning per ``finish_reason`` that is not a natural end, for ``total`` replies.

    >>> finish_warnings({"length": 3}, 20)
    ["3 of 20 replies were cut off at max_tokens (finish_reason 'length'), cached as they are"]
    """
    return [f"{n} of {total} replies {WHY.get(why, 'ended early')} (finish_reason {why!r}), "
            f"cached as they are" for why, n in sorted(reasons.items())]


class EndpointClient:
    """Cached, resumable chat requests over one :class:`Backend`."""

    def __init__(self, cfg: EndpointConfig, cache_dir: str | Path, backend: Backend,
                 answers: str | Path | None = None, refresh: bool = False):
        self.cfg, self.backend = cfg, backend
        if answers is None:
            self.cache = RequestCache(cache_dir)
        else:   # shared by every step; the step's own cache (answers from before) read too;
            # a forced step asks again (reading only what this attempt asked: its resume)
            earlier = RequestCache(cache_dir) if refresh or Path(cache_dir).is_dir() else None
            self.cache = RequestCache(answers, earlier=earlier, touch=True, refresh=refresh)
        self.cache_hits = 0     # requests answered from the cache, over this client's life
        self.asked = 0          # requests sent to the backend (each once, retries not counted)
        self.empty = 0          # a server's empty replies (never cached), over this client's life
        self.finish_reasons: Counter[str] = Counter()   # replies that did not end by themselves

    def complete(self, requests: Sequence[ChatRequest],
                 progress: Progress | None = None) -> list[ChatReply]:
        """One reply per request, in order; cached ones are not asked again."""
        resolved = [r.resolved(self.cfg) for r in requests]
        keys = [request_key(self.backend.model, r) for r in resolved]
        replies: dict[str, ChatReply] = {}
        todo: dict[str, ChatRequest] = {}
        for key, req in zip(keys, resolved):
            if key in replies or key in todo:
                continue
            hit = self.cache.get(key)
            if hit is not None:
                replies[key] = hit
            else:
                todo[key] = req
        self.cache_hits += len(replies)
        log.info("%s: %d requests, %d distinct, %d cached, %d to ask", self.backend.model,
                 len(keys), len(replies) + len(todo), len(replies), len(todo))
        if todo:
            self._ask(todo, replies, progress)
        self._count(list(replies.values()))
        return [replies[k] for k in keys]

    def _ask(self, todo: dict[str, ChatRequest], replies: dict[str, ChatReply],
             progress: Progress | None) -> None:
        """Ask the backend for ``todo`` (key -> request), caching and adding to ``replies``."""
        todo_keys, todo_reqs = list(todo), list(todo.values())

        def keep(i: int, reply: ChatReply) -> None:
            if not reply.unanswered:     # no answer: asked again if recomputed
                self.cache.put(todo_keys[i], request_record(self.backend.model, todo_reqs[i]),
                               reply)

        run = self.backend.run(todo_reqs, keep)
        try:
            answers = _Sized(iter(run), len(todo_reqs))
            for i, reply in (progress(answers) if progress is not None else answers):
                replies[todo_keys[i]] = reply
                self.asked += 1
        finally:
            # on Ctrl-C in this loop the backend stops its requests now, not when the suspended
            # generator is collected
            close = getattr(run, "close", None)
            if close is not None:
                close()

    def _count(self, replies: list[ChatReply]) -> None:
        """Count empty and unfinished replies; one warning line for each kind."""
        empty = sum(r.unanswered for r in replies)
        reasons = Counter(why for r in replies if not r.unanswered
                          for why in set(r.meta.get("finish_reasons") or ()) if why not in FINISHED)
        self.empty += empty
        self.finish_reasons.update(reasons)
        model = self.backend.model
        if empty:
            log.warning("%s: %d of %d replies were empty (the server sent no text), not cached: "
                        "the step, if it is computed again, asks them again", model, empty,
                        len(replies))
        for line in finish_warnings(reasons, len(replies)):
            log.warning("%s: %s", model, line)

    def chat(self, conversations: Sequence[Sequence[dict]], *, progress: Progress | None = None,
             **params) -> list[ChatReply]:
        """:meth:`complete` for plain conversations; ``params`` are :class:`ChatRequest` fields
        (``temperature``, ``max_tokens``, ``seed``, ``n``, ``stop``, ``logprobs_of``, ...)."""
        return self.complete([ChatRequest(list(c), **params) for c in conversations],
                             progress=progress)

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "EndpointClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_client(cfg: EndpointConfig, cache_dir: str | Path, device: str = "cpu",
                where: str = "endpoint", answers: str | Path | None = None,
                refresh: bool = False) -> EndpointClient:
    """Check ``cfg`` and open its backend; ``cache_dir`` holds the request cache.

    ``device`` is the step's device (``ctx.device``), used by local backends when
    ``cfg.device`` is ``auto``; ``where`` names the config section in error messages.
    ``answers`` (a stage passes ``ctx.answers``): where a server's (``openai``) answers are kept
    instead, under :func:`endpoint_folder`, shared by every step, sweep member and run, so a
    paid request is asked once even when another setting of the step changes its cache key.
    ``refresh`` (a stage passes ``ctx.forced``): a step recomputed with ``--force``/``--from``
    asks the server again, and its answers replace the shared ones.
    """
    cfg.check(where)
    if cfg.backend == "openai":
        from stages.lib.endpoint.openai_http import OpenAIHttpBackend

        backend: Backend = OpenAIHttpBackend(cfg)
        shared = None if answers is None else Path(answers) / endpoint_folder(backend.base_url)
        return EndpointClient(cfg, cache_dir, backend, answers=shared, refresh=refresh)
    from stages.lib.endpoint.local import LocalBackend

    backend = LocalBackend(cfg, device=device if cfg.device == "auto" else cfg.device)
    return EndpointClient(cfg, cache_dir, backend)


def endpoint_folder(base_url: str) -> str:
    """The folder of one server's answers: its host, port and path, without credentials (a
    rotated password asks nothing again); the request key holds the model and every setting
    that changes an answer.

    >>> endpoint_folder("http://u:pw@127.0.0.1:8000/v1") == endpoint_folder("http://127.0.0.1:8000/v1")
    True
    >>> endpoint_folder("https://api.openai.com/v1")
    'api.openai.com-443-v1-bf7d5842'
    """
    import hashlib
    import re
    from urllib.parse import urlsplit

    parts = urlsplit(base_url.rstrip("/"))
    port = parts.port or (443 if parts.scheme == "https" else 80)
    where = f"{parts.scheme}://{parts.hostname}:{port}{parts.path}"
    name = re.sub(r"[^A-Za-z0-9.]+", "-", f"{parts.hostname}-{port}{parts.path}").strip("-")
    return f"{name[:80]}-{hashlib.sha256(where.encode()).hexdigest()[:8]}"
