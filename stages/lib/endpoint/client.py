"""``EndpointClient``: ask an LLM many chat requests, each paid for once.

    from stages.lib.endpoint import EndpointConfig, open_client

    with open_client(cfg.judge, ctx.scratch / "judge", device=ctx.device) as llm:
        replies = llm.chat(conversations, max_tokens=512,
                           progress=lambda it: ctx.progress(it, desc="judge"))
    texts = [r.text for r in replies]

Before asking, every request is looked up in the on-disk cache under the caller's directory
(the step's ``ctx.scratch``, which survives a killed task); only misses go to the backend, and
each answer is written to the cache as it arrives. A step killed after 60,000 of 100,000 calls
therefore resumes at call 60,001. Identical requests in one batch are asked once.

Backends (``EndpointConfig.backend``): ``openai`` (any OpenAI-compatible HTTP server, see
:mod:`~stages.lib.endpoint.openai_http`), ``transformers`` and ``vllm`` (a checkpoint directory
run in this process, see :mod:`~stages.lib.endpoint.local`).
"""

from __future__ import annotations

import logging
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


class EndpointClient:
    """Cached, resumable chat requests over one :class:`Backend`."""

    def __init__(self, cfg: EndpointConfig, cache_dir: str | Path, backend: Backend):
        self.cfg, self.backend = cfg, backend
        self.cache = RequestCache(cache_dir)
        self.cache_hits = 0     # requests answered from the cache, over this client's life
        self.asked = 0          # requests sent to the backend (each once, retries not counted)

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
        if not todo:
            return [replies[k] for k in keys]
        todo_keys, todo_reqs = list(todo), list(todo.values())

        def keep(i: int, reply: ChatReply) -> None:
            self.cache.put(todo_keys[i], request_record(self.backend.model, todo_reqs[i]), reply)

        answers = _Sized(self.backend.run(todo_reqs, keep), len(todo_reqs))
        for i, reply in (progress(answers) if progress is not None else answers):
            replies[todo_keys[i]] = reply
            self.asked += 1
        return [replies[k] for k in keys]

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
                where: str = "endpoint") -> EndpointClient:
    """Check ``cfg`` and open its backend; ``cache_dir`` holds the request cache.

    ``device`` is the step's device (``ctx.device``), used by local backends when
    ``cfg.device`` is ``auto``; ``where`` names the config section in error messages.
    """
    cfg.check(where)
    if cfg.backend == "openai":
        from stages.lib.endpoint.openai_http import OpenAIHttpBackend

        backend: Backend = OpenAIHttpBackend(cfg)
    else:
        from stages.lib.endpoint.local import LocalBackend

        backend = LocalBackend(cfg, device=device if cfg.device == "auto" else cfg.device)
    return EndpointClient(cfg, cache_dir, backend)
