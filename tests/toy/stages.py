"""Toy stages for the orchestrator's tests and benchmarks: real artifacts, trivial work."""

from __future__ import annotations

import os
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import NamedTuple

import pyarrow as pa

from orchestrator.api import (DataError, Directory, File, Metrics, StageContext, Table, nonsemantic,
                              recipe_path, stage)
from stages.lib.endpoint.config import EndpointConfig
from stages.lib.prompts import PromptFile, messages


class Numbers(Table):
    schema = pa.schema([("id", pa.string()), ("x", pa.float64())])


class Words(Table):
    schema = pa.schema([("id", pa.string()), ("word", pa.string())])


class Blob(Directory):
    """A directory with one file per row."""


class Summary(Metrics):
    """Sum and count."""


@dataclass
class GenConfig:
    n: int = 8
    start: float = 0.0


@stage("toy_gen", version=1)
def toy_gen(cfg: GenConfig, path: File | None = None) -> Numbers:
    """Numbers 0..n-1 (+start), or one number per line of ``path``."""
    if path is not None:
        rows = []
        for i, line in enumerate(path.path.read_text().splitlines(), 1):
            try:
                rows.append({"id": str(i), "x": float(line)})
            except ValueError:
                raise DataError(f"{path.path}:{i}: expected a number, got {line!r}") from None
        return rows
    return [{"id": str(i), "x": cfg.start + i} for i in range(cfg.n)]


@stage("toy_random", version=1)
def toy_random(cfg: GenConfig) -> Numbers:
    """``n`` random numbers, different on every run: a stage that does not reproduce (tests of
    ``--force`` recommitting a key another run is reading)."""
    import random

    return [{"id": str(i), "x": random.random()} for i in range(cfg.n)]


@dataclass
class MapConfig:
    add: float = 0.0
    mul: float = 1.0
    sleep: float = nonsemantic(0.0)        # seconds per task, to test kills and concurrency


@stage("toy_map", version=1, shard_by="numbers")
def toy_map(numbers: Numbers, cfg: MapConfig, ctx: StageContext) -> Numbers:
    """x -> x * mul + add, row by row; shardable.

    Test hooks from the environment: ``TOY_COUNT_FILE`` gets a line per execution;
    ``TOY_FAIL`` lists ``step:shard`` tasks that raise, ``step:all`` for every shard of a step
    (the same message), and ``step:shard:late`` ones that raise FileNotFoundError after their
    ``sleep``.
    """
    me = f"{ctx.step}:{ctx.shard_index}"
    if os.environ.get("TOY_COUNT_FILE"):
        with open(os.environ["TOY_COUNT_FILE"], "a") as f:
            f.write(f"{ctx.step} {ctx.shard_index} {os.getpid()}\n")
    if me in os.environ.get("TOY_FAIL", "").split(","):
        raise RuntimeError(f"toy failure in {me}")
    if f"{ctx.step}:all" in os.environ.get("TOY_FAIL", "").split(","):
        raise RuntimeError(f"toy failure in every shard of {ctx.step}")
    rows = numbers.rows()
    out = []
    for r in ctx.progress(rows, desc="map"):
        out.append({"id": r["id"], "x": r["x"] * cfg.mul + cfg.add})
    if cfg.sleep:
        time.sleep(cfg.sleep)
    if f"{me}:late" in os.environ.get("TOY_FAIL", "").split(","):
        raise FileNotFoundError(f"toy: no such file after sleeping in {me}")
    ctx.log.info("mapped %d rows", len(out))
    return out


@dataclass
class SumConfig:
    label: str = ""


@stage("toy_sum", version=1)
def toy_sum(numbers: Numbers, cfg: SumConfig) -> Summary:
    rows = numbers.rows()
    return {"sum": float(sum(r["x"] for r in rows)), "count": len(rows), "label": cfg.label or "sum"}


class Split(NamedTuple):
    low: Numbers
    high: Numbers


@dataclass
class SplitConfig:
    threshold: float = 3.0


@stage("toy_split", version=1)
def toy_split(numbers: Numbers, cfg: SplitConfig) -> Split:
    rows = numbers.rows()
    return Split([r for r in rows if r["x"] < cfg.threshold], [r for r in rows if r["x"] >= cfg.threshold])


@stage("toy_blob", version=1, shard_by="numbers")
def toy_blob(numbers: Numbers, ctx: StageContext) -> Blob:
    out = ctx.new_dir("blob")
    for r in numbers.rows():
        (out / f"{r['id']}.txt").write_text(str(r["x"]))
    return out


@stage("toy_words", version=1)
def toy_words(numbers: Numbers) -> Words:
    return [{"id": r["id"], "word": str(r["x"])} for r in numbers.rows()]


@stage("toy_read_blob", version=1)
def toy_read_blob(blob: Blob) -> Numbers:
    rows = []
    for shard in sorted(p for p in blob.path.iterdir()):
        for f in sorted(shard.glob("*.txt")):
            rows.append({"id": f.stem, "x": float(f.read_text())})
    return rows


