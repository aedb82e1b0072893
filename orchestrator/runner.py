"""Execute a DAG: plan it once (saved as the run's plan.json), then run what is not cached.

Resume is the default: a finished task's key is in the cache, so rerunning the same command
runs only what failed or never ran. Each step's tasks go to the executor (``orchestrator.
executors``: light steps in this process, shards and GPU steps in workers or cluster jobs). A
failed task does not stop its sibling shards (they are cached) nor independent branches; the
steps that depend on it are skipped. Ctrl-C or SIGTERM stops the workers, releases the locks and
records the run as ``interrupted``. Before any step runs, the cache must be a directory, and
writable when something is to be computed (a read-only cache serves a run that is all cached).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from orchestrator.artifacts import Ref
from orchestrator.cpu_fallback import no_gpu_refusal
from orchestrator.dag import Dag, Step
from orchestrator.errors import ConfigError, DataError, RagError, did_you_mean
from orchestrator.executors import executor_settings, make_executor
from orchestrator.executors.base import Failed, Reused, TaskResult
from orchestrator.hashing import SourceMemo
from orchestrator.history import load_history, save_history
from orchestrator.keys import scratch_key
from orchestrator.locate import project_dir
from orchestrator.logs import console, escape, logged_warnings
from orchestrator.plan import Plan, code_changed, plan
from orchestrator.rest import earlier_try, rest_command, still_forced
from orchestrator.resolve import gather, input_hashes, input_refs, missing_source, step_keys
from orchestrator.rundir import RunDir
from orchestrator.secrets import redact
from orchestrator.store import Entry, Store
from orchestrator.task import Task

log = logging.getLogger("ragline")
ECHOED_WARNINGS = 20  # a step's distinct worker warnings echoed to the terminal, at most


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``docker stop``, a scheduler): handled like Ctrl-C, exit 143."""


@dataclass
class Options:
    only: set[str] = field(default_factory=set)
    from_: set[str] = field(default_factory=set)
    force: set[str] = field(default_factory=set)
    jobs: int = 0
    show_progress: bool = True
    command: str = "rag run"
    until: set[str] = field(default_factory=set)
    # task key -> (run folder, failure) of the tasks that failed in this command: the members
    # of a sweep share this Options, so a step they share is not computed again after it failed
    failed: dict[str, tuple[str, Failed]] = field(default_factory=dict)
    # task key -> run folder of the tasks --force/--from recomputed and committed in this
    # command: a later member of the sweep reuses them, so that every member reads the same
    # upstream output (a stage that does not reproduce its bytes gives another each time)
    recomputed: dict[str, str] = field(default_factory=dict)


@dataclass
class Failure:
    step: str
    shard: str
    message: str
    log: str
    bad_input: bool = False  # a DataError/ConfigError: rerunning as is fails the same way


def folded(step: str, errors: list[tuple[Task, Failed]], shards: int
           ) -> list[tuple[str, Failed, int]]:
    """``(where, failure, others)`` to report for a step's failed shards: those that failed
    with the same message and hint as one line, ``retrieve[0,1/2]`` (a bad setting failed every
    shard, printed as many times); ``others`` is how many more than one.

    >>> from types import SimpleNamespace as T
    >>> bad, other = Failed("ValueError: x"), Failed("disk full")
    >>> errors = [(T(shard=(0, 4), label="r[0/4]"), bad), (T(shard=(1, 4), label="r[1/4]"), other),
    ...           (T(shard=(3, 4), label="r[3/4]"), bad)]
    >>> [(where, f.message, n) for where, f, n in folded("r", errors, 4)]
    [('r[0,3/4]', 'ValueError: x', 1), ('r[1/4]', 'disk full', 0)]
    """
    groups: dict[tuple, list[tuple[Task, Failed]]] = {}
    for task, failure in errors:
        groups.setdefault((failure.message, failure.hint, failure.bad_input), []).append(
            (task, failure))
    out = []
    for group in groups.values():
        task, failure = group[0]
        where = task.label if len(group) == 1 else \
            f"{step}[{','.join(str(t.shard[0]) for t, _ in group)}/{shards}]"
        out.append((where, failure, len(group) - 1))
    return out


