"""Toy stages whose configs use what real stage configs declare: choices (``Literal``), ranges
(``Annotated[..., Field(ge=...)]``), nested sections, typed mappings, cross-field rules in
``__post_init__``, and the ``plan_notes`` hook. Used by the bad-input and secret fault tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field

from orchestrator.api import ConfigError, Metrics, StageContext, nonsemantic, stage
from tests.toy.stages import Numbers


class Report(Metrics):
    """What a toy trainer reports."""


@dataclass
class JudgeConfig:
    model: str = "judge-small"
    temperature: Annotated[float, Field(ge=0.0, le=2.0)] = 0.0
    timeout: float = nonsemantic(30.0)      # cannot change a result: not in the cache key


@dataclass
class TrainConfig:
    loss_type: Literal["sigmoid", "hinge", "ipo"] = "sigmoid"
    lr: float = 1e-4
    epochs: Annotated[int, Field(ge=1)] = 1
    batch_size: Annotated[int, Field(ge=1)] = 8
    weights: dict[str, float] = field(default_factory=lambda: {"em": 1.0})
    judge: JudgeConfig | None = None
    api_key: str = ""

    def __post_init__(self):
        if self.weights.get("judge") and self.judge is None:
            raise ConfigError("weights.judge is set but there is no judge section; add judge: {model: ...}")

    def plan_notes(self, resources: dict) -> list[str]:
        gpus = max(resources["gpus"], 1)
        if self.batch_size % gpus:
            raise ConfigError(f"batch_size {self.batch_size} does not split over {gpus} GPUs; "
                              f"use a multiple of {gpus}")
        return [f"{self.epochs} epoch(s), {self.batch_size // gpus} rows per device"]


@stage("toy_train", version=1)
def toy_train(numbers: Numbers, cfg: TrainConfig, ctx: StageContext) -> Report:
    """Sums its input, weighted; reports whether it was given a key (never the key itself)."""
    total = sum(r["x"] for r in numbers.rows()) * cfg.weights.get("em", 1.0)
    judged = cfg.judge.model if cfg.judge is not None else ""
    return {"total": total, "has_key": bool(cfg.api_key), "judge": judged, "label": ctx.step}
