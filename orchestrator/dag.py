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

import dataclasses
import functools
import json
import re
import sysconfig
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.artifacts import Artifact, schema_problems
from orchestrator.errors import ConfigError, did_you_mean
from orchestrator import hashing
from orchestrator.hashing import canonical_json
from orchestrator.locate import project_dir, with_recipe_paths
from orchestrator.secrets import is_credential, keyed, literal_credentials, unsaid
from orchestrator.registry import (NEUTRAL, SEMANTIC, StageDefinitionError, StageSpec, get_stage,
                                   load_stages)
from orchestrator.repeat import expand_repeats
from orchestrator.stage_config import (RESERVED, check_step_config, needed_env, neutral_paths,
                                       nonsemantic_paths, plan_notes)


@dataclass
class Wire:
    """Where an input comes from: a step's output, or a source."""

    node: str
    output: str | None  # None for a source

    def __str__(self) -> str:
        return self.node if self.output is None else f"{self.node}.{self.output}"


@dataclass
class StageInfo:
    """What the planner and runner need of a stage: plain data, so a remembered DAG
    (``orchestrator.remember``) plans a no-op rerun without importing stage modules."""

    name: str
    version: int
    shard_by: str | None
    inputs: dict[str, dict]  # name -> {kind, type, optional[, check: "module:Class"]}
    outputs: dict[str, dict]  # name -> {kind, type}
    code: str = ""  # hash of the stage function's source (cache.on_code_change)
    multi_gpu: str = "ranks"  # a step with gpus: N runs N ranks, or one process that sees N GPUs

    @classmethod
    def of(cls, spec: StageSpec) -> "StageInfo":
        return cls(spec.name, spec.version, spec.shard_by,
                   {n: _input_info(i) for n, i in spec.inputs.items()},
                   {n: {"kind": t.kind, "type": t.__name__} for n, t in spec.outputs.items()},
                   _code_hash(spec.fn), spec.multi_gpu)


def _input_info(spec) -> dict:
    """An input's plain-data description; ``check`` names a type whose ``check_source`` the
    planner calls on a source file (``plan.source_problems``), ``names`` one whose
    ``key_names`` join a source's hash in the step's key (``resolve.input_hashes``)."""
    info = {"kind": spec.type.kind, "type": spec.type.__name__, "optional": spec.optional}
    if spec.type.checks_sources():
        info["check"] = spec.type.type_name()
    if spec.type.names_in_key():
        info["names"] = spec.type.type_name()
    return info


@dataclass
class Step:
    name: str
    stage: StageInfo
    config: dict  # every field, defaults filled in, checked; values read from the environment included
    semantic: dict  # the key's config: less nonsemantic, credential and added-at-default fields
    inputs: dict[str, Wire]
    shards: int = 1
    gpus: int = 0
    secrets: dict[str, str] = field(default_factory=dict)  # config key path -> "${oc.env:NAME}"
    notes: list[str] = field(default_factory=list)  # the config's plan_notes(resources)
    env: dict[str, str] = field(default_factory=dict)  # key path -> variable it reads (needed_env)
    # (input hashes) -> its tasks' keys (``resolve.step_keys``): sweep members share Step objects
    task_keys: dict = field(default_factory=dict, repr=False, compare=False)


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


@functools.lru_cache(maxsize=None)
def _code_hash(fn) -> str:
    return hashing.stage_code_hash(fn) if hasattr(hashing, "stage_code_hash") else ""


@functools.lru_cache(maxsize=None)
def edge_problems(consumer: type[Artifact], producer: type[Artifact]) -> tuple[str, ...]:
    """Why an output of type ``producer`` cannot feed an input of type ``consumer`` (empty: it
    fits); the wire check of ``build_dag``, and ``rag stages NAME``'s list of producers."""
    if consumer.kind != producer.kind:
        return (f"it is a {producer.kind} ({producer.__name__}), expected a {consumer.kind}",)
    if consumer.kind == "table":
        if consumer.schema is None or producer.schema is None:
            return ()
        return tuple(schema_problems(consumer.schema, producer.schema))
    if not issubclass(producer, consumer) and consumer.__name__ not in ("Directory", "Metrics"):
        return (f"it is {producer.__name__}, expected {consumer.__name__}",)
    return ()


