"""Build the DAG of a composed recipe: steps, sources, wires; type-check every edge; order it.

Everything here runs before any stage does: a wrong key, a missing input, a type mismatch or a
cycle is a ``ConfigError`` naming the recipe line and key path, with a did-you-mean.

Recipe shape::

    sources:                 # external files and directories, hashed by content
      corpus: data/psgs_w100.tsv
    steps:
      retrieve:
        stage: retrieve      # a registered stage
        inputs: {questions: load.train, index: index, encoder: encoder}   # step.output | step | source
        shards: 8            # split the stage's shard_by input into 8 row ranges
        gpus: 1              # per shard
        k: 50                # everything else is the stage's config
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.artifacts import Artifact, schema_problems
from orchestrator.config import RESERVED, check_step_config, locate
from orchestrator.errors import ConfigError, did_you_mean
from orchestrator.hashing import canonical_json
from orchestrator.registry import StageSpec, get_stage, load_stages

DEFAULT_SETTINGS = {"imports": [], "max_parallel": 0, "isolate": "auto", "runs_dir": "runs"}


@dataclass
class Wire:
    """Where an input comes from: a step's output, or a source."""

    node: str
    output: str | None  # None for a source

    def __str__(self) -> str:
        return self.node if self.output is None else f"{self.node}.{self.output}"


@dataclass
class StageInfo:
    """What the planner and runner need of a stage: plain data, so a built DAG can be cached
    and a no-op rerun never imports the stage modules (nor pyarrow, nor torch)."""

    name: str
    version: int
    shard_by: str | None
    inputs: dict[str, dict]  # name -> {kind, type, optional}
    outputs: dict[str, dict]  # name -> {kind, type}

    @classmethod
    def of(cls, spec: StageSpec) -> "StageInfo":
        return cls(spec.name, spec.version, spec.shard_by,
                   {n: {"kind": i.type.kind, "type": i.type.__name__, "optional": i.optional}
                    for n, i in spec.inputs.items()},
                   {n: {"kind": t.kind, "type": t.__name__} for n, t in spec.outputs.items()})


@dataclass
class Step:
    name: str
    stage: StageInfo
    config: dict
    semantic: dict
    inputs: dict[str, Wire]
    shards: int = 1
    gpus: int = 0


@dataclass
class Dag:
    recipe: Path
    steps: dict[str, Step]  # in execution order
    sources: dict[str, str | None]
    settings: dict = field(default_factory=dict)

    def downstream(self, names: set[str]) -> set[str]:
        """``names`` and every step that depends on one of them."""
        out = set(names)
        for step in self.steps.values():  # topological order: one pass suffices
            if any(w.node in out for w in step.inputs.values()):
                out.add(step.name)
        return out

    def upstream(self, name: str) -> set[str]:
        out, todo = set(), [name]
        while todo:
            for w in self.steps[todo.pop()].inputs.values():
                if w.node in self.steps and w.node not in out:
                    out.add(w.node)
                    todo.append(w.node)
        return out


_checked: dict[tuple, dict] = {}
_steps_memo: dict[tuple, tuple] = {}
_edges_memo: dict[tuple, list] = {}
_order_memo: dict[str, list] = {}


def _check_config(spec: StageSpec, values: dict, where: str) -> dict:
    memo = (spec.name, where, canonical_json(values))
    if memo not in _checked:
        _checked[memo] = check_step_config(spec.config_cls, values, where)
    return _checked[memo]


def _edge_problems(consumer: type[Artifact], producer: type[Artifact]) -> list[str]:
    if consumer.kind != producer.kind:
        return [f"it is a {producer.kind} ({producer.__name__}), expected a {consumer.kind}"]
    if consumer.kind == "table":
        if consumer.schema is None or producer.schema is None:
            return []
        return schema_problems(consumer.schema, producer.schema)
    if not issubclass(producer, consumer) and consumer.__name__ not in ("Directory", "Metrics"):
        return [f"it is {producer.__name__}, expected {consumer.__name__}"]
    return []


def _source_path(name: str, value, recipe: Path) -> str | None:
    if isinstance(value, dict):
        value = value.get("path")
    if value is None or isinstance(value, str):
        return value
    raise ConfigError(f"{locate(recipe, name)}: sources.{name}: expected a path or null, got {value!r}")


def build_dag(recipe: Path, cfg: dict) -> Dag:
    """Validate a composed recipe and return its DAG in execution order."""
    try:
        return _build_dag(recipe, cfg)
    except ConfigError as e:  # fill in file:line, looked up only now that it is needed
        import re

        e.message = re.sub("\x00([^\x00]*)\x00", lambda m: locate(recipe, m.group(1)), e.message)
        raise