def check_selection(dag: Dag, opts: Options) -> None:
    """Every step named by --only/--until/--from/--force exists, --only and --until are not
    mixed, and none of --force/--from is left without effect by the selection (a forced step
    that --only or --until does not select would not run)."""
    flags = {"--only": opts.only, "--until": opts.until, "--from": opts.from_,
             "--force": opts.force}
    for flag, names in flags.items():
        for name in sorted(names):
            if name not in dag.steps:
                raise ConfigError(f"no step '{name}' in {dag.recipe.name}"
                                  + not_a_step(flag, name, dag.steps),
                                  hint=f"{flag} takes one of the steps: {', '.join(dag.steps)}")
    if opts.only and opts.until:
        raise ConfigError("--only and --until select steps in two different ways: --only runs just "
                          "the named steps, --until runs the named steps and everything upstream",
                          hint="give one of them")
    chosen = selection(dag, opts)
    if chosen is None:
        return
    flag = "--only" if opts.only else "--until"
    named = " ".join(f"{flag} {n}" for n in sorted(opts.only or opts.until))
    for name in sorted(opts.force - chosen):
        raise ConfigError(f"--force {name}: '{name}' is not among the steps {named} runs, so it "
                          "would not be recomputed", hint=f"add {flag} {name}, or leave out --force {name}")
    for name in sorted(opts.from_):
        if not dag.downstream({name}) & chosen:
            raise ConfigError(f"--from {name}: no step {named} runs is '{name}' or downstream of it, "
                              "so nothing would be recomputed",
                              hint=f"add {flag} {name}, or leave out --from {name}")


def not_a_step(flag: str, name: str, steps) -> str:
    """What follows "no step NAME" for ``flag NAME``: the step meant, or, for several steps
    joined by commas (as ``rag report --steps`` takes them), how to name several.

    >>> not_a_step("--only", "reward,dpo", ["reward", "dpo"])
    ': --only takes one step; repeat it: --only reward --only dpo'
    >>> not_a_step("--force", "rewrd", ["reward", "dpo"])
    " (did you mean 'reward'?)"
    """
    parts = [part.strip() for part in name.split(",")]
    if len(parts) > 1 and all(part in steps for part in parts):
        return f": {flag} takes one step; repeat it: " + " ".join(f"{flag} {p}" for p in parts)
    return did_you_mean(name, steps)


def selection(dag: Dag, opts: Options) -> set[str] | None:
    """The steps this run computes (when cached: reuses): ``--only``'s, ``--until``'s with all
    their upstream steps, or None for every step."""
    if opts.only:
        return set(opts.only)
    if opts.until:
        return set(opts.until).union(*(dag.upstream(n) for n in opts.until))
    return None


def problems_of(problems: list[str], dag: Dag, steps: set[str]) -> list[str]:
    """The plan problems that stop a run of ``steps``: their own, and those of the sources they
    read (a missing model that only a later step loads does not stop ``--until index``).

    >>> from types import SimpleNamespace as N
    >>> dag = N(steps={"index": N(inputs={"corpus": N(node="corpus", output=None)})})
    >>> problems_of(["r.yaml:3: source 'corpus': c.tsv does not exist", "override 'g=x': "
    ...              "source 'generator': x does not exist", "steps.sft.inputs.model: source "
    ...              "'generator' has no path"], dag, {"index"})
    ["r.yaml:3: source 'corpus': c.tsv does not exist"]
    """
    read = {w.node for n in steps for w in dag.steps[n].inputs.values() if w.output is None}

    def stops(problem: str) -> bool:
        source = missing_source(problem)
        if source is not None:
            return source in read
        if problem.startswith("steps."):
            return problem.split(".")[1] in steps
        return True

    return [p for p in problems if stops(p)]


def computed(dag: Dag, planned: Plan, opts: Options) -> list[Step]:
    """The steps a run of ``planned`` computes: those it selects that are not cached, or that
    it forces (``--force``, ``--from``, code changed with ``on_code_change: rerun``; the plan
    was made with them, and a forced step that an earlier member of the sweep recomputed is
    FRESH in it)."""
    chosen = selection(dag, opts)
    return [s for n, s in dag.steps.items() if (chosen is None or n in chosen) and n in planned.steps
            and (planned.steps[n].state != "FRESH" or planned.steps[n].forced)]