def _source_path(name: str, value) -> str | None:
    if isinstance(value, dict):
        extra = sorted(set(value) - {"path"})
        if extra or "path" not in value:
            what = f"unknown key '{extra[0]}'" if extra else "no 'path' key"
            raise ConfigError(f"sources.{name}: {what}; a source is a path, or {{path: PATH}}",
                              key=f"sources.{name}")
        value = value["path"]
    if value is None or isinstance(value, str):
        return value
    raise ConfigError(f"sources.{name}: expected a path or null, got {value!r}", key=f"sources.{name}")


def build_dag(recipe: Path, cfg: dict, secrets: dict[str, str] | None = None,
              shared: dict | None = None, overrides: list[str] | None = None) -> Dag:
    """Validate a composed recipe and return its DAG in execution order.

    ``secrets``: key paths of values read from the environment (``recipe.Member.secrets``); they
    are left out of the steps' cache keys. ``shared``: one dict passed to every member of a sweep
    (``build_dags``), so a step body the members share is checked once. A ``ConfigError`` with a
    ``key`` gets the recipe's file:line in front, looked up only now that it is needed (and
    ``overrides``, the member's command line, say when a value was set there instead).
    """
    try:
        return _build_dag(recipe, cfg, secrets or {}, shared)
    except ConfigError as e:
        from orchestrator.where import place

        raise place(e, recipe, overrides)


def build_dags(recipe: Path, members: list) -> list[Dag]:
    """The DAG of every member of a sweep (``recipe.Member``). Members share the objects of the
    steps no override touched, so those are checked and serialised once, not once per member."""
    shared: dict = {}
    return [build_dag(recipe, m.values, m.secrets, shared, m.overrides) for m in members]


def _without(config: dict, paths: list[list[str]]) -> dict:
    """``config`` less the (nested) keys at ``paths``; copies only what it changes."""
    out = dict(config)
    for path in paths:
        node = out
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                break
            node[part] = dict(node[part])
            node = node[part]
        else:
            node.pop(path[-1], None)
    return out


def _check_resources(spec: StageSpec, body: dict, where: str) -> tuple[int, int]:
    shards, gpus = body.get("shards", 1), body.get("gpus", 0)
    if not isinstance(shards, int) or isinstance(shards, bool) or shards < 1:
        raise ConfigError(f"{where}.shards: expected an integer >= 1, got {shards!r}", key=f"{where}.shards")
    if shards > 1 and spec.shard_by is None:
        raise ConfigError(f"{where}.shards: stage '{spec.name}' is not shardable; "
                          "remove shards or use a stage with shard_by", key=f"{where}.shards")
    if shards > 1 and any(t.kind == "metrics" for t in spec.outputs.values()):
        raise ConfigError(f"{where}.shards: stage '{spec.name}' writes metrics and cannot be sharded",
                          key=f"{where}.shards")
    if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus < 0:
        raise ConfigError(f"{where}.gpus: expected an integer >= 0 (GPUs per shard), got {gpus!r}",
                          key=f"{where}.gpus")
    return shards, gpus


def _wires(name: str, spec: StageSpec, body: dict, steps_cfg: dict, sources: dict,
           removed: list[str]) -> dict[str, Wire]:
    where = f"steps.{name}.inputs"
    given = body.get("inputs") or {}
    if not isinstance(given, dict):
        raise ConfigError(f"{where}: expected a mapping {{INPUT: STEP, STEP.OUTPUT or SOURCE}}, "
                          f"got a {type(given).__name__}",
                          hint=f"{where}: {{{', '.join(f'{n}: ...' for n in spec.inputs)}}}; "
                               f"`rag stages {spec.name}` says what each input takes", key=where)
    wires = {}
    for iname, ref in given.items():
        if iname not in spec.inputs:
            raise ConfigError(f"{where}.{iname}: stage '{spec.name}' has no input "
                              f"'{iname}'{did_you_mean(iname, spec.inputs)}",
                              hint=f"its inputs are: {', '.join(spec.inputs) or 'none'}", key=f"{where}.{iname}")
        if ref is None:
            continue
        node = str(ref).partition(".")[0]
        if node in removed and node not in sources:
            optional = spec.inputs[iname].optional
            raise ConfigError(f"{where}.{iname}: '{ref}' is a removed step (steps.{node}: null)",
                              hint=(f"leave the input out too: {where}.{iname}=null" if optional
                                    else f"stage '{spec.name}' needs its {iname}: keep step "
                                    f"'{node}' or wire another"), key=f"{where}.{iname}")
        wires[iname] = _wire(str(ref), steps_cfg, sources, f"{where}.{iname}")
    for iname, ispec in spec.inputs.items():
        if iname not in wires and not ispec.optional:
            raise ConfigError(f"{where}.{iname}: missing; stage '{spec.name}' needs "
                              f"a {ispec.type.__name__} here",
                              hint=f"add inputs: {{{iname}: "
                                   + {"file": "SOURCE", "dir": "STEP or SOURCE"}.get(ispec.type.kind, "STEP")
                                   + f"}} to step '{name}' (STEP.OUTPUT for a step with several "
                                   "outputs; a SOURCE is a name under sources: with its path); "
                                   f"`rag stages {spec.name}` says what each input takes",
                              key=where)
    return wires


