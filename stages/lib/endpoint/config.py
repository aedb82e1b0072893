"""``EndpointConfig``: which LLM to ask and how, as a section nested in a stage's config.

    judge:
      backend: openai                       # openai (any OpenAI-style server), transformers, vllm
      base_url: http://127.0.0.1:8000/v1    # `vllm serve`, SGLang, llama.cpp; null = api.openai.com
      model: Qwen/Qwen2.5-7B-Instruct       # served name; a checkpoint dir for transformers/vllm
      api_key_env: OPENAI_API_KEY           # the *name* of the variable with the key; null = none

The key itself is never a config value: it is read from ``api_key_env`` when the client opens,
so it never reaches a config file, a cache key, a log or the request cache.
Ranges are ``annotated_types`` constraints, which the orchestrator's plan-time check (pydantic)
reads like ``Field(ge=...)``; importing this module does not import pydantic.
``max_concurrency``, ``timeout``, ``max_retries`` and ``api_key_env`` cannot change an answer and
are left out of the step's cache key (``nonsemantic``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from annotated_types import Ge, Gt, Le   # what pydantic's Field(ge=...) makes, without pydantic

from orchestrator.api import ConfigError, nonsemantic

BACKENDS = ("openai", "transformers", "vllm")
Positive = Annotated[int, Ge(1)]
NonNegative = Annotated[int, Ge(0)]


@dataclass
class EndpointConfig:
    backend: Literal["openai", "transformers", "vllm"] = "openai"
    model: str = "gpt-4o"                # served model name, or a checkpoint directory (local)
    base_url: str | None = None          # openai: server root ending in /v1 (None = api.openai.com)
    api_key_env: str | None = nonsemantic("OPENAI_API_KEY")  # env var with the key; None: no key
    max_concurrency: Positive = nonsemantic(8)    # requests in flight at once (openai), per shard
    timeout: Annotated[float, Gt(0)] = nonsemantic(120.0)  # seconds without data from the server
    # (each connect and each read), not a total: a server sending a byte now and then holds it
    max_retries: NonNegative = nonsemantic(6)     # on 429, 5xx, connection errors, with backoff
    temperature: Annotated[float, Ge(0)] = 0.0   # request defaults (a request may override)
    top_p: Annotated[float, Gt(0), Le(1)] = 1.0
    max_tokens: Positive = 512
    seed: Annotated[int, Ge(0)] = 0
    top_logprobs: NonNegative = 20       # alternatives per position when logprobs are asked
    device: str = nonsemantic("auto")    # transformers/vllm: auto = the step's device
    batch_size: Positive = nonsemantic(8)     # transformers: conversations per forward batch

    def __post_init__(self):
        self.check("", opening=False)

    def check(self, where: str = "endpoint", opening: bool = True) -> None:
        """Raise a one-line ``ConfigError`` naming the key for a value that cannot work.

        Runs when the config is built (at plan time inside a stage config, where the
        orchestrator also checks the annotated ranges with their full key path) and again when a
        client opens. The value of ``api_key_env`` is never echoed: it might be a pasted key.
        """
        where = f"{where}." if where else ""
        if self.backend not in BACKENDS:
            raise ConfigError(f"{where}backend: {self.backend!r} is not one of {BACKENDS}")
        # an in-process backend may leave `model` empty in the config: the stage fills it with the
        # checkpoint wired to the step (checked again when the client opens)
        if not self.model and (opening or self.backend == "openai"):
            raise ConfigError(f"{where}model is empty",
                              hint="a served model name (openai) or a checkpoint directory")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}base_url: {self.base_url!r} is not an http(s) URL",
                              hint="e.g. http://127.0.0.1:8000/v1")
        if self.api_key_env is not None and not _is_variable_name(self.api_key_env):
            raise ConfigError(f"{where}api_key_env must be the NAME of an environment variable "
                              "in capitals (like OPENAI_API_KEY), not the key itself")
        for name, low in (("max_concurrency", 1), ("max_tokens", 1), ("max_retries", 0),
                          ("top_logprobs", 0), ("batch_size", 1)):
            if getattr(self, name) < low:
                raise ConfigError(f"{where}{name} must be >= {low}, got {getattr(self, name)}")
        if self.timeout <= 0:
            raise ConfigError(f"{where}timeout must be > 0 seconds, got {self.timeout}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ConfigError(f"{where}need temperature >= 0 and 0 < top_p <= 1, got "
                              f"temperature={self.temperature}, top_p={self.top_p}")

    def needed_env(self) -> dict[str, str]:
        """The environment variables a client of this endpoint reads: ``{key: NAME}``, checked
        by ``rag plan`` (a problem) and ``rag run`` (refused before any step) for the steps a run
        computes, so a missing API key is found before hours of upstream work, not after.

        >>> EndpointConfig(api_key_env="MY_KEY").needed_env()
        {'api_key_env': 'MY_KEY'}
        >>> EndpointConfig(backend="vllm", model="m").needed_env(), EndpointConfig(api_key_env=None).needed_env()
        ({}, {})
        """
        if self.backend != "openai" or not self.api_key_env:
            return {}
        return {"api_key_env": self.api_key_env}


def _is_variable_name(text: str) -> bool:
    """Whether ``text`` reads as an environment variable's name: capitals, digits and ``_``,
    as keys never are (``sk-...``, ``gsk_...``, ``hf_...`` hold small letters or dashes).

    >>> [_is_variable_name(t) for t in ("OPENAI_API_KEY", "K2", "gsk_LIT5Abc", "hf_x", "2X")]
    [True, True, False, False, False]
    """
    import re

    return re.fullmatch(r"[A-Z_][A-Z0-9_]{0,99}", text) is not None
