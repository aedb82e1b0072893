"""The one speed layer: a command's composed and validated recipe, remembered on disk.

Composing with Hydra (~0.3 s), importing stage modules (~0.25 s) and pydantic (~0.1 s) would
make a no-op rerun cost about a second; with this layer it costs a few file stats. The rule:

    an entry, keyed by (recipe, overrides, -m, current directory), is used while every file it
    was built from (the .yaml and .json files under the recipe's config directories, but not
    the runs, cache and venv folders a recipe's own folder may hold; orchestrator/, the stage
    packages it imported, the ``__init__.py`` of hydra, omegaconf and pydantic, and the folder
    that holds those libraries, whose mtime moves whenever a package there is installed,
    upgraded or removed: a stage's plan notes may read an installed version, as the GPU memory
    estimate reads TRL's) has the size and mtime it had, and is never written when the config
    calls a resolver (``${oc.env:…}``, ``${now:…}``).

A damaged entry is a miss. Entries hold plain JSON (members, each distinct step once, DAGs as
lists of steps), so using one imports neither Hydra nor a stage module. Inside one process,
validation is memoised per distinct value (``functools.lru_cache`` in ``stage_config``, ``dag``
and ``settings``), and what is computed from an immutable object is kept on it (a Step's task
keys per input hashes, an Entry's output Refs); neither needs invalidation. A single run also
remembers its config.yaml text, so a no-op rerun imports no yaml.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import sys
from pathlib import Path

from orchestrator.atomic import write_text
from orchestrator.dag import Dag, StageInfo, Step, Wire, build_dags
from orchestrator.errors import ConfigError
from orchestrator.hashing import key_of
from orchestrator.locate import cache_root, config_dirs
from orchestrator.recipe import Member, compose
from orchestrator.where import place

LIBRARIES = ("hydra", "omegaconf", "pydantic")
FORMAT = 7   # 7: the libraries' folder is stamped


def _stamp(path: str) -> list:
    st = os.stat(path)
    return [path, st.st_size, st.st_mtime_ns]


CONFIG_SUFFIXES = (".yaml", ".json")   # Hydra's configs; DeepSpeed configs a field names


def _config_files(recipe: Path, skip: set[Path]) -> list[str]:
    """The config files under the recipe's config directories (its folder, the shipped
    ``conf/``), without hidden folders, virtual environments and the folders in ``skip``: a
    recipe kept beside its ``runs/`` would otherwise depend on every run record, which each
    run changes, and one beside a venv on thousands of files."""
    files = []
    for conf_dir in config_dirs(recipe):
        for root, dirs, names in os.walk(conf_dir):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__"
                             and Path(root, d).resolve() not in skip
                             and not os.path.exists(os.path.join(root, d, "pyvenv.cfg")))
            files += [os.path.join(root, n) for n in sorted(names)
                      if n.endswith(CONFIG_SUFFIXES)]
    return files


def _files(recipe: Path, skip: set[Path]) -> list[str]:
    """Every file an entry depends on (see the module docstring)."""
    from orchestrator import registry

    files = _config_files(recipe, skip)
    files += [str(p) for p in sorted(Path(__file__).parent.rglob("*.py"))]
    if hasattr(registry, "imported_module_files"):  # the registry's own list of what it imported
        files += registry.imported_module_files()
    packages = {spec.fn.__module__.split(".")[0] for spec in registry.REGISTRY.values()}
    for name, mod in sorted(sys.modules.items()):  # and every loaded module of a stage's package
        path = getattr(mod, "__file__", None)
        if path and name.split(".")[0] in packages:
            files.append(path)
    for lib in LIBRARIES:
        spec = importlib.util.find_spec(lib)
        if spec is not None and spec.origin:
            files.append(spec.origin)
            site = str(Path(spec.origin).parent.parent)   # site-packages, or where it lies
            if site not in files:
                files.append(site)
    return files


def _entry_path(state_dir: Path, recipe: Path, overrides: list[str], multirun: bool) -> Path:
    """The entry's file; the current directory is part of its key, since relative paths in the
    recipe (sources, ``recipe_path`` fields) are looked up from it."""
    return state_dir / f"{key_of([FORMAT, str(recipe), overrides, multirun, os.getcwd()])}.json"


def _read(path: Path, recipe: Path) -> tuple[list[Member], list[Dag]] | None:
    gc.disable()  # decoding a sweep's entry makes many small dicts: collecting them halves the speed
    try:
        data = json.loads(path.read_text())
        if not all(_stamp(f[0]) == f for f in data["files"]):
            return None
        members = [Member(recipe, m["overrides"], m["config"], i, text=m.get("text"), notes=m["notes"])
                   for i, m in enumerate(data["members"])]
        return members, _dags_from_json(recipe, data)
    except (OSError, ValueError, KeyError, TypeError):  # missing, stale or damaged: a miss
        return None
    finally:
        gc.enable()


def _write(path: Path, recipe: Path, members: list[Member], dags: list[Dag],
           skip: set[Path]) -> None:
    data = {"files": [_stamp(f) for f in _files(recipe, skip) if os.path.exists(f)],
            "members": [{"overrides": m.overrides, "config": m.config, "text": m.text, "notes": m.notes}
                        for m in members],
            **_dags_to_json(dags)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, json.dumps(data))
    except OSError:  # a read-only runs dir: nothing is remembered, nothing breaks
        pass


def load(recipe: Path, overrides: list[str], multirun: bool,
         state_dir: Path | None) -> tuple[list[Member], list[Dag]]:
    """(members, DAGs) of a command: remembered, or composed and validated (then remembered)."""
    path = _entry_path(state_dir, recipe, overrides, multirun) if state_dir is not None else None
    hit = _read(path, recipe) if path is not None else None
    if hit is not None:
        return hit
    try:
        members = compose(recipe, overrides, multirun)
    except ConfigError as e:  # e.g. an interpolation that does not resolve: at its key's line
        raise place(e, recipe, overrides) from None
    dags = build_dags(recipe, members)
    if len(members) == 1:  # a plain run's config.yaml text, so its no-op rerun never imports yaml
        from orchestrator.rundir import config_yaml

        members[0].text = config_yaml(members[0].config)
    if path is not None and not any(m.impure or m.secrets for m in members):
        runs = state_dir.parent.parent       # RUNS/.state/remembered
        cache = cache_root(runs)
        _write(path, recipe, members, dags, skip={runs.resolve(), cache.resolve()})
    return members, dags


def _step_to_json(s: Step) -> dict:
    return {"name": s.name, "stage": s.stage.name, "config": s.config, "semantic": s.semantic,
            "inputs": {k: [w.node, w.output] for k, w in s.inputs.items()}, "shards": s.shards,
            "gpus": s.gpus, "secrets": s.secrets, "notes": s.notes, "env": s.env}


def _dags_to_json(dags: list[Dag]) -> dict:
    """Every distinct step once (sweep members share the Step objects of untouched steps); each
    DAG lists its steps by index."""
    index: dict[int, int] = {}
    steps, stages, out = [], {}, []
    for dag in dags:
        for s in dag.steps.values():
            if id(s) not in index:
                index[id(s)] = len(steps)
                steps.append(_step_to_json(s))
                stages[s.stage.name] = s.stage.__dict__
        out.append({"steps": [index[id(s)] for s in dag.steps.values()],
                    "sources": dag.sources, "settings": dag.settings})
    return {"stages": stages, "steps": steps, "dags": out}


def _dags_from_json(recipe: Path, data: dict) -> list[Dag]:
    stages = {name: StageInfo(**info) for name, info in data["stages"].items()}
    steps = [Step(s["name"], stages[s["stage"]], s["config"], s["semantic"],
                  {k: Wire(*w) for k, w in s["inputs"].items()}, s["shards"], s["gpus"],
                  s["secrets"], s["notes"], s["env"]) for s in data["steps"]]
    return [Dag(recipe, {steps[i].name: steps[i] for i in d["steps"]}, d["sources"], d["settings"])
            for d in data["dags"]]