class Admission:
    """The executor's check of steps before any of them starts (``check_resources``: a step's
    GPUs against this machine, or the cluster's nodes), the one ``Runner`` makes, as problems:
    one line per refused step, with its hint. Executors and their verdicts are kept across
    calls: the members of a sweep share most steps, and a step already checked is not asked
    about again (nvidia-smi, sinfo). ``connect=False`` (``rag plan``) leaves out an executor
    whose check would attach to a cluster (Ray)."""

    def __init__(self, store: Store, jobs: int = 0, connect: bool = True):
        self.store, self.jobs, self.connect = store, jobs, connect
        self.executors: dict[str, object] = {}  # executor settings -> executor, or its refusal
        self.verdicts: dict[tuple, str | None] = {}

    def problems(self, dag: Dag, steps: list[Step], overrides: list[str] | None = None
                 ) -> list[str]:
        block = json.dumps(executor_settings(dag.settings), sort_keys=True, default=str)
        if block not in self.executors:
            try:
                self.executors[block] = make_executor(self.store, dag.settings, self.jobs)
            except ConfigError as e:   # a missing extra (Ray, submitit): every run stops at it
                self.executors[block] = _line(e)
        executor = self.executors[block]
        if isinstance(executor, str):
            return [executor]
        if not self.connect and getattr(executor, "connects", False):
            return []
        slots = {step.name: (block, step.name, step.gpus, step.shards,
                             step.stage.multi_gpu) for step in steps}
        unknown = [s for s in steps if slots[s.name] not in self.verdicts]
        try:   # all at once, as the runner checks them: one nvidia-smi or sinfo when all fit
            executor.check_resources(unknown)
            self.verdicts.update((slots[s.name], None) for s in unknown)
        except ConfigError:   # then one by one, to name every step refused
            for step in unknown:
                try:
                    executor.check_resources([step])
                    self.verdicts[slots[step.name]] = None
                except ConfigError as e:
                    self.verdicts[slots[step.name]] = _line(e)
        # a partition-wide refusal (sinfo) is the same line for every step: said once
        refused = list(dict.fromkeys(v for s in steps if (v := self.verdicts[slots[s.name]])))
        if refused and getattr(executor, "name", "") == "local":   # as Runner._prepare
            refusal = no_gpu_refusal(dag.recipe, steps, overrides)
            if refusal is not None:
                return [_line(refusal)]
        return refused


def _line(err: RagError) -> str:
    """An error and its hint on one line, as a plan problem."""
    return err.message + (f"; {err.hint}" if err.hint else "")


def sweep_problems(members, dags, store: Store, runs_dir: Path, opts: Options
                   ) -> tuple[list[str], list[Plan]]:
    """What would stop each member of a sweep before its steps run (a missing source, an unset
    variable, a step the executor refuses: more GPUs than the machine has), ``member-NNNN
    (overrides): problem`` each, found before the first member runs: a path swept to a file
    that does not exist, or a GPU count swept past the machine's, used to stop its member hours
    into the sweep; and each member's plan, cut to the steps it would compute. Reads the cache;
    writes nothing but the source-hash memo."""
    problems, plans = [], []
    memo = SourceMemo(store.root / "sources.json")
    history = load_history(runs_dir, dags[0].recipe)
    admission = Admission(store, opts.jobs)
    for member, dag in zip(members, dags):
        chosen = selection(dag, opts)
        needed = (set(dag.steps) if chosen is None
                  else chosen.union(*(dag.upstream(n) for n in chosen)))
        force = set(opts.force) | dag.downstream(opts.from_)
        planned = plan(dag, store, memo, history, force, member.overrides)
        steps = computed(dag, planned, opts)
        found = (admission.problems(dag, steps, member.overrides)
                 + problems_of(planned.problems, dag, needed))
        if found:
            problems.append(f"member-{member.index:04d} ({' '.join(member.overrides)}): "
                            + _unprefixed(found[0], member.overrides))
        plans.append(replace(planned, steps={s.name: planned.steps[s.name] for s in steps}))
    return problems, plans


def _unprefixed(problem: str, overrides: list[str]) -> str:
    """``problem`` less an ``override 'X': `` in front that names one of the member's overrides,
    which its line already lists.

    >>> _unprefixed("override 'a=x': source 'a': x does not exist", ["b=1", "a=x"])
    "source 'a': x does not exist"
    """
    for text in overrides:
        problem = problem.removeprefix(f"override '{text}': ")
    return problem


def problem_hint(problem: str, sources: dict[str, str | None], overrides: list[str]) -> str:
    """What to do about a plan problem that stops a run: export an unset variable, or fix a
    source path, named by the override that gave it when there is one (``data.corpus=...``).

    >>> problem_hint("steps.ask.llm.api_key_env: environment variable K is not set (...)", {},
    ...              [])[:66]
    'export K=... before `rag run`, or set steps.ask.llm.api_key_env to'
    >>> problem_hint("override 'data.corpus=c.jsonl': source 'corpus': c.jsonl does not exist",
    ...              {"corpus": "c.jsonl"}, ["data.corpus=c.jsonl"])
    'fix the path in the recipe or override it on the command line: data.corpus=/path/to/file'
    """
    unset = re.match(r"(.+?): environment variable (\S+) is not set", problem)
    if unset:
        key, name = unset.groups()
        return (f"export {name}=... before `rag run`, or set {key} to the variable that holds "
                "the key (null for a server that needs none)")
    if re.match(r"steps\.\S+ \(source '[^']+'\): ", problem):  # plan.source_problems: content
        return "fix that file (or point the source at another), then rerun; `rag plan` lists every such problem"
    named = missing_source(problem)
    key = f"sources.{named}" if named else "KEY"
    path = sources.get(named) if named else None
    given = [o.partition("=") for o in overrides]
    key = next((k.lstrip("+~") for k, _, value in given if path and value == path), key)
    return f"fix the path in the recipe or override it on the command line: {key}=/path/to/file"