@functools.lru_cache(maxsize=65536)
def _step_memo(name: str, body: str, shape: str) -> tuple[Step, StageSpec]:
    """``_build_step`` remembered by value: sweep members share the checks of identical steps.
    ``shape`` is every step's stage, the sources, the secrets, the executor, the removed
    steps (``steps.X: null``), the recipe's path and the current directory, as JSON: the last
    two place the files a ``recipe_path`` field names, so they are part of what is remembered."""
    stages, sources, secrets, executor, removed, recipe, _cwd = json.loads(shape)
    steps_cfg = {n: {"stage": st} for n, st in stages.items()}
    return _build_step(name, json.loads(body), steps_cfg, sources, secrets,
                       {"executor": executor, "removed": removed, "recipe": Path(recipe)})


def _build_step(name: str, body, steps_cfg: dict, sources: dict, secrets: dict[str, str],
                settings: dict) -> tuple[Step, StageSpec]:
    """Check one step's stage, config, inputs, shards and GPUs; ask its config for plan notes."""
    where = f"steps.{name}"
    if not isinstance(body, dict) or "stage" not in body:
        typo = next((f"; did you mean 'stage' for '{k}'?" for k in body
                     if did_you_mean(str(k), ["stage"])), "") if isinstance(body, dict) else ""
        raise ConfigError(f"{where}: expected a mapping with a 'stage' key"
                          + (f"; it has {', '.join(sorted(map(str, body)))}{typo}"
                             if isinstance(body, dict) and body else ""),
                          hint=f"a step names its stage: {where}: {{stage: NAME, inputs: ...}}; "
                               "`rag stages` lists them", key=where)
    spec = _stage(body["stage"], f"{where}.stage")
    values = {k: v for k, v in body.items() if k not in RESERVED}
    _not_an_input(spec, values, where)
    values, located = with_recipe_paths(spec.config_cls, values, settings["recipe"], where)
    mine = {p[len(where) + 1:]: t for p, t in secrets.items() if p.startswith(where + ".")}
    try:
        config, obj = check_step_config(spec.config_cls, values, where)
    except ConfigError as e:   # it may quote a value read from the environment: show its name
        if not mine:
            raise
        raise ConfigError(unsaid(e.message, values, mine) + _env_is_text(e, where, values, mine),
                          key=e.key, hint=e.hint and unsaid(e.hint, values, mine)) from None
    _no_literal_credential(config, mine, where)
    hidden = ([p.split(".") for p in mine if is_credential(p)]
              + [list(p) for p in nonsemantic_paths(spec.config_cls, SEMANTIC)]
              + [list(p) for p in neutral_paths(spec.config_cls, config, NEUTRAL)])
    wires = _wires(name, spec, body, steps_cfg, sources, settings.get("removed") or [])
    shards, gpus = _check_resources(spec, body, where)
    resources = {"gpus": gpus, "shards": shards, "executor": settings.get("executor"),
                 # a wire to a source whose path is null feeds nothing: not an input given
                 "inputs": sorted(n for n, w in wires.items()
                                  if w.output is not None or sources.get(w.node) is not None)}
    notes = located + plan_notes(obj, resources, where)
    semantic = keyed(_without(config, hidden), config, mine)   # other env values: as digests
    return Step(name, StageInfo.of(spec), config, semantic, wires, shards, gpus, mine, notes,
                needed_env(obj, where)), spec