@stage("toy_env", version=1, shard_by="numbers")
def toy_env(numbers: Numbers, ctx: StageContext) -> Words:
    """Records the GPUs and threads each shard's worker was given (tests GPU assignment)."""
    seen = f"{os.environ.get('CUDA_VISIBLE_DEVICES', '')}|{os.environ.get('OMP_NUM_THREADS', '')}"
    return [{"id": f"{ctx.shard_index}:{r['id']}", "word": seen} for r in numbers.rows()]


@stage("toy_teacher", version=1, shard_by="numbers")
def toy_teacher(numbers: Numbers, ctx: StageContext) -> Numbers:
    """Each row "asks a teacher" once: the answer is kept in ``ctx.scratch`` under a name made
    from the row's content, as the request cache does; ``TOY_COUNT_FILE`` gets a line per
    question asked. A task listed in ``TOY_FAIL`` (``step:shard``) fails at its last row, after
    the others' answers are kept."""
    me = f"{ctx.step}:{ctx.shard_index}"
    rows = numbers.rows()
    out = []
    for i, r in enumerate(rows):
        kept = ctx.scratch / f"answer-{r['id']}-{r['x']}.txt"
        if not kept.exists():
            if me in os.environ.get("TOY_FAIL", "").split(",") and i == len(rows) - 1:
                raise RuntimeError(f"toy failure in {me}")
            if os.environ.get("TOY_COUNT_FILE"):
                with open(os.environ["TOY_COUNT_FILE"], "a") as f:
                    f.write(f"ask {r['id']}\n")
            kept.write_text(str(r["x"] * 10))
        out.append({"id": r["id"], "x": float(kept.read_text())})
    return out


@dataclass
class SettingConfig:
    setting: str | None = recipe_path(None)


@stage("toy_setting", version=1)
def toy_setting(cfg: SettingConfig) -> Summary:
    """The path a ``recipe_path`` field arrives as, and the first line of that file."""
    return {"path": cfg.setting, "text": Path(cfg.setting).read_text().splitlines()[0]}


@dataclass
class AskConfig:
    llm: EndpointConfig = field(default_factory=lambda: EndpointConfig(model="toy"))


@stage("toy_ask", version=1)
def toy_ask(numbers: Numbers, cfg: AskConfig) -> Summary:
    """Whether the endpoint's key variable is set when the step runs (tests the plan's check
    of ``needed_env``; no request is sent)."""
    return {"key_set": float(bool(os.environ.get(cfg.llm.api_key_env or ""))),
            "count": float(numbers.num_rows)}


class ToyPrompt(PromptFile):
    fills = ("n",)


@stage("toy_prompted", version=1)
def toy_prompted(numbers: Numbers, prompt: ToyPrompt) -> Summary:
    """The length of the prompt filled with the row count (tests the plan's ``check_source``)."""
    asked = messages(prompt.load(), n=numbers.num_rows)
    return {"chars": float(len(asked[-1]["content"]))}


# ---- stages that return the wrong thing (tests/orchestrator/test_stage_output_errors.py)


@dataclass
class WrongConfig:
    what: str = "ok"


@stage("toy_wrong_rows", version=1, shard_by="numbers")
def toy_wrong_rows(numbers: Numbers, cfg: WrongConfig) -> Numbers:
    """Rows that do not fit Numbers, as ``cfg.what`` says: a misnamed column (``misnamed``), a
    string where a number goes (``mistyped``, the row with x == 2), no return (``none``)."""
    rows = numbers.rows()
    if cfg.what == "misnamed":
        return [{"id": r["id"], "value": r["x"]} for r in rows]
    if cfg.what == "mistyped":
        return [{"id": r["id"], "x": "three" if r["x"] == 2 else r["x"]} for r in rows]
    if cfg.what == "none":
        return None
    return rows


@stage("toy_wrong_metrics", version=1)
def toy_wrong_metrics(numbers: Numbers, cfg: WrongConfig) -> Summary:
    """numpy scalars (which are fine), plus a Path (which is not JSON) when ``cfg.what`` is path."""
    import numpy as np

    out = {"count": np.int64(numbers.num_rows), "mean": np.float32(1.5)}
    if cfg.what == "path":
        out["p"] = Path("/x")
    return out


@stage("toy_wrong_split", version=1)
def toy_wrong_split(numbers: Numbers, cfg: WrongConfig) -> Split:
    """Split returned as ``cfg.what`` says: tuple, list, dict, baddict (a misnamed key), or ok."""
    rows = numbers.rows()
    low, high = rows[:2], rows[2:]
    if cfg.what == "tuple":
        return (low, high)
    if cfg.what == "list":
        return [low, high]
    if cfg.what == "dict":
        return {"low": low, "high": high}
    if cfg.what == "baddict":
        return {"low": low, "hi": high}
    return Split(low=low, high=high)
