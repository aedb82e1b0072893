"""Plan a DAG against the cache: each step FRESH, STALE or MISSING, and why.

FRESH: every task's key is in the cache. STALE: this recipe computed the step before, with
different key material (config, code version, upstream data, source) — the cause says which.
MISSING: never computed. A step downstream of one that will run has no final key yet (its input
content is not known); it is STALE or MISSING "after upstream X runs", and may still turn out
cached when X reproduces identical bytes (early cut-off).

A cache hit is checked (``Store.lookup`` stats every file of the entry): a changed or damaged
entry is quarantined and the step is STALE with the cause ("artifact changed on disk after
commit: outputs/out/part-00000.parquet"). An entry computed by a different version of the stage's
code (same ``version``) is flagged by the recipe setting ``ragline.cache.on_code_change``:
``warn`` (default: reused, with a warning), ``rerun`` (STALE, recomputed) or ``ignore``.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.artifacts import Ref
from orchestrator.dag import Dag
from orchestrator.errors import RagError
from orchestrator.hashing import SourceMemo
from orchestrator.keys import explain
from orchestrator.resolve import gather, input_hashes, input_refs, source_refs, step_keys
from orchestrator.store import Entry, Store

log = logging.getLogger("ragline")
CODE_POLICIES = ("warn", "rerun", "ignore")

@dataclass
class StepPlan:
    step: str
    stage: str
    state: str  # FRESH | STALE | MISSING
    cause: str
    shards: int
    cached_shards: int
    keys: list[str]
    final: bool  # keys are final (all inputs known)
    forced: bool = False  # recompute even if cached: --force/--from, or code changed with on_code_change=rerun

    def to_json(self) -> dict:
        return {**vars(self), "keys": list(self.keys)}


@dataclass
class Plan:
    steps: dict[str, StepPlan]
    problems: list[str] = field(default_factory=list)  # missing sources: block a run, not a plan
    sources: dict[str, Ref | None] = field(default_factory=dict)  # resolved once, reused by the run
    entries: dict[str, Entry] = field(default_factory=dict)  # key -> entry found (stat-checked)
    notes: list[str] = field(default_factory=list)  # e.g. a source found in the project directory

    def counts(self) -> dict[str, int]:
        out = {"FRESH": 0, "STALE": 0, "MISSING": 0}
        for p in self.steps.values():
            out[p.state] += 1
        return out


def plan(dag: Dag, store: Store, memo: SourceMemo, history: dict,
         force: set[str] | None = None, overrides: list[str] | None = None,
         done: dict[str, str] | None = None) -> Plan:
    """Plan every step of ``dag``; reads only small entry files and source stats. ``overrides``:
    the command line's, named by a missing source's problem when one of them set its path.
    ``done``: task key -> the run (an earlier member of this sweep) that recomputed it for
    ``--force``/``--from`` in this command; a forced step whose keys are all there is not
    forced again (its entry is the one that run committed): a sweep recomputes it once."""
    force = force or set()
    done = done or {}
    problems: list[str] = []
    notes: list[str] = []
    sources = source_refs(dag, memo, problems, notes, overrides)
    outputs: dict[str, dict[str, Ref]] = {}
    pending: dict[str, str] = {}  # step -> provisional id, for steps that will run
    steps: dict[str, StepPlan] = {}
    found: dict[str, Entry] = {}
    checked: dict = {}  # (input type, source hash) -> the first input it failed for
    for step in dag.steps.values():
        refs = input_refs(step, outputs, sources, problems)
        waiting = [w.node for w in step.inputs.values() if w.node in pending]
        hashes = input_hashes(refs, step)
        for n, w in step.inputs.items():
            if w.node in pending:
                hashes[n] = f"pending:{pending[w.node]}:{w.output}"
        tasks = step_keys(step, hashes)
        keys = [t.key for t in tasks]
        old = history.get(step.name)
        if waiting:
            problems += env_problems(step) + source_problems(step, refs, checked)
            state = "STALE" if old else "MISSING"
            cause = f"after upstream '{waiting[0]}' runs"
            pending[step.name] = keys[0]
            steps[step.name] = StepPlan(step.name, step.stage.name, state, cause, step.shards, 0,
                                        keys, False)
            continue
        entries = [store.lookup(k, step.name) for k in keys]
        found.update((k, e) for k, e in zip(keys, entries) if e is not None)
        cached = sum(e is not None for e in entries)
        changed_code = code_changed(step, entries) if cached else False  # cached shards' code
        rerun_code = changed_code and code_policy(dag) == "rerun"
        once = step.name in force and all(k in done for k in keys)
        forced = step.name in force and not once
        if cached == len(keys) and not forced and not rerun_code:
            outputs[step.name] = gather(step, entries, store)
            cause = f"cached: recomputed once in this sweep, by {done[keys[0]]}" if once else (
                "cached")
            if changed_code and code_policy(dag) == "warn":
                cause = f"cached; {code_note(step.name)}"
                log.warning("step '%s': %s", step.name, code_note(step.name))
            steps[step.name] = StepPlan(step.name, step.stage.name, "FRESH", cause, step.shards,
                                        cached, keys, True)
            continue
        pending[step.name] = keys[0]
        problems += env_problems(step) + source_problems(step, refs, checked)
        names = {n: f"upstream '{w}'" if w.output else f"source '{w.node}'"
                 for n, w in step.inputs.items()}
        state, cause = classify(forced, rerun_code, old, keys, [t.material for t in tasks],
                                names, cached,
                                [store.miss_reason(k) for k, e in zip(keys, entries) if e is None])
        if changed_code and code_policy(dag) == "warn" and not forced:
            # a resumed step would join shards of the old code to shards of the new
            cause = f"{cause}; its cached shards: {code_note(step.name)}"
            log.warning("step '%s': its cached shards: %s", step.name, code_note(step.name))
        steps[step.name] = StepPlan(step.name, step.stage.name, state, cause, step.shards, cached,
                                    keys, True, forced or rerun_code)
    return Plan(steps, problems, sources, found, notes)


def env_problems(step) -> list[str]:
    """A step that will run and reads an unset (or empty) environment variable: one line each.
    Checked on every plan (never remembered), only for steps that are not cached."""
    return [f"{path}: environment variable {name} is not set (step '{step.name}' reads it when "
            f"it runs)" for path, name in step.env.items() if not os.environ.get(name, "").strip()]


def source_problems(step, refs: dict[str, Ref | None], seen: dict) -> list[str]:
    """A step that will run and reads a source file its input type refuses (``check_source``:
    a prompt file's YAML or placeholders): one line each, naming the step's input; a file
    already refused for the same type in this plan (``seen``) is not explained twice. Only
    steps that are not cached are checked; the checking type's module is imported then."""
    out = []
    for name, wire in step.inputs.items():
        check, ref = step.stage.inputs[name].get("check"), refs.get(name)
        if not check or wire.output is not None or ref is None or ref.content_hash.startswith("missing:"):
            continue
        where, slot = f"steps.{step.name}.inputs.{name}", (check, ref.content_hash)
        if slot not in _VERDICTS:
            _VERDICTS[slot] = _verdict(check, Path(ref.paths[0]))
        if _VERDICTS[slot] is None:
            continue
        if slot not in seen:
            seen[slot] = where
            out.append(f"{where} (source '{wire.node}'): {_VERDICTS[slot]}")
        else:
            out.append(f"{where} (source '{wire.node}'): as {seen[slot]}")
    return out


_VERDICTS: dict[tuple[str, str], str | None] = {}  # (type, content hash) -> its problem, or None:
# content-addressed, so a sweep's members and a second plan in one process check a file once


def _verdict(check: str, path: Path) -> str | None:
    """What type ``check`` ("module:Class") says is wrong with the source at ``path``, or None."""
    module, _, qualname = check.partition(":")
    try:
        getattr(importlib.import_module(module), qualname).check_source(path)
    except RagError as e:
        return e.message + (f"; {e.hint}" if e.hint else "")
    return None


def classify(forced: bool, rerun_code: bool, old: dict | None, keys: list[str], mats: list[dict],
             names: dict[str, str], cached: int, reasons: list[str | None]) -> tuple[str, str]:
    """(state, cause) of a step that is not fully cached (or is forced)."""
    damaged = next((r for r in reasons if r), None)
    partial = f"{cached}/{len(keys)} shards cached"
    if forced:
        return "STALE", "forced (--force/--from)"
    if rerun_code:
        return "STALE", "code changed since this was computed (cache.on_code_change: rerun)"
    if damaged:
        return "STALE", damaged
    if old and old.get("key") != keys[0]:
        return "STALE", explain(old["material"], mats[0], names)
    if old:
        return "STALE", "entry missing from the cache (failed or removed by gc)" if not cached else partial
    return "MISSING", "never computed" if not cached else partial


def code_policy(dag: Dag) -> str:
    """``ragline.cache.on_code_change`` of the recipe: warn (default), rerun or ignore."""
    cache = dag.settings.get("cache") or {}
    policy = cache.get("on_code_change", "warn") if isinstance(cache, dict) else "warn"
    return policy if policy in CODE_POLICIES else "warn"


def code_note(step: str) -> str:
    return f"code changed since this was computed; `--force {step}` or bump the version"


def current_code(step) -> str:
    """The hash of the stage function's code now: from the DAG (built from the stage), or from
    the registry when the stage module is loaded; "" when neither knows."""
    code = getattr(step.stage, "code", "")
    if code:
        return code
    from orchestrator.registry import REGISTRY

    if step.stage.name not in REGISTRY:
        return ""
    from orchestrator.hashing import registered_code

    return registered_code(step.stage.name).get("fn", "")


def code_changed(step, entries: list[Entry | None]) -> bool:
    """Whether a cached entry of ``step`` was computed by different code (same version)."""
    now = current_code(step)
    if not now:
        return False
    for e in entries:
        then = (e.meta.get("code") or {}).get("fn", "") if e is not None else ""
        if then and then != now:
            return True
    return False
