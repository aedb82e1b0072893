"""Plan a DAG against the cache: each step FRESH, STALE or MISSING, and why.

FRESH: every task's key is in the cache. STALE: this recipe computed the step before, with
different key material (config, code version, upstream data, source) — the cause says which.
MISSING: never computed. A step downstream of one that will run has no final key yet (its input
content is not known); it is STALE or MISSING "after upstream X runs", and may still turn out
cached when X reproduces identical bytes (early cut-off).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from orchestrator.artifacts import Ref
from orchestrator.dag import Dag
from orchestrator.hashing import SourceMemo
from orchestrator.history import load_history  # noqa: F401 - cli/plan.py imports it from here
from orchestrator.keys import explain
from orchestrator.resolve import gather, input_hashes, input_refs, source_refs, step_keys
from orchestrator.store import Store


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

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Plan:
    steps: dict[str, StepPlan]
    problems: list[str] = field(default_factory=list)  # missing sources: block a run, not a plan
    sources: dict[str, Ref | None] = field(default_factory=dict)  # resolved once, reused by the run

    def counts(self) -> dict[str, int]:
        out = {"FRESH": 0, "STALE": 0, "MISSING": 0}
        for p in self.steps.values():
            out[p.state] += 1
        return out


def plan(dag: Dag, store: Store, memo: SourceMemo, history: dict,
         force: set[str] | None = None) -> Plan:
    """Plan every step of ``dag``; reads only small entry files and source stats."""
    force = force or set()
    problems: list[str] = []
    sources = source_refs(dag, memo, problems)
    outputs: dict[str, dict[str, Ref]] = {}
    pending: dict[str, str] = {}  # step -> provisional id, for steps that will run
    steps: dict[str, StepPlan] = {}
    for step in dag.steps.values():
        refs = input_refs(step, outputs, sources, problems)
        waiting = [w.node for w in step.inputs.values() if w.node in pending]
        hashes = input_hashes(refs)
        for n, w in step.inputs.items():
            if w.node in pending:
                hashes[n] = f"pending:{pending[w.node]}:{w.output}"
        tasks = step_keys(step, hashes)
        mats, keys = [t.material for t in tasks], [t.key for t in tasks]
        old = history.get(step.name)
        names = {n: f"upstream '{w}'" if w.output else f"source '{w.node}'"
                 for n, w in step.inputs.items()}
        if waiting:
            state = "STALE" if old else "MISSING"
            cause = f"after upstream '{waiting[0]}' runs"
            pending[step.name] = keys[0]
            steps[step.name] = StepPlan(step.name, step.stage.name, state, cause, step.shards, 0,
                                        keys, False)
            continue
        entries = [store.lookup(k) for k in keys]
        cached = sum(e is not None for e in entries)
        if cached == len(keys) and step.name not in force:
            outputs[step.name] = gather(step, entries, store)
            steps[step.name] = StepPlan(step.name, step.stage.name, "FRESH", "cached", step.shards,
                                        cached, keys, True)
            continue
        pending[step.name] = keys[0]
        if step.name in force:
            state, cause = ("STALE", "forced (--force/--from)")
        elif old and old.get("key") != keys[0]:
            state, cause = "STALE", explain(old["material"], mats[0], names)
        elif old:
            state, cause = "STALE", ("entry missing from the cache (failed or removed by gc)"
                                     if not cached else f"{cached}/{len(keys)} shards cached")
        else:
            state, cause = "MISSING", ("never computed" if not cached
                                       else f"{cached}/{len(keys)} shards cached")
        steps[step.name] = StepPlan(step.name, step.stage.name, state, cause, step.shards, cached,
                                    keys, True)
    return Plan(steps, problems, sources)
