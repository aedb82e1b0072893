"""A step run in worker processes (shards) logs to its task files only: the runner echoes each
distinct WARNING of them to the terminal once, with the step and how many shards logged it, up
to 20 per step; an in-process step's warnings reach the terminal as they are logged, once."""

from __future__ import annotations

from tests.conftest import rag

STAGE = '''
from dataclasses import dataclass

from orchestrator.api import StageContext, stage
from tests.toy.stages import Numbers


@dataclass
class Cfg:
    distinct: int = 0


@stage("NAME", version=1, shard_by="numbers")
def warn(numbers: Numbers, cfg: Cfg, ctx: StageContext) -> Numbers:
    ctx.log.warning("2 rows left out")
    for i in range(cfg.distinct):
        ctx.log.warning("shard %d: odd row %d", ctx.shard_index, i)
    return numbers.rows()
'''


def _run(toy, capsys, name: str, step: str) -> str:
    """stderr of running ``load -> warn`` with the stage module ``name`` (the toy project's)."""
    (toy / f"{name}.py").write_text(STAGE.replace("NAME", name))
    recipe = toy / "conf" / f"{name}.yaml"
    recipe.write_text(f"""
ragline: {{imports: [tests.toy.stages, {name}]}}
steps:
  load: {{stage: toy_gen, n: 4}}
  warn: {{stage: {name}, inputs: {{numbers: load}}, {step}}}
""")
    capsys.readouterr()
    assert rag("run", str(recipe), "--no-progress", runs=toy / "runs") == 0
    return capsys.readouterr().err


def test_worker_warnings_are_echoed_once_with_the_step(toy, capsys):
    err = _run(toy, capsys, "warn_shards", "shards: 2")
    assert err.count("2 rows left out") == 1
    assert "warn: warning: 2 rows left out (2 of 2 shards)" in err
    assert err.index("2 rows left out") < err.index("✓ warn")


def test_worker_warnings_are_capped_per_step(toy, capsys):
    err = _run(toy, capsys, "warn_many", "shards: 2, distinct: 11")   # 1 + 2 * 11 distinct
    assert err.count("odd row") == 19
    assert "shard 0: odd row 0 (1 of 2 shards)" in err
    more = err.split("warn: … 3 more in ")[1].split()[0]
    assert more.startswith(str(toy / "runs")) and more.endswith("/logs")


def test_in_process_warnings_are_not_echoed_twice(toy, capsys):
    err = _run(toy, capsys, "warn_inprocess", "shards: 1")
    assert err.count("2 rows left out") == 1
    assert "warn: warning:" not in err   # shown by the terminal's log handler, as it was logged