def _without_only(command: str) -> str:
    """``command`` less its ``--only STEP`` options.

    >>> _without_only("rag run r.yaml --only a x=1 --only=b --force c")
    'rag run r.yaml x=1 --force c'
    """
    return re.sub(r" --only(?:=| +)\S+", "", command)


def _size(path: str) -> int:
    """The size of a log file, 0 when there is none yet."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _waiting(task: Task) -> None:
    console().print(f"[dim]  {task.label}: another process is computing it; waiting[/]")


class Runner:
    def __init__(self, dag: Dag, store: Store, runs_dir: Path, run: RunDir, opts: Options):
        self.dag, self.store, self.runs_dir, self.run, self.opts = dag, store, runs_dir, run, opts
        self.memo: SourceMemo | None = None  # read by plan(), once the cache is known usable
        self.history = load_history(runs_dir, dag.recipe)
        self.executor = None  # made by execute(): a missing extra is a ConfigError, recorded
        self.failures: list[Failure] = []
        self.outputs: dict[str, dict[str, Ref]] = {}
        self.sources: dict[str, Ref | None] = {}
        self.planned: dict[str, Entry] = {}  # key -> entry the plan found (every file stat-checked)
        # the failed or interrupted run this one resumes, and the keys of its forced steps that
        # it recomputed (rest.earlier_try); the forced step running now, to record the same
        self.earlier: tuple[str, dict[str, list[str]]] = ("", {})
        self.forcing: tuple[str, list[str], dict[str, tuple | None]] | None = None
        self.skipped: dict[str, str] = {}  # a skipped step -> the failed step that caused it
        # the step column of the progress lines: as wide as the longest step name
        self.width = max([16] + [len(name) for name in dag.steps])

    def selected(self) -> set[str]:
        chosen = selection(self.dag, self.opts)
        return set(self.dag.steps) if chosen is None else chosen

    def failed_on_input(self) -> bool:
        """Every failed task failed on bad input (a DataError/ConfigError): the user must fix
        it before a rerun can succeed."""
        return bool(self.failures) and all(f.bad_input for f in self.failures)

    def execute(self) -> bool:
        """Plan, check, run every needed step in order; True when nothing failed."""
        try:
            selected, needed, force = self._prepare()
        except RagError as e:  # nothing ran: the record says why
            self.run.set_run(state="failed", error=e.message, finished=time.time())
            raise
        except KeyboardInterrupt as e:   # e.g. while a cluster executor connects
            self._interrupted(e)
            raise
        failed: set[str] = set()
        try:
            for step in self.dag.steps.values():
                if step.name in needed and not self._visit(step, selected, force, failed):
                    failed.add(step.name)
        except KeyboardInterrupt as e:
            self._interrupted(e)
            raise
        except Exception as e:  # an internal error: the record must not stay "running"
            self.executor.cancel()
            self.run.interrupt(f"internal error: {type(e).__name__}: {e}", state="failed")
            raise
        finally:
            save_history(self.runs_dir, self.dag.recipe, self.history)
        self.run.finish(not self.failures)
        return not self.failures

    def _interrupted(self, e: KeyboardInterrupt) -> None:
        """Ctrl-C or SIGTERM: the executor's tasks cancelled, the record interrupted."""
        if self.executor is not None:
            self.executor.cancel()
        self._note_recomputed()
        self.run.interrupt("terminated (SIGTERM)" if isinstance(e, Terminated) else
                           "interrupted (Ctrl-C)")

    def _prepare(self) -> tuple[set[str], set[str], set[str]]:
        """Check the selection, plan once, check resources and sources: (selected, needed, force)."""
        dag, opts = self.dag, self.opts
        check_selection(dag, opts)
        self.store.check_usable(self.runs_dir, probe=False)
        self.executor = make_executor(self.store, dag.settings, opts.jobs, wait_note=_waiting)
        selected = self.selected()
        needed = set(selected).union(*(dag.upstream(n) for n in selected)) if opts.only else selected
        force = set(opts.force) | dag.downstream(opts.from_)
        mark = time.monotonic()
        planned = self.plan(force)
        if computed(dag, planned, opts) and self.store.recheck_before(mark):
            planned = self.plan(force)   # a sweep member that computes: its inputs checked anew
        force |= {s.step for s in planned.steps.values() if getattr(s, "forced", False)}
        to_compute = computed(dag, planned, opts)
        if to_compute:
            self.store.check_usable(self.runs_dir)
            self._estimate(planned, to_compute)
        try:
            self.executor.check_resources(to_compute)
        except ConfigError:   # no GPU here: one refusal for all such steps, with the CPU overrides
            refusal = self.executor.name == "local" and no_gpu_refusal(
                dag.recipe, to_compute, self.run.status.get("overrides", []))
            if refusal:
                raise refusal from None
            raise
        self._check_sources(planned, needed)
        self._reuse_upstream(selected, needed)
        if (opts.force or opts.from_) and not self.run.path.name.startswith("member-"):
            self.earlier = earlier_try(self.run.path, opts.command)
        # every step this run will visit, in order: rag status lists those not reached yet
        self.run.set_run(executor=self.executor.name, planned_steps={
            n: s.stage.name for n, s in dag.steps.items() if n in needed})
        return selected, needed, force

    def _estimate(self, planned: Plan, to_compute: list[Step]) -> None:
        """One line before the first step: how long the steps to run took when they last ran."""
        from orchestrator.estimate import last_seconds, said

        estimate = said(*last_seconds([planned], self.history, {s.name for s in to_compute}))
        if estimate:
            console().print(f"[dim]{len(to_compute)} step(s) to run: {estimate}[/]", soft_wrap=True)

    def plan(self, force: set[str]) -> Plan:
        """The plan at start, computed once and saved with the run (plan.json)."""
        if self.memo is None:
            self.memo = SourceMemo(self.store.root / "sources.json")
        planned = plan(self.dag, self.store, self.memo, self.history, force,
                       self.run.status.get("overrides", []), self.opts.recomputed)
        try:
            self.memo.save()
        except OSError:  # a read-only cache: the source-hash memo is only a speed-up
            log.warning("could not save the source-hash memo under %s", self.store.root)
        self.sources = planned.sources
        self.planned = dict(planned.entries)
        self.run.write_plan({"problems": planned.problems,
                             "steps": [s.to_json() for s in planned.steps.values()]})
        return planned

    def _check_sources(self, planned: Plan, needed: set[str]) -> None:
        """Missing sources, unset source paths and unset environment variables of the steps this
        run needs stop the run."""
        problems = problems_of(planned.problems, self.dag, needed)
        if problems:
            raise ConfigError(problems[0], hint=problem_hint(
                problems[0], self.dag.sources, self.run.status.get("overrides", [])))

    def _reuse_upstream(self, selected: set[str], needed: set[str]) -> None:
        """``--only``: read every upstream step of the selected ones from the cache now, before
        any step runs; name all that are not cached in one error, with a command that runs them."""
        missing: list[str] = []
        for step in self.dag.steps.values():  # in order: a step fed by a missing one is missing
            if step.name in needed and step.name not in selected and (
                    any(w.node in missing for w in step.inputs.values()) or not self._reuse(step)):
                missing.append(step.name)
        if not missing:
            return
        only = ", ".join(sorted(self.opts.only))
        which = (f"upstream step '{missing[0]}' is" if len(missing) == 1 else
                 f"upstream steps {', '.join(missing)} are")
        without = _without_only(self.opts.command)
        until = " ".join(f"--until {n}" for n in sorted(self.opts.only))
        raise ConfigError(f"--only {only}: {which} not cached (--only runs just the selected steps "
                          "and reads their inputs from the cache)",
                          hint=f"run {'it' if len(missing) == 1 else 'them'} too: {without} "
                               f"{until} (cached steps are reused); or run without --only: "
                               f"{without}")

    def _visit(self, step: Step, selected: set[str], force: set[str], failed: set[str]) -> bool:
        """Skip, reuse or run one step; False when it failed or was skipped."""
        blocked = [w.node for w in step.inputs.values() if w.node in failed]
        if blocked:
            up = blocked[0]
            cause = self.skipped.get(up)
            self.skipped[step.name] = cause or up
            reason = (f"upstream '{up}' failed" if cause is None
                      else f"upstream '{up}' skipped because '{cause}' failed")
            self.run.set_step(step.name, stage=step.stage.name, state="skipped", reason=reason)
            console().print(f"[yellow]-[/] {step.name:<{self.width}} skipped ({reason})")
            return False
        if step.name not in selected:  # --only: read from the cache by _reuse_upstream
            return True
        try:
            return self._run_step(step, step.name in force)
        except RagError as e:
            self._note_recomputed()
            self._fail(step, step.name,
                       Failed(e.message, bad_input=isinstance(e, (DataError, ConfigError)),
                              hint=e.hint or ""))
            return False

    def _lookup(self, key: str, step: str) -> Entry | None:
        """A task's entry: the one the plan found and stat-checked, while its ``_entry.json`` is
        unchanged (one stat); otherwise looked up and checked again."""
        known = self.planned.pop(key, None)
        if known is not None and self.store.unchanged(known):
            return known
        return self.store.lookup(key, step)

    def _reuse(self, step: Step) -> bool:
        refs = input_refs(step, self.outputs, self.sources)
        entries = [self._lookup(t.key, step.name) for t in step_keys(step, input_hashes(refs, step))]
        if any(e is None for e in entries):
            return False
        self.outputs[step.name] = gather(step, entries, self.store)
        return True

    def _tasks(self, step: Step, refs: dict[str, Ref | None], force: bool) -> list[Task]:
        tasks = []
        as_json = {name: ref.to_json() for name, ref in refs.items() if ref is not None}
        for tk in step_keys(step, input_hashes(refs, step)):   # the tasks share each input's
            inputs = {}                                          # JSON (read, never changed)
            for name, ref in refs.items():
                if ref is None:
                    inputs[name] = None
                    continue
                start, stop = 0, None
                if tk.shard and name == step.stage.shard_by:
                    n, (i, k) = ref.num_rows, tk.shard
                    start, stop = i * n // k, (i + 1) * n // k
                inputs[name] = {"ref": as_json[name], "start": start, "stop": stop}
            tasks.append(Task(step=step.name, stage=step.stage.name,
                              config=redact(step.config, step.secrets), secrets=step.secrets,
                              inputs=inputs, key=tk.key, material=tk.material,
                              shard=list(tk.shard or (0, 1)),
                              log=str(self.run.log_path(step.name, tk.shard)), force=force,
                              imports=list(self.dag.settings.get("imports") or []),
                              project=str(project_dir(Path(self.dag.recipe).resolve())),
                              cache_root=str(self.store.root),
                              show_progress=self.opts.show_progress))
        return tasks

    def _run_step(self, step: Step, force: bool) -> bool:
        refs = input_refs(step, self.outputs, self.sources)
        tasks = self._tasks(step, refs, force)
        self._check_not_empty(step, refs, tasks)
        found = {**self._kept(step, tasks), **self._recomputed_here(step, tasks)} if force else {
            t.key: e for t in tasks if (e := self._lookup(t.key, step.name)) is not None}
        cached = [t for t in tasks if t.key in found]
        todo = [t for t in tasks if t.key not in found]
        start = time.time()
        # a sharded step's scratch (its request cache) is named by the unsharded key: recorded,
        # so that rag gc keeps it with the run (keys.scratch_key)
        shared = {"scratch": scratch_key(tasks[0].material)} if len(tasks) > 1 else {}
        if force:   # its old entries are being replaced: rag status counts the new ones only
            shared["kept"] = list(found)
        self.run.set_step(step.name, save=bool(todo), stage=step.stage.name, state="running",
                          started=round(start, 3), shards=len(tasks), keys=[t.key for t in tasks],
                          log=tasks[0].log if len(tasks) == 1 else str(Path(tasks[0].log).parent),
                          **shared)
        if todo:
            console().print(f"[cyan]>[/] {step.name:<{self.width}} running stage {step.stage.name}"
                            + (f" ({len(todo)}/{len(tasks)} shards)" if len(tasks) > 1 else "")
                            + (f" on {step.gpus} GPU(s)/shard" if step.gpus else ""))
        before = {t.key: self._failed_before(t) for t in todo if t.key in self.opts.failed}
        rest = [t for t in todo if t.key not in before]
        if force:   # what it recommits is kept by the resume, should it stop part way
            self.forcing = (step.name, list(found), {t.key: self.store.stamp(t.key) for t in todo})
        # a worker's log records reach no terminal: its warnings are echoed once it is done (an
        # in-process task's already went to the terminal's log handler)
        workers = [] if self.executor.in_process(step) else rest
        sizes = {t.key: _size(t.log) for t in workers}
        self.executor.on_submitted = self._record_jobs(step, todo)
        results = {**(self.executor.run(step, rest) if rest else {}), **before}
        self._echo_warnings(step, workers, sizes)
        jobs = [self.executor.jobs[t.key] for t in todo if t.key in self.executor.jobs]
        if jobs:
            self.run.set_step(step.name, save=False, jobs=jobs)
        errors = [(t, results[t.key]) for t in todo if isinstance(results.get(t.key), Failed)]
        if errors:
            self._note_recomputed()
        self.forcing = None
        if force:   # recomputed once in this command: a later member of a sweep reuses them
            for task in tasks:
                if not isinstance(results.get(task.key), Failed):
                    self.opts.recomputed.setdefault(task.key, self.run.path.name)
        for task, failure in errors:
            self.opts.failed.setdefault(task.key, (self.run.path.name, failure))
        for where, failure, others in folded(step.name, errors, len(tasks)):
            self._fail(step, where, failure, others)
        if errors:
            return False
        entries = [found.get(t.key) or self.store.lookup(t.key, step.name) for t in tasks]
        if any(e is None for e in entries):  # not the user's input: a rerun recomputes it
            raise RagError(f"step '{step.name}': a committed entry vanished from the cache "
                           "(removed by gc or by hand?); rerun the same command")
        self.outputs[step.name] = gather(step, entries, self.store)
        if len(tasks) > 1 and todo:  # every shard committed: their shared scratch is done with
            shutil.rmtree(self.store.scratch(scratch_key(tasks[0].material)), ignore_errors=True)
        self._record(step, tasks, todo, cached, results, entries, time.time() - start)
        return True

    def _check_not_empty(self, step: Step, refs: dict[str, Ref | None], tasks: list[Task]
                         ) -> None:
        """A required table input with no rows stops the step before it starts (recorded with
        its stage and shards, as a failed step is), naming the log of the step that wrote it."""
        for name, ref in refs.items():
            if (ref is None or ref.kind != "table" or ref.num_rows != 0
                    or step.stage.inputs[name]["optional"]):
                continue
            self.run.set_step(step.name, save=False, stage=step.stage.name, shards=len(tasks),
                              keys=[t.key for t in tasks])
            logs = self.run.status["steps"].get(step.inputs[name].node, {}).get("log") or []
            logs = [logs] if isinstance(logs, str) else logs
            where = (f" ({logs[0]}{f' and {len(logs) - 1} more' if len(logs) > 1 else ''})"
                     if logs else "")
            raise DataError(f"step '{step.name}' input '{name}' is empty (0 rows) from "
                            f"'{ref.producer}'; check that step's log{where} and its inputs")

    def _kept(self, step: Step, tasks: list[Task]) -> dict[str, Entry]:
        """The entries of a forced step that the failed or interrupted run this one resumes
        recomputed and committed before it stopped (``self.earlier``), with the same code:
        kept, as a plain resume keeps a partial step's shards. The rest are recomputed."""
        name, recomputed = self.earlier
        keep = set(recomputed.get(step.name, ()))
        found = {t.key: e for t in tasks if t.key in keep
                 and (e := self._lookup(t.key, step.name)) is not None
                 and not code_changed(step, [e])}
        if found:
            console().print(f"[dim]  {step.name}: {len(found)} of {len(tasks)} shards kept: run "
                            f"{name} of this command recomputed them before it stopped[/]",
                            soft_wrap=True)
        return found

    def _recomputed_here(self, step: Step, tasks: list[Task]) -> dict[str, Entry]:
        """The entries of a forced step that an earlier member of this sweep recomputed and
        committed (``Options.recomputed``): reused, not recomputed again, so that every member
        is built on the same output of the step."""
        found = {t.key: e for t in tasks if t.key in self.opts.recomputed
                 and (e := self._lookup(t.key, step.name)) is not None}
        if found:
            who = self.opts.recomputed[next(iter(found))]
            shards = f" {len(found)} of {len(tasks)} shards" if len(tasks) > 1 else ""
            console().print(f"[dim]  {step.name}:{shards} recomputed once in this command "
                            f"(--force/--from), by {who}: reused[/]", soft_wrap=True)
        return found

    def _note_recomputed(self) -> None:
        """After the forced step running now failed in a shard or was interrupted: record the
        keys it recomputed (kept ones included) and committed, for the run that resumes it."""
        if self.forcing is None:
            return
        name, kept, stamps = self.forcing
        self.forcing = None
        done = kept + [k for k, before in stamps.items()
                       if (now := self.store.stamp(k)) is not None and now != before]
        if done:
            self.run.set_step(name, save=False, recomputed=done)

    def _echo_warnings(self, step: Step, tasks: list[Task], sizes: dict[str, int]) -> None:
        """Each distinct WARNING of the tasks' logs (written since ``sizes``), once, with how
        many shards logged it; at most ``ECHOED_WARNINGS``, then where the rest are."""
        counts: dict[str, int] = {}
        for task in tasks:
            for message in logged_warnings(task.log, sizes[task.key]):
                counts[message] = counts.get(message, 0) + 1
        for message, n in list(counts.items())[:ECHOED_WARNINGS]:
            shards = f" ({n} of {len(tasks)} shards)" if len(tasks) > 1 else ""
            console().print(f"[yellow]![/] {escape(step.name)}: warning: {escape(message)}{shards}",
                            soft_wrap=True)
        if len(counts) > ECHOED_WARNINGS:
            where = tasks[0].log if len(tasks) == 1 else Path(tasks[0].log).parent
            console().print(f"[yellow]![/] {escape(step.name)}: … "
                            f"{len(counts) - ECHOED_WARNINGS} more in {escape(where)}", soft_wrap=True)

    def _failed_before(self, task: Task) -> Failed:
        """The failure of a task that already failed in this command (an earlier member of the
        sweep): not computed again; rerunning the command retries it."""
        where, failure = self.opts.failed[task.key]
        console().print(f"[yellow]-[/] {task.label}: failed earlier in this command ({where}); "
                        "not computed again (rerun the command to retry it)")
        return replace(failure, message=f"(as in {where}) {failure.message}")

    def _record(self, step: Step, tasks: list[Task], todo: list[Task], cached: list[Task],
                results: dict[str, TaskResult], entries: list, duration: float) -> None:
        """History, status, artifact links and metrics of a step that finished."""
        waited = sum(1 for v in results.values() if isinstance(v, Reused))
        if not todo or waited == len(todo):
            hit = "hit"
        else:
            hit = "miss" if not cached and not waited else "partial"
        last = (self.history.get(step.name) or {}).get("seconds")
        if hit == "miss":   # every shard computed now: rag plan's estimate of a rerun
            last = round(duration, 1)
        self.history[step.name] = {"key": tasks[0].key, "material": tasks[0].material,
                                   **({"seconds": last} if last is not None else {})}
        self.run.set_step(step.name, save=False, state="cached" if hit == "hit" else "done",
                          cache=hit, duration=round(duration, 3), shards=len(tasks),
                          cached_shards=len(cached), **({"waited": waited} if waited else {}))
        if not waited:   # (a resumed run's step that waited the first time)
            self.run.status["steps"][step.name].pop("waited", None)
        if self._keep_resume() or todo:
            self.run.save()
        if not todo:  # the log of the run that computed it, kept with the cache entry
            logs = [str(e.path / "_log.txt") for e in entries if (e.path / "_log.txt").is_file()]
            if logs:
                self.run.set_step(step.name, save=False, log=logs[0] if len(logs) == 1 else logs)
        for name, ref in self.outputs[step.name].items():
            self.run.link(step.name, name, ref)
            if ref.kind == "metrics":
                self.run.add_metrics(step.name, json.loads(Path(ref.paths[0]).read_text()))
        if todo:
            console().print(f"[green]✓[/] {step.name:<{self.width}} done in {duration:.1f}s")
        else:
            console().print(f"[dim]✓ {step.name:<{self.width}} cached[/]")

    def _keep_resume(self) -> bool:
        """After a step of a ``--force``/``--from`` run finishes: the command that resumes the
        run without recomputing what it finished, kept in the run record at once (a SIGKILLed
        run has no later chance to say it). True when it changed. A sweep member's resume is
        the sweep's own command, unchanged."""
        opts = self.opts
        if not (opts.force or opts.from_) or self.run.path.name.startswith("member-"):
            return False
        done = {n for n, s in self.run.status["steps"].items()
                if s.get("state") in ("done", "cached")}
        again = rest_command(opts.command, *still_forced(self.dag, opts.force, opts.from_, done),
                             False)
        if again == self.run.status.get("resume", opts.command):
            return False
        self.run.status["resume"] = again
        return True

    def _record_jobs(self, step: Step, todo: list[Task]):
        """The executor's ``on_submitted``: the step's job ids saved in status.json as soon as
        they are submitted, not when the step ends: after a killed driver, the record names
        the jobs still running (to scancel), which share their name with other runs' jobs."""
        def record(ids: dict[str, str]) -> None:
            jobs = [self.executor.jobs[t.key] for t in todo if t.key in self.executor.jobs]
            self.run.set_step(step.name, jobs=jobs)
        return record

    def _fail(self, step: Step, where: str, failure: Failed, others: int = 0) -> None:
        """Record and print a failure; ``others``: how many more shards failed the same way
        (their logs are beside ``failure.log``)."""
        recipe = os.path.relpath(self.dag.recipe)
        recipe = self.dag.recipe if recipe.startswith("..") else recipe
        failure = replace(failure, message=failure.message.replace("rag run RECIPE ",
                                                                   f"rag run {recipe} "))
        self.failures.append(Failure(step.name, where, failure.message, failure.log,
                                     failure.bad_input))
        self.run.set_step(step.name, state="failed", error=failure.message, log=failure.log)
        console().print(f"[red]✗ {escape(where)}[/] failed: {escape(failure.message)}",
                        soft_wrap=True)
        if failure.hint:
            console().print(f"  hint: {escape(failure.hint)}", soft_wrap=True)
        if failure.traceback and os.environ.get("RAGLINE_FULL_ERROR") == "1":
            console().print(failure.traceback.rstrip(), soft_wrap=True, markup=False)
        if failure.log:
            beside = " (the other shards' logs beside it)" if others else ""
            console().print(f"  log: {escape(failure.log)}{beside}", soft_wrap=True)
