"""One chat request and its reply, as plain JSON-able values, and the request's cache key.

A request is everything that decides the answer: model, messages, sampling parameters (the
repetition penalty among them), seed, which tokens' log-probabilities to report, and whether to
report the generated tokens' own. Its key is the SHA-256 of that, written as canonical JSON, so
the same question asked again (in this run or after a kill) is found in the cache whatever its
position in the batch. The server address and the API key are not part of it.

    >>> r = ChatRequest([{"role": "user", "content": "Hi"}], max_tokens=8)
    >>> request_key("m", r) == request_key("m", ChatRequest([{"role": "user", "content": "Hi"}],
    ...                                                     max_tokens=8))
    True
    >>> request_key("m", r) == request_key("m", ChatRequest(r.messages, max_tokens=8, seed=1))
    False
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from orchestrator.api import ConfigError


@dataclass(frozen=True)
class ChatRequest:
    """Chat messages and sampling parameters; ``None`` takes the endpoint config's default.

    ``logprobs_of``: token strings (``"[Relevant]"``, ``" yes"``) whose log-probability is
    reported at every generated position (see :class:`ChatReply`).
    ``token_logprobs``: also report each generated token's own log-probability
    (:attr:`ChatReply.token_logprobs`; Self-RAG's sequence score is exp of their mean).
    ``prefix``: assistant text the reply continues (Self-RAG: ``"[Retrieval]<paragraph>...
    </paragraph>"``); the reply holds only the new text, and log-probabilities are those of the
    positions generated after the prefix.
    ``repetition_penalty``: vLLM's (and transformers') multiplicative penalty on the logits of
    every token already in the prompt or the reply (a logit l becomes l / p if l > 0, else
    l * p); ``None`` sends none, and 1.0 (no penalty) resolves to ``None``, the same request.
    It changes the sampled or greedy tokens, not the reported log-probabilities (the model's
    own). Hosted OpenAI rejects the field; vLLM and SGLang servers accept it.
    """

    messages: list[dict]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    n: int = 1
    stop: tuple[str, ...] = ()
    logprobs_of: tuple[str, ...] = ()
    prefix: str = ""
    token_logprobs: bool = False
    repetition_penalty: float | None = None
    top_logprobs: int | None = None   # alternatives per position; resolved only with logprobs_of

    def __post_init__(self):
        check_repetition_penalty(self.repetition_penalty)

    def resolved(self, cfg) -> "ChatRequest":
        """This request with every ``None`` replaced by the default in ``cfg`` (EndpointConfig)."""
        pick = lambda mine, default: default if mine is None else mine  # noqa: E731
        return ChatRequest(
            messages=[{"role": m["role"], "content": m["content"]} for m in self.messages],
            temperature=float(pick(self.temperature, cfg.temperature)),
            top_p=float(pick(self.top_p, cfg.top_p)),
            max_tokens=int(pick(self.max_tokens, cfg.max_tokens)),
            seed=int(pick(self.seed, cfg.seed)), n=int(self.n), stop=tuple(self.stop),
            logprobs_of=tuple(self.logprobs_of), prefix=self.prefix,
            token_logprobs=bool(self.token_logprobs),
            repetition_penalty=None if self.repetition_penalty in (None, 1.0)
            else float(self.repetition_penalty),
            # how many alternatives are reported decides which asked tokens a reply holds: part
            # of the request (and of its key: answers are shared by steps), when any are asked
            top_logprobs=int(pick(self.top_logprobs, cfg.top_logprobs)) if self.logprobs_of
            else None)


@dataclass
class ChatReply:
    """``n`` completions of one request.

    With ``logprobs_of`` asked: ``tokens[j]`` are completion j's generated tokens and
    ``logprobs[j][t]`` maps each asked token to its log-probability at position t (the
    distribution the t-th generated token was drawn from). An HTTP server reports only its
    ``top_logprobs`` alternatives, so an asked token outside them is absent; local backends
    report every asked token.

    With ``token_logprobs`` asked: ``token_logprobs[j]`` is the log-probability of each token
    completion j generated, in order, the end-of-sequence token included where the completion
    ended on one (vLLM counts it among the generated tokens and in ``cumulative_logprob``; the
    transformers backend adds it although its ``tokens`` leave it out, so this list may be one
    longer than ``tokens[j]``). A server reports what it puts in ``logprobs.content``.

    ``meta["finish_reasons"]`` (HTTP server): why each completion ended, as the server said
    (``stop``, ``length`` = cut at ``max_tokens``, ``content_filter``, or None).
    """

    texts: list[str]
    tokens: list[list[str]] | None = None
    logprobs: list[list[dict[str, float]]] | None = None
    meta: dict = field(default_factory=dict)
    token_logprobs: list[list[float]] | None = None

    @property
    def text(self) -> str:
        return self.texts[0]

    @property
    def unanswered(self) -> bool:
        """A server sent no answer: it reported how each completion ended (``meta
        ["finish_reasons"]``, HTTP backends), none was cut off at ``max_tokens``, and no
        completion holds text or a token (``content: ""`` or a null message, what a failing
        server or proxy sends). The client returns such a reply but never caches it.

        Not unanswered: a completion cut off with no visible text (a model that spent
        ``max_tokens`` on whitespace or hidden reasoning: asking again would repeat it), and an
        in-process model's empty completion (its answer).

        >>> stop = {"finish_reasons": ["stop"]}
        >>> ChatReply([""], meta=stop).unanswered, ChatReply(["a"], meta=stop).unanswered
        (True, False)
        >>> cut = {"finish_reasons": ["length"]}
        >>> ChatReply([""], meta=cut).unanswered, ChatReply([""]).unanswered
        (False, False)
        """
        reasons = self.meta.get("finish_reasons")
        return reasons is not None and "length" not in reasons and not (
            any(t.strip() for t in self.texts) or any(self.tokens or ())
            or any(self.token_logprobs or ()))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "ChatReply":
        return cls(texts=list(data["texts"]), tokens=data.get("tokens"),
                   logprobs=data.get("logprobs"), meta=data.get("meta") or {},
                   token_logprobs=data.get("token_logprobs"))


def check_repetition_penalty(p) -> None:
    """A one-line ``ConfigError`` unless ``p`` is None (unset) or a number > 0 (NaN is not).

    >>> check_repetition_penalty(1.1)
    >>> try:
    ...     check_repetition_penalty(0)
    ... except ConfigError as e:
    ...     print(e.args[0])
    repetition_penalty: expected a number > 0 (1.0 = no penalty), got 0
    """
    if p is not None and (isinstance(p, bool) or not (isinstance(p, (int, float)) and p > 0)):
        raise ConfigError(f"repetition_penalty: expected a number > 0 (1.0 = no penalty), "
                          f"got {p!r}", hint="vLLM's usual values are 1.0 to 1.2 (the "
                                             "Reinforced-IR paper: 1.1); or leave it unset")


def request_record(model: str, request: ChatRequest) -> dict:
    """The JSON that identifies a (resolved) request: model + every request field (an empty
    ``prefix``, ``token_logprobs: false`` and ``repetition_penalty: None`` are left out, so keys
    of requests without them did not change when they were added).

    >>> sorted(request_record("m", ChatRequest([], token_logprobs=True)))[-3:]
    ['temperature', 'token_logprobs', 'top_p']
    >>> "token_logprobs" in request_record("m", ChatRequest([]))
    False
    >>> [request_record("m", ChatRequest([], repetition_penalty=p)).get("repetition_penalty")
    ...  for p in (None, 1.1)]
    [None, 1.1]
    >>> request_record("m", ChatRequest([], logprobs_of=("a",), top_logprobs=5))["top_logprobs"]
    5
    """
    body = asdict(request)
    body["stop"], body["logprobs_of"] = list(request.stop), list(request.logprobs_of)
    if not request.prefix:
        del body["prefix"]
    if not request.token_logprobs:
        del body["token_logprobs"]
    if request.repetition_penalty is None:
        del body["repetition_penalty"]
    if request.top_logprobs is None:
        del body["top_logprobs"]
    return {"model": model, **body}


def request_key(model: str, request: ChatRequest) -> str:
    """SHA-256 hex of the canonical JSON of :func:`request_record`."""
    text = json.dumps(request_record(model, request), sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