def _build_step(name: str, body, steps_cfg: dict, sources: dict) -> tuple[Step, StageSpec]:
    """Check one step's stage, config, inputs, shards and GPUs."""
    where = f"steps.{name}"
    at = f"\x00{name}\x00"  # replaced by file:line only if an error is raised
    if not isinstance(body, dict) or "stage" not in body:
        raise ConfigError(f"{at}: {where}: expected a mapping with a 'stage' key")
    spec = get_stage(str(body["stage"]), f"{at}: {where}.stage")
    values = {k: v for k, v in body.items() if k not in RESERVED}
    try:
        config = _check_config(spec, values, where)
    except ConfigError as e:
        e.message = f"\x00{e.message.split(':')[0]}\x00: {e.message}"
        raise
    semantic = {k: v for k, v in config.items() if k not in spec.nonsemantic_fields()}
    wires = {}
    given = body.get("inputs") or {}
    if not isinstance(given, dict):
        raise ConfigError(f"{at}: {where}.inputs: expected a mapping input: step.output")
    for iname, ref in given.items():
        if iname not in spec.inputs:
            raise ConfigError(f"{at}: {where}.inputs.{iname}: stage '{spec.name}' has no input "
                              f"'{iname}'{did_you_mean(iname, spec.inputs)}",
                              hint=f"its inputs are: {', '.join(spec.inputs) or 'none'}")
        if ref is None:
            continue
        wires[iname] = _wire(str(ref), steps_cfg, sources, f"{at}: {where}.inputs.{iname}")
    for iname, ispec in spec.inputs.items():
        if iname not in wires and not ispec.optional:
            raise ConfigError(f"{at}: {where}.inputs.{iname}: missing; stage '{spec.name}' needs "
                              f"a {ispec.type.__name__} here",
                              hint=f"add inputs: {{{iname}: STEP.OUTPUT}} to step '{name}'")
    shards, gpus = body.get("shards", 1), body.get("gpus", 0)
    if not isinstance(shards, int) or isinstance(shards, bool) or shards < 1:
        raise ConfigError(f"{at}: {where}.shards: expected an integer >= 1, got {shards!r}")
    if shards > 1 and spec.shard_by is None:
        raise ConfigError(f"{at}: {where}.shards: stage '{spec.name}' is not shardable; "
                          "remove shards or use a stage with shard_by")
    if shards > 1 and any(t.kind == "metrics" for t in spec.outputs.values()):
        raise ConfigError(f"{at}: {where}.shards: stage '{spec.name}' writes metrics and cannot be sharded")
    if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 0:
        raise ConfigError(f"{at}: {where}.gpus: expected an integer >= 0 (GPUs per shard), got {gpus!r}")
    return Step(name, StageInfo.of(spec), config, semantic, wires, shards, gpus), spec


def _build_dag(recipe: Path, cfg: dict) -> Dag:
    from orchestrator.repeat import expand_repeats

    cfg = expand_repeats(cfg)
    settings = {**DEFAULT_SETTINGS, **(cfg.get("ragline") or {})}
    load_stages(settings.get("imports") or [])
    steps_cfg = cfg.get("steps")
    if not isinstance(steps_cfg, dict) or not steps_cfg:
        raise ConfigError(f"{recipe}: no 'steps' mapping; a recipe names its steps under steps:",
                          hint="see conf/ for examples")
    sources = {n: _source_path(n, v, recipe) for n, v in (cfg.get("sources") or {}).items()}
    clash = set(sources) & set(steps_cfg)
    if clash:
        raise ConfigError(f"{recipe}: '{sorted(clash)[0]}' is both a source and a step; rename one")

    steps: dict[str, Step] = {}
    specs: dict[str, StageSpec] = {}
    context = canonical_json([{n: b.get("stage") if isinstance(b, dict) else None
                               for n, b in steps_cfg.items()}, sorted(sources)])
    for name, body in steps_cfg.items():
        memo = (context, name, canonical_json(body))
        if memo not in _steps_memo:  # sweep members share the checks of identical steps
            _steps_memo[memo] = _build_step(name, body, steps_cfg, sources)
        steps[name], specs[name] = _steps_memo[memo]

    for step in steps.values():  # type-check every edge from a step
        for iname, wire in step.inputs.items():
            consumer = specs[step.name].inputs[iname].type
            where = f"\x00{step.name}\x00: steps.{step.name}.inputs.{iname}"
            if wire.output is None:
                if consumer.kind not in ("file", "dir"):
                    raise ConfigError(f"{where}: source '{wire.node}' is a path, but stage "
                                      f"'{step.stage.name}' expects a {consumer.__name__} table here",
                                      hint="load the file with a loading step and wire its output")
                continue
            producer = specs[wire.node].outputs[wire.output]
            if (consumer, producer) not in _edges_memo:
                _edges_memo[consumer, producer] = _edge_problems(consumer, producer)
            problems = _edges_memo[consumer, producer]
            if problems:
                raise ConfigError(f"{where}: '{wire}' does not fit {consumer.__name__}: {problems[0]}"
                                  + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    shape = canonical_json({n: sorted(w.node for w in st.inputs.values()) for n, st in steps.items()})
    if shape not in _order_memo:
        _order_memo[shape] = _toposort(steps, recipe)
    order = _order_memo[shape]
    return Dag(recipe, {n: steps[n] for n in order}, sources, settings)


def load_dag(recipe: Path, cfg: dict, cache_dir: Path | None) -> Dag:
    """``build_dag`` remembered by composed config, valid while no stage module file changes.

    A no-op rerun then plans from plain JSON without importing any stage module.
    """
    import json
    import os

    from orchestrator import __version__
    from orchestrator.hashing import key_of
    from orchestrator.registry import module_files

    if cache_dir is None:
        return build_dag(recipe, cfg)
    path = cache_dir / f"{key_of([str(recipe), cfg, __version__])}.json"
    try:
        data = json.loads(path.read_text())
        if all(_stamp(f[0]) == f for f in data["files"]):
            return _dag_from_json(recipe, data["dag"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError, OSError):
        pass
    dag = build_dag(recipe, cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"files": module_files(), "dag": _dag_to_json(dag)}))
    os.replace(tmp, path)
    return dag


