"""A recipe's ``ragline:`` block: how to run it, checked like a step config (same messages).

    ragline:
      imports: [my_stages]       # extra stage modules (a recipe's own, like a Hydra app's)
      runs_dir: runs             # run records and, unless RAGLINE_CACHE is set, the cache
      executor: {name: local, ...}   # the config group conf/executor/; its keys are checked by
                                     # orchestrator.executors.executor_settings (one place)
      cache: {on_code_change: warn}   # warn | rerun | ignore when a stage's code changed unversioned
      isolate, max_parallel, slurm   # older spellings of executor keys, still accepted
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from annotated_types import Ge

from orchestrator.errors import ConfigError
from orchestrator.hashing import canonical_json
from orchestrator.stage_config import check_step_config


@dataclass
class CacheSettings:
    on_code_change: Literal["warn", "rerun", "ignore"] = "warn"


@dataclass
class Settings:
    imports: list[str] = field(default_factory=list)
    runs_dir: str = "runs"
    executor: str | dict[str, Any] = "local"
    isolate: Literal["auto", "always", "never"] = "auto"
    max_parallel: Annotated[int, Ge(0)] = 0
    slurm: dict[str, Any] = field(default_factory=dict)
    cache: CacheSettings = field(default_factory=CacheSettings)


def check_settings(values: dict) -> dict:
    """The ``ragline`` block with defaults filled in, as plain data; raises ``ConfigError``.

    >>> check_settings({"max_parallel": 2})["cache"]
    {'on_code_change': 'warn'}
    """
    if not isinstance(values, dict):
        raise ConfigError(f"ragline: expected a mapping, got {values!r}", key="ragline")
    return _checked(canonical_json(values))


@functools.lru_cache(maxsize=256)
def _checked(canonical: str) -> dict:
    """``check_settings`` by value: a sweep's members share one ``ragline`` block, checked once."""
    values = json.loads(canonical)
    checked = check_step_config(Settings, values, "ragline", canonical, reserved=())[0]
    _check_executor({k: v for k, v in values.items() if k in ("executor", "isolate", "max_parallel", "slurm")})
    return checked


def _check_executor(values: dict) -> None:
    """The executor block, by the executors package's own rules (so `rag plan` catches a typo)."""
    try:
        from orchestrator.executors import executor_settings
    except ImportError:  # an executors package without the hook: it checks when it starts
        return
    try:
        executor_settings(values)
    except ConfigError as e:   # placed at the key it names (an override, a group file's line)
        named = e.message.partition(":")[0]
        e.key = e.key or (named if named.startswith("ragline.executor.") else "ragline.executor")
        raise
