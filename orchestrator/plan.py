"""Plan a DAG against the cache: each step FRESH, STALE or MISSING, and why.

FRESH: every task's key is in the cache. STALE: this recipe computed the step before, with
different key material (config, code version, upstream data, source) — the cause says which.
MISSING: never computed. A step downstream of one that will run has no final key yet (its input
content is not known); it is STALE or MISSING "after upstream X runs", and may still turn out
cached when X reproduces identical bytes (early cut-off).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from orchestrator.artifacts import Ref
from orchestrator.dag import Dag, Step
from orchestrator.hashing import SourceMemo, hash_strings, key_of
from orchestrator.keys import explain, material, task_key
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

    def counts(self) -> dict[str, int]:
        out = {"FRESH": 0, "STALE": 0, "MISSING": 0}
        for p in self.steps.values():
            out[p.state] += 1
        return out


def source_refs(dag: Dag, memo: SourceMemo, problems: list[str]) -> dict[str, Ref | None]:
    """Content-hashed Refs of the recipe's sources (None when a source's path is null)."""
    refs: dict[str, Ref | None] = {}
    for name, path in dag.sources.items():
        if path is None:
            refs[name] = None
            continue
        p = Path(path).expanduser()
        if not p.exists():
            problems.append(f"source '{name}': {path} does not exist")
            refs[name] = Ref("file", "", f"missing:{path}", [str(p)], producer=f"source {name}")
            continue
        kind = "dir" if p.is_dir() else "file"
        refs[name] = Ref(kind, "", memo.hash(p), [str(p.resolve())], producer=f"source {name}")
    return refs


def input_refs(step: Step, outputs: dict[str, dict[str, Ref]], sources: dict[str, Ref | None],
               problems: list[str] | None = None) -> dict[str, Ref | None]:
    """The Refs feeding ``step`` (None: optional input left out, or upstream not computed yet)."""
    refs: dict[str, Ref | None] = {}
    for name, wire in step.inputs.items():
        if wire.output is None:
            ref = sources.get(wire.node)
            if ref is None and not step.stage.inputs[name]["optional"] and problems is not None:
                problems.append(f"steps.{step.name}.inputs.{name}: source '{wire.node}' has no path; "
                                f"set it in the recipe or with {wire.node}=PATH-override")
            refs[name] = ref
        else:
            refs[name] = outputs.get(wire.node, {}).get(wire.output)
    return refs


def step_material(step: Step, hashes: dict[str, str | None], shard: tuple[int, int] | None) -> dict:
    return material(step.stage.name, step.stage.version, step.semantic, hashes, shard)


def shard_specs(step: Step) -> list[tuple[int, int] | None]:
    return [None] if step.shards == 1 else [(i, step.shards) for i in range(step.shards)]


def gather(step: Step, entries: list, store: Store) -> dict[str, Ref]:
    """Output Refs of a step from its task entries, shards concatenated in order."""
    if len(entries) == 1:
        return entries[0].outputs()
    per = [e.outputs() for e in entries]
    out = {}
    for name in step.stage.outputs:
        parts = [p[name] for p in per]
        first = parts[0]
        digest = hash_strings([p.content_hash for p in parts])
        if first.kind == "table":
            paths = [x for p in parts for x in p.paths]
            rows = [x for p in parts for x in p.rows]
            out[name] = Ref("table", first.type, digest, paths, rows, f"{step.name}.{name}")
        else:
            path = store.gather_dir(parts)
            out[name] = Ref(first.kind, first.type, digest, [str(path)], [], f"{step.name}.{name}")
    return out


def load_history(runs_dir: Path, recipe: Path) -> dict:
    try:
        return json.loads(history_path(runs_dir, recipe).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def history_path(runs_dir: Path, recipe: Path) -> Path:
    return Path(runs_dir) / ".state" / f"{recipe.stem}.{key_of(str(recipe))[:8]}.json"


def save_history(runs_dir: Path, recipe: Path, history: dict) -> None:
    path = history_path(runs_dir, recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(history))
    os.replace(tmp, path)


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
        hashes = {n: (r.content_hash if r is not None else None) for n, r in refs.items()}
        for n, w in step.inputs.items():
            if w.node in pending:
                hashes[n] = f"pending:{pending[w.node]}:{w.output}"
        mats = [step_material(step, hashes, s) for s in shard_specs(step)]
        keys = [task_key(m) for m in mats]
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
    return Plan(steps, problems)
