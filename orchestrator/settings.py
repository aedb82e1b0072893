"""A recipe's ``ragline:`` block: how to run it, checked like a step config (same messages).

    ragline:
      imports: [my_stages]       # extra stage modules (a recipe's own, like a Hydra app's)
      runs_dir: runs             # run records and, unless RAGLINE_CACHE is set, the cache
      executor: local            # or a block, see conf/executor/
      isolate: auto              # auto: light steps in-process, shards and GPU steps in workers
      max_parallel: 0            # CPU shards at once (0: one per core)
      slurm: {...}               # submitit parameters (conf/executor/slurm.yaml)
      cache: {on_code_change: warn}   # warn | rerun | ignore when a stage's code changed unversioned
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from annotated_types import Ge

from orchestrator.errors import ConfigError
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
    return check_step_config(Settings, {k: v for k, v in values.items()}, "ragline")[0]