_NOT_TEXT = re.compile(r": expected (an integer|a number|a finite number|true or false), got ")


def _env_is_text(err: ConfigError, where: str, values: dict, mine: dict[str, str]) -> str:
    """What to add to a type error about a setting read whole from the environment
    (``mul: ${oc.env:MUL}``): a variable is text, so a number field refuses ``'2'``; OmegaConf's
    ``oc.decode`` parses it (``${oc.decode:${oc.env:MUL}}``). "" for any other error.

    >>> e = ConfigError("steps.m.mul: expected a number, got '${oc.env:MUL}'", key="steps.m.mul")
    >>> _env_is_text(e, "steps.m", {"mul": "2"}, {"mul": "${oc.env:MUL}"})
    '; the environment gives text: write ${oc.decode:${oc.env:MUL}} to read it as a number'
    """
    rel = (err.key or "").removeprefix(where + ".")
    read = mine.get(rel, "")
    kind = _NOT_TEXT.search(err.message)
    if not kind or not isinstance(values.get(rel), str) or \
            not re.fullmatch(r"\$\{oc\.env:[^{}]+\}", read):
        return ""
    what = kind[1].replace("finite ", "")
    text = values[rel].strip()
    parses = {"an integer": r"[-+]?\d+", "a number": r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?",
              "true or false": r"(?i:true|false)"}[what]
    name = read[len("${oc.env:"):-1].split(",")[0]
    if not re.fullmatch(parses, text):   # (its value is not quoted: it may be a secret)
        return f"; the environment variable {name} holds text that is not {what}"
    return f"; the environment gives text: write ${{oc.decode:{read}}} to read it as {what}"


def _no_literal_credential(config: dict, mine: dict[str, str], where: str) -> None:
    """Refuse a secret written as a value (``api_key: sk-...``), without echoing it."""
    found = literal_credentials(config, mine)
    if found:
        key = f"{where}.{found[0]}"
        name = found[0].rsplit(".", 1)[-1].upper()
        raise ConfigError(f"{key}: a credential written as a value; it would be saved in the "
                          "run record and the cache, and be part of the cache key",
                          hint=f"read it from the environment: {found[0].rsplit('.', 1)[-1]}: "
                               f"${{oc.env:{name}}}, and export {name} before rag run",
                          key=key)


def _shared_step(name: str, body, shape: str, shared: dict | None) -> tuple[Step, StageSpec]:
    """``_step_memo`` of a step body; with ``shared`` (one sweep's), a body object that several
    members hold is serialised once (the entry keeps the body alive, so its id stays its own)."""
    if shared is None:
        return _step_memo(name, canonical_json(body), shape)
    slot = (id(body), name, shape)
    hit = shared.get(slot)
    if hit is None or hit[0] is not body:
        hit = shared[slot] = (body, *_step_memo(name, canonical_json(body), shape))
    return hit[1], hit[2]


def _import_stages(imports: list[str], names: list[str], recipe: Path) -> None:
    """The recipe's stage modules. One that does not import (a syntax error, a bad ``@stage``
    definition, a failing top-level statement) is a recipe error: exit 2, at its file:line."""
    try:  # only the packages these stage names need
        load_stages(imports, names=names, project=str(project_dir(Path(recipe).resolve())))
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - anything a module raises while being imported
        raise stage_import_error(e) from (None if isinstance(e, SyntaxError) else e)


