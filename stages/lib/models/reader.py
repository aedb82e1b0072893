"""A stage's reader: the checkpoint wired as its ``model`` input, or an LLM behind an endpoint.

Stages whose generator answers conversations (``infer_topk``, ``dpa_rag.preference``) read with
exactly one of:

- a checkpoint wired as the step's ``model`` input, run in this process by a generator of
  :mod:`stages.lib.models.generation` (transformers, or vLLM on CUDA), as they always did;
- the config's ``reader`` section, an :class:`~stages.lib.endpoint.EndpointConfig`: a model
  that is only reachable through an API (DPA-RAG's black-box readers, GPT-3.5 and GPT-4), any
  OpenAI-compatible server (``vllm serve``), or a checkpoint run by the endpoint client's own
  local backends. Every request is cached (``docs/llm-endpoint.md``: a server's answers are
  shared by steps), so a killed step resumes without asking twice.

``rag plan`` refuses a step that gives both or neither (:func:`reader_notes`, called by the
configs' ``plan_notes`` with the wired input names); :func:`answer` checks the same at run time.

    from stages.lib.models.reader import answer

    texts = answer(conversations, model=model, reader=cfg.reader, ctx=ctx, max_new_tokens=20)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from orchestrator.api import ConfigError

if TYPE_CHECKING:
    from orchestrator.api import StageContext
    from stages.lib.endpoint import EndpointConfig
    from stages.schemas import Model


def _check_one(has_model: bool, reader: EndpointConfig | None, where: str) -> None:
    """A ``ConfigError`` unless exactly one of the wired ``model`` and ``reader`` is given;
    ``where`` prefixes the message (the plan adds the step itself)."""
    if has_model and reader is not None:
        raise ConfigError(f"{where}reader is set and inputs.model is wired: the step would have "
                          "two readers",
                          hint="to ask the reader endpoint, unwire the checkpoint (inputs: "
                               "{model: null}); to run the checkpoint, set reader: null")
    if not has_model and reader is None:
        raise ConfigError(f"{where}no reader: inputs.model is not wired and reader is not set",
                          hint="wire inputs.model to a checkpoint, or set reader: {backend: "
                               "openai, model: gpt-4o-mini} (any OpenAI-compatible server, "
                               "with base_url)")


def describe(reader: EndpointConfig) -> str:
    """The reader endpoint in a few words, for a plan note or a log line (never the key).

    >>> from stages.lib.endpoint import EndpointConfig
    >>> describe(EndpointConfig(model="gpt-3.5-turbo"))
    'openai gpt-3.5-turbo at https://api.openai.com/v1'
    >>> describe(EndpointConfig(model="m", base_url="http://u:pw@10.0.0.5:8000/v1"))
    'openai m at http://u:***@10.0.0.5:8000/v1'
    >>> describe(EndpointConfig(backend="transformers", model="runs/reader"))
    'transformers runs/reader (in this process)'
    """
    from stages.lib.endpoint.openai_http import OPENAI_URL, redact_url

    if reader.backend == "openai":   # a password in base_url is not shown (plan notes, logs)
        return f"openai {reader.model} at {redact_url(reader.base_url or OPENAI_URL)}"
    return f"{reader.backend} {reader.model} (in this process)"


def reader_notes(reader: EndpointConfig | None, resources: dict) -> list[str]:
    """``plan_notes`` of a config with a ``reader`` section: a note naming the endpoint, or none
    for a wired checkpoint; a ``ConfigError`` when the step gives both or neither.
    ``resources["inputs"]`` is the step's wired input names (without it: no check).

    >>> from stages.lib.endpoint import EndpointConfig
    >>> reader_notes(EndpointConfig(model="gpt-4o-mini"), {"inputs": ["prompt", "questions"]})
    ['reader: openai gpt-4o-mini at https://api.openai.com/v1']
    >>> reader_notes(None, {"inputs": ["model", "prompt", "questions"]})
    []
    >>> reader_notes(None, {"inputs": ["prompt", "questions"]})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    orchestrator.errors.ConfigError: no reader: inputs.model is not wired and reader is not set
      hint: wire inputs.model to a checkpoint, or set reader: {backend: openai, ...}...
    """
    if "inputs" in resources:
        _check_one("model" in resources["inputs"], reader, "")
    if reader is None:
        return []
    reader.check("reader")   # a local backend with an empty model fails here, not at run time
    return [f"reader: {describe(reader)}"]


def answer(conversations: Sequence[list[dict]], *, model: Model | None,
           reader: EndpointConfig | None, ctx: StageContext, max_new_tokens: int,
           temperature: float = 0.0, top_p: float = 1.0, seed: int = 0, backend: str = "auto",
           batch_size: int = 16, desc: str = "generate",
           seeds: Sequence[int] | None = None) -> list[str]:
    """One answer per conversation, from the wired checkpoint ``model`` (a ``Model`` input,
    ``backend`` and ``batch_size`` as the stages' configs say) or from the ``reader`` endpoint.

    Greedy at ``temperature`` 0; above it, nucleus sampling (``top_p``) seeded by ``seed``: the
    local generator seeds each conversation by ``seeds[i]`` when given (a stage sharded by rows
    passes one per row, from its id: the same answers whatever the shard count), else by
    ``seed`` and its position; the endpoint sends ``seed`` with every request (a server that
    honours it answers the same again; a request's answer never depends on its position).
    """
    with open_reader(model=model, reader=reader, ctx=ctx, backend=backend,
                     batch_size=batch_size) as ask:
        return ask(conversations, max_new_tokens=max_new_tokens, temperature=temperature,
                   top_p=top_p, seed=seed, desc=desc, seeds=seeds)


@contextmanager
def open_reader(*, model: Model | None, reader: EndpointConfig | None, ctx: StageContext,
                backend: str = "auto", batch_size: int = 16) -> Iterator[Callable]:
    """:func:`answer` for a stage that asks in blocks: yields ``ask(conversations, *,
    max_new_tokens, temperature=0.0, top_p=1.0, seed=0, desc="generate", seeds=None)``, the
    checkpoint loaded (or the endpoint's client opened) once for all its calls."""
    _check_one(model is not None, reader, f"steps.{ctx.step}: ")
    if reader is None:
        from stages.lib.models.generation import load_generator

        gen = load_generator(str(model.path), backend=backend, device=ctx.device)

        def ask_model(conversations, *, max_new_tokens: int, temperature: float = 0.0,
                      top_p: float = 1.0, seed: int = 0, desc: str = "generate", seeds=None):
            answers = gen.chat(list(conversations), max_new_tokens=max_new_tokens,
                               temperature=temperature, top_p=top_p, seed=seed,
                               batch_size=batch_size, seeds=seeds,
                               progress=lambda it: ctx.progress(it, desc=desc))
            return [first for first, *_ in answers]

        yield ask_model
        return

    from stages.lib.endpoint import open_client

    ctx.log.info("reader: %s", describe(reader))
    with open_client(reader, ctx.scratch / "reader", device=ctx.device,
                     answers=ctx.answers, refresh=ctx.forced,
                     where=f"steps.{ctx.step}.reader") as client:

        def ask_endpoint(conversations, *, max_new_tokens: int, temperature: float = 0.0,
                         top_p: float = 1.0, seed: int = 0, desc: str = "generate", seeds=None):
            replies = client.chat(conversations, max_tokens=max_new_tokens,
                                  temperature=temperature, top_p=top_p, seed=seed,
                                  progress=lambda it: ctx.progress(it, desc=desc))
            return [r.text for r in replies]

        yield ask_endpoint