def load_dags(recipe: Path, configs: list[dict], cache_dir: Path | None) -> list[Dag]:
    """DAGs of a run's members: the snapshot cache for one member, plain builds for a sweep
    (whose members share validation work through the per-config memo)."""
    if len(configs) == 1:
        return [load_dag(recipe, configs[0], cache_dir)]
    return [build_dag(recipe, c) for c in configs]


def _stamp(path: str) -> list:
    import os

    st = os.stat(path)
    return [path, st.st_size, st.st_mtime_ns]


def _dag_to_json(dag: Dag) -> dict:
    from dataclasses import asdict

    return {"steps": [{**asdict(s), "inputs": {k: [w.node, w.output] for k, w in s.inputs.items()}}
                      for s in dag.steps.values()],
            "sources": dag.sources, "settings": dag.settings}


def _dag_from_json(recipe: Path, data: dict) -> Dag:
    steps = {}
    for s in data["steps"]:
        steps[s["name"]] = Step(s["name"], StageInfo(**s["stage"]), s["config"], s["semantic"],
                                {k: Wire(*w) for k, w in s["inputs"].items()}, s["shards"], s["gpus"])
    return Dag(recipe, steps, data["sources"], data["settings"])


def _wire(ref: str, steps_cfg: dict, sources: dict, where: str) -> Wire:
    node, _, output = ref.partition(".")
    if node in sources and not output:
        return Wire(node, None)
    if node not in steps_cfg:
        raise ConfigError(f"{where}: '{ref}' names no step or source"
                          f"{did_you_mean(node, list(steps_cfg) + list(sources))}")
    spec = get_stage(str(steps_cfg[node].get("stage")), f"steps.{node}.stage")
    if not output:
        if len(spec.outputs) != 1:
            raise ConfigError(f"{where}: step '{node}' has several outputs; name one: "
                              + ", ".join(f"{node}.{o}" for o in spec.outputs))
        output = next(iter(spec.outputs))
    if output not in spec.outputs:
        raise ConfigError(f"{where}: step '{node}' has no output '{output}'"
                          f"{did_you_mean(output, spec.outputs)}",
                          hint=f"its outputs are: {', '.join(spec.outputs)}")
    return Wire(node, output)


def _toposort(steps: dict[str, Step], recipe: Path) -> list[str]:
    """Kahn's algorithm, stable in recipe order; a cycle is reported with its path."""
    deps = {n: {w.node for w in s.inputs.values() if w.node in steps} for n, s in steps.items()}
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(steps):
        ready = [n for n in steps if n not in done and deps[n] <= done]
        if not ready:
            cycle = _find_cycle({n: d for n, d in deps.items() if n not in done})
            raise ConfigError(f"{recipe}: the steps form a cycle: {' -> '.join(cycle)}",
                              hint="a step cannot depend on its own output; break one wire")
        order.extend(ready)
        done.update(ready)
    return order


def _find_cycle(deps: dict[str, set[str]]) -> list[str]:
    start = next(iter(deps))
    path, seen = [start], {start}
    node = start
    while True:
        node = sorted(deps[node] & set(deps))[0]
        if node in seen:
            return path[path.index(node):] + [node]
        path.append(node)
        seen.add(node)