def stage_import_error(e: Exception) -> ConfigError:
    """The error for a stage module that failed to import, at the module's own file:line (not
    Python's or a library's): a syntax error, a wrong ``@stage``, or what its code raised."""
    if isinstance(e, SyntaxError):
        return ConfigError(f"{e.filename}:{e.lineno}: syntax error in a stage module: {e.msg}",
                           hint="fix the module; `python -m py_compile FILE` shows the same")
    if isinstance(e, StageDefinitionError):  # a wrong @stage: at the decorated function's line
        where = f"{e.file}:{e.line}: " if e.file else ""
        return ConfigError(f"{where}{e}", hint="fix the @stage definition there "
                                               "(docs/writing-stages.md)")
    libraries = tuple(sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib"))
    every = [f for f in traceback.extract_tb(e.__traceback__)
             if "/orchestrator/" not in f.filename and not f.filename.startswith("<")
             and "importlib" not in f.filename]
    frames = [f for f in every if not f.filename.startswith(libraries)] or every
    # the deepest of the stage modules' own frames (not Python's or a library's): a package
    # __init__ that imports the failing module is the first frame, not the line at fault
    where = f"{frames[-1].filename}:{frames[-1].lineno}: " if frames else ""
    if isinstance(e, ModuleNotFoundError) and e.name:   # what the module imports is missing
        return ConfigError(f"{where}a stage module imports '{e.name}', which is not installed",
                           hint=f"pip install the package that provides "
                                f"'{e.name.split('.')[0]}', in the environment rag runs in")
    return ConfigError(f"{where}cannot import a stage module: {type(e).__name__}: {e}",
                       hint="RAGLINE_FULL_ERROR=1 shows the traceback")


def _build_dag(recipe: Path, cfg: dict, secrets: dict[str, str], shared: dict | None) -> Dag:
    from orchestrator.settings import check_settings  # pydantic: paid only when a DAG is built

    cfg = expand_repeats(cfg)
    settings = check_settings(cfg.get("ragline") or {})
    steps_cfg = cfg.get("steps")
    if not isinstance(steps_cfg, dict) or not steps_cfg:
        raise ConfigError(f"{recipe}: no 'steps' mapping; a recipe names its steps under steps:",
                          hint="see conf/ for examples")
    # `steps.X: null` (a recipe variant, or steps.X=null on the command line) removes step X
    removed = sorted(n for n, b in steps_cfg.items() if b is None)
    steps_cfg = {n: b for n, b in steps_cfg.items() if b is not None}
    for section, names in (("steps", steps_cfg), ("sources", cfg.get("sources") or {})):
        for name in names:
            if not re.fullmatch(r"[A-Za-z_][\w\-]*", str(name)):   # 'a.b' could never be wired
                raise ConfigError(f"{section}.{name}: '{name}' cannot be wired as a name (use "
                                  "letters, digits, _ and -; a '.' reads as STEP.OUTPUT)",
                                  hint="rename it, e.g. " + re.sub(r"[^\w\-]", "_", str(name)),
                                  key=f"{section}.{name}")
    _import_stages(settings.get("imports") or [],
                   sorted({str(b["stage"]) for b in steps_cfg.values() if isinstance(b, dict) and "stage" in b}),
                   recipe)
    sources = {n: _source_path(n, v) for n, v in (cfg.get("sources") or {}).items()}
    clash = set(sources) & set(steps_cfg)
    if clash:
        raise ConfigError(f"'{sorted(clash)[0]}' is both a source and a step; rename one",
                          key=f"sources.{sorted(clash)[0]}")
    steps: dict[str, Step] = {}
    specs: dict[str, StageSpec] = {}
    shape = canonical_json([{n: b.get("stage") if isinstance(b, dict) else None for n, b in steps_cfg.items()},
                            sources, secrets, settings.get("executor"), removed,
                            str(Path(recipe).resolve()), str(Path.cwd())])
    for name, body in steps_cfg.items():
        steps[name], specs[name] = _shared_step(name, body, shape, shared)
    for step in steps.values():  # type-check every edge from a step
        for iname, wire in step.inputs.items():
            _check_edge(step, iname, wire, specs)
    order = _toposort(steps, recipe)
    return Dag(recipe, {n: steps[n] for n in order}, sources, settings)


def _check_edge(step: Step, iname: str, wire: Wire, specs: dict[str, StageSpec]) -> None:
    consumer = specs[step.name].inputs[iname].type
    where = f"steps.{step.name}.inputs.{iname}"
    if wire.output is None:
        if consumer.kind not in ("file", "dir"):
            raise ConfigError(f"{where}: source '{wire.node}' is a path, but stage "
                              f"'{step.stage.name}' expects a {consumer.__name__} table here",
                              hint="read the file with a step whose stage takes it as a File input "
                                   "(`rag stages` lists each stage's inputs) and wire this input to "
                                   "that step's output", key=where)
        return
    producer = specs[wire.node].outputs[wire.output]
    problems = edge_problems(consumer, producer)
    if problems:
        fits = [n if len(s.outputs) == 1 else f"{n}.{o}" for n, s in specs.items()
                for o, t in s.outputs.items() if issubclass(t, consumer) and n != step.name]
        raise ConfigError(f"{where}: '{wire}' does not fit {consumer.__name__}"
                          + (f" (it is {producer.__name__})" if producer.kind == consumer.kind else "")
                          + f": {problems[0]}"
                          + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                          hint=(f"a {consumer.__name__} is a file: wire a SOURCE (a name under "
                                "sources: with its path)" if consumer.kind == "file" else
                                f"wire an output of type {consumer.__name__}"
                                + (f": {', '.join(fits)}" if fits else "; no step here writes one"))
                               + f"; `rag stages {step.stage.name}` says what each input takes",
                          key=where)


def _not_an_input(spec: StageSpec, values: dict, where: str) -> None:
    """A step key that names one of its stage's inputs (``predictions: infer`` beside ``stage:``)
    belongs under ``inputs:``; an unknown-key error would not say so."""
    fields = {f.name for f in dataclasses.fields(spec.config_cls)} if spec.config_cls else set()
    for key, value in values.items():
        if key in spec.inputs and key not in fields:
            raise ConfigError(f"{where}.{key}: '{key}' is an input of stage '{spec.name}', not a "
                              "config key", hint=f"write it under inputs: {where}: {{inputs: "
                                                 f"{{{key}: {value}}}}}", key=f"{where}.{key}")


def _stage(name, where: str) -> StageSpec:
    try:
        return get_stage(str(name), where)
    except ConfigError as e:
        e.key = e.key or where
        raise


def _wire(ref: str, steps_cfg: dict, sources: dict, where: str) -> Wire:
    node, _, output = ref.partition(".")
    if node in sources and not output:
        return Wire(node, None)
    if node not in steps_cfg:
        raise ConfigError(f"{where}: '{ref}' names no step or source"
                          f"{did_you_mean(node, list(steps_cfg) + list(sources))}",
                          hint="wire a step (STEP, or STEP.OUTPUT when it has several outputs) or "
                               "a source by its bare name (NAME, not sources.NAME); sources here: "
                               f"{', '.join(sources) or 'none'}", key=where)
    body = steps_cfg[node]
    spec = _stage(body.get("stage") if isinstance(body, dict) else None, f"steps.{node}.stage")
    if not output:
        if len(spec.outputs) != 1:
            raise ConfigError(f"{where}: step '{node}' has several outputs; name one: "
                              + ", ".join(f"{node}.{o}" for o in spec.outputs), key=where)
        output = next(iter(spec.outputs))
    if output not in spec.outputs:
        raise ConfigError(f"{where}: step '{node}' has no output '{output}'"
                          f"{did_you_mean(output, spec.outputs)}",
                          hint=f"its outputs are: {', '.join(spec.outputs)}", key=where)
    return Wire(node, output)


def _toposort(steps: dict[str, Step], recipe: Path) -> list[str]:
    """Kahn's algorithm, stable in recipe order; a cycle is reported with its path."""
    deps = {n: {w.node for w in s.inputs.values() if w.node in steps} for n, s in steps.items()}
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(steps):
        ready = [n for n in steps if n not in done and deps[n] <= done]
        if not ready:
            cycle = _find_cycle({n: d for n, d in deps.items() if n not in done})[:-1]
            # begun at its first step in recipe order, which reads a later one: likely the wire
            # to fix, and the one whose file:line (or override) place() puts in front
            at = min(range(len(cycle)), key=lambda i: list(steps).index(cycle[i]))
            cycle = cycle[at:] + cycle[:at] + [cycle[at]]
            first, then = cycle[0], cycle[1]
            iname = next(i for i, w in steps[first].inputs.items() if w.node == then)
            key = f"steps.{first}.inputs.{iname}"
            raise ConfigError(f"{key}: the steps form a cycle: {' -> '.join(cycle)} (each reads "
                              "the next)", key=key,
                              hint=f"a step cannot read its own output, even through other "
                                   f"steps: wire {key} to a step that does not read {first}")
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
