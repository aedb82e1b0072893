"""Execute a planned DAG: resolve inputs, consult the cache, run tasks, gather, record.

Resume is the default: a finished task's key is in the cache, so rerunning the same command
runs only what failed or never ran. Light steps run in this process; sharded or GPU steps run one
worker process per shard (``orchestrator.executor``). A failed task does not stop its sibling
shards (they are cached) nor independent branches; the steps that depend on it are skipped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.artifacts import Ref
from orchestrator.context import visible_gpus
from orchestrator.dag import Dag, Step
from orchestrator.errors import ConfigError, DataError, RagError
from orchestrator.executor import LocalExecutor
from orchestrator.hashing import SourceMemo
from orchestrator.logs import console, task_log
from orchestrator.history import load_history, save_history
from orchestrator.resolve import gather, input_hashes, input_refs, source_refs, step_keys
from orchestrator.rundir import RunDir
from orchestrator.store import Store
from orchestrator.task import Task, one_line, run_task

log = logging.getLogger("ragline")


@dataclass
class Options:
    only: set[str] = field(default_factory=set)
    from_: set[str] = field(default_factory=set)
    force: set[str] = field(default_factory=set)
    jobs: int = 0
    show_progress: bool = True
    command: str = "rag run"


def make_executor(store: Store, settings: dict, jobs: int):
    """The executor named by ``ragline.executor``: ``local`` (default) or ``slurm``."""
    name = settings.get("executor") or "local"
    if name == "local":
        return LocalExecutor(store, settings, jobs)
    if name == "slurm":
        from orchestrator.slurm import SlurmExecutor

        return SlurmExecutor(store, settings, jobs)
    raise ConfigError(f"ragline.executor: unknown executor '{name}'", hint="use local or slurm")


@dataclass
class Failure:
    step: str
    shard: str
    message: str
    log: str


def check_selection(dag: Dag, opts: Options) -> None:
    for name in opts.only | opts.from_ | opts.force:
        if name not in dag.steps:
            from orchestrator.errors import did_you_mean

            raise ConfigError(f"no step '{name}' in {dag.recipe.name}{did_you_mean(name, dag.steps)}",
                              hint=f"steps: {', '.join(dag.steps)}")


def check_gpus(dag: Dag, selected: set[str]) -> None:
    """A step that asks for GPUs on a machine with none fails before anything runs."""
    wanted = {s.name: s.gpus for s in dag.steps.values() if s.gpus and s.name in selected}
    if not wanted:
        return
    have = visible_gpus()
    for name, g in wanted.items():
        if not have:
            raise ConfigError(f"steps.{name}.gpus: {g} GPU(s) per shard asked for, but no CUDA "
                              "GPU is visible on this machine",
                              hint=f"run on CPU with steps.{name}.gpus=0, or use a GPU machine")
        if g > len(have):
            raise ConfigError(f"steps.{name}.gpus: {g} GPUs per shard asked for, only {len(have)} "
                              "visible", hint=f"lower it: steps.{name}.gpus={len(have)}")


class Runner:
    def __init__(self, dag: Dag, store: Store, runs_dir: Path, run: RunDir, opts: Options):
        self.dag, self.store, self.runs_dir, self.run, self.opts = dag, store, runs_dir, run, opts
        self.memo = SourceMemo(store.root / "sources.json")
        self.failures: list[Failure] = []
        self.executor = make_executor(store, dag.settings, opts.jobs)
        self.history = load_history(runs_dir, dag.recipe)

    def selected(self) -> set[str]:
        steps = set(self.dag.steps)
        if self.opts.only:
            return set(self.opts.only)
        return steps

    def execute(self) -> bool:
        dag, opts = self.dag, self.opts
        check_selection(dag, opts)
        selected = self.selected()
        check_gpus(dag, selected)
        problems: list[str] = []
        sources = source_refs(dag, self.memo, problems)
        self.memo.save()
        needed = set(selected)
        for name in selected:
            needed |= dag.upstream(name)
        for step in dag.steps.values():
            if step.name in needed:
                input_refs(step, {}, sources, problems)
        if problems:
            raise ConfigError(problems[0], hint="fix the path in the recipe or override it, e.g. "
                                                "data.corpus=/path/to/file")
        force = set(opts.force) | dag.downstream(opts.from_)
        outputs: dict[str, dict[str, Ref]] = {}
        failed: set[str] = set()
        for step in dag.steps.values():
            if step.name not in needed:
                continue
            blocked = [w.node for w in step.inputs.values() if w.node in failed]
            if blocked:
                failed.add(step.name)
                self.run.set_step(step.name, stage=step.stage.name, state="skipped",
                                  reason=f"upstream '{blocked[0]}' failed")
                console().print(f"[yellow]-[/] {step.name:<16} skipped (upstream '{blocked[0]}' failed)")
                continue
            if step.name not in selected:  # --only: upstream must already be cached
                if not self._reuse(step, outputs, sources):
                    raise ConfigError(f"--only {', '.join(sorted(opts.only))}: upstream step "
                                      f"'{step.name}' is not cached",
                                      hint="run the recipe without --only first, or add --only "
                                           f"{step.name}")
                continue
            try:
                ok = self._run_step(step, outputs, sources, step.name in force)
            except RagError as e:
                ok = False
                self._fail(step, "", e.message, "")
            if not ok:
                failed.add(step.name)
        save_history(self.runs_dir, dag.recipe, self.history)
        self.run.finish(not self.failures)
        return not self.failures

    def _reuse(self, step: Step, outputs, sources) -> bool:
        refs = input_refs(step, outputs, sources)
        entries = [self.store.lookup(t.key) for t in step_keys(step, input_hashes(refs))]
        if any(e is None for e in entries):
            return False
        outputs[step.name] = gather(step, entries, self.store)
        return True

    def _tasks(self, step: Step, refs: dict[str, Ref | None], force: bool) -> list[Task]:
        tasks = []
        for tk in step_keys(step, input_hashes(refs)):
            shard, mat = tk.shard, tk.material
            inputs = {}
            for name, ref in refs.items():
                if ref is None:
                    inputs[name] = None
                    continue
                start, stop = 0, None
                if shard and name == step.stage.shard_by:
                    n = ref.num_rows
                    start, stop = shard[0] * n // shard[1], (shard[0] + 1) * n // shard[1]
                inputs[name] = {"ref": ref.to_json(), "start": start, "stop": stop}
            tasks.append(Task(step=step.name, stage=step.stage.name, config=step.config,
                              inputs=inputs, key=tk.key, material=mat,
                              shard=list(shard or (0, 1)),
                              log=str(self.run.log_path(step.name, shard)), force=force,
                              imports=list(self.dag.settings.get("imports") or []),
                              cache_root=str(self.store.root),
                              show_progress=self.opts.show_progress))
        return tasks

    def _run_step(self, step: Step, outputs, sources, force: bool) -> bool:
        refs = input_refs(step, outputs, sources)
        for name, ref in refs.items():
            ispec = step.stage.inputs[name]
            if ref is not None and ref.kind == "table" and ref.num_rows == 0 and not ispec["optional"]:
                raise DataError(f"step '{step.name}' input '{name}' is empty (0 rows) from "
                                f"'{ref.producer}'; check that step's log and its inputs")
        tasks = self._tasks(step, refs, force)
        cached = [] if force else [t for t in tasks if self.store.has(t.key)]
        todo = [t for t in tasks if t not in cached]
        self.run.set_step(step.name, save=bool(todo), stage=step.stage.name, state="running", shards=len(tasks),
                          keys=[t.key for t in tasks], log=tasks[0].log if len(tasks) == 1
                          else str(Path(tasks[0].log).parent))
        start = time.time()
        if todo:
            label = f"{step.name} ({len(todo)}/{len(tasks)} shards)" if len(tasks) > 1 else step.name
            console().print(f"[cyan]>[/] {label:<16} running stage {step.stage.name}"
                            + (f" on {step.gpus} GPU(s)/shard" if step.gpus else ""))
        results = self._execute(step, todo) if todo else {}
        duration = time.time() - start
        errors = {k: v for k, v in results.items() if isinstance(v, Failure)}
        if errors:
            for f in errors.values():
                self._fail(step, f.shard, f.message, f.log)
            return False
        entries = [self.store.lookup(t.key) for t in tasks]
        outputs[step.name] = gather(step, entries, self.store)
        waited = sum(1 for v in results.values() if v == "reused")
        hit = "hit" if not todo else ("miss" if len(cached) == 0 and not waited else "partial")
        if todo and waited == len(todo):
            hit = "hit"
        state = "cached" if hit == "hit" else "done"
        self.history[step.name] = {"key": tasks[0].key, "material": tasks[0].material}
        self.run.set_step(step.name, save=bool(todo), state=state, cache=hit, duration=round(duration, 3),
                          shards=len(tasks), cached_shards=len(cached))
        if not todo:  # the log of the run that computed it, kept with the cache entry
            logs = [str(e.path / "_log.txt") for e in entries if (e.path / "_log.txt").is_file()]
            if logs:
                self.run.set_step(step.name, save=False, log=logs[0] if len(logs) == 1 else logs)
        for name, ref in outputs[step.name].items():
            self.run.link(step.name, name, ref)
            if ref.kind == "metrics":
                import json

                self.run.add_metrics(step.name, json.loads(Path(ref.paths[0]).read_text()))
        if todo:
            console().print(f"[green]✓[/] {step.name:<16} done in {duration:.1f}s")
        else:
            console().print(f"[dim]✓ {step.name:<16} cached[/]")
        return True

    def _execute(self, step: Step, tasks: list[Task]) -> dict[str, object]:
        """Run tasks in-process or in workers; returns key -> "done" | "reused" | Failure."""
        def waiting(task):
            console().print(f"[dim]  {task.label}: another process is computing it; waiting[/]")

        if self.executor.in_process(step, tasks):
            out: dict[str, object] = {}
            for task in tasks:
                try:
                    with task_log(task.log):
                        _, reused = run_task(task, self.store, wait_note=waiting)
                    out[task.key] = "reused" if reused else "done"
                except KeyboardInterrupt:
                    raise
                except BaseException as e:  # noqa: BLE001 - any stage failure is reported
                    import traceback

                    with open(task.log, "a") as f:  # the traceback goes to the log, not the terminal
                        f.write(f"{task.label} failed:\n{traceback.format_exc()}")
                    out[task.key] = Failure(step.name, task.label, one_line(e), task.log)
            return out
        return self.executor.run_workers(step, tasks, lambda t, msg: Failure(step.name, t.label, msg, t.log))

    def _fail(self, step: Step, shard: str, message: str, log_path: str) -> None:
        self.failures.append(Failure(step.name, shard or step.name, message, log_path))
        self.run.set_step(step.name, state="failed", error=message, log=log_path)
        where = shard if shard and shard != step.name else step.name
        console().print(f"[red]✗ {where}[/] failed: {message}", soft_wrap=True)
        if log_path:
            console().print(f"  log: {log_path}", soft_wrap=True)
