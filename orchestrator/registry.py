"""The ``@stage`` decorator and the registry of stages.

A stage is a plain function whose signature is its contract (see docs/writing-stages.md):
artifact-typed parameters are inputs, one dataclass parameter is the config, ``ctx`` is the
context, and the return annotation is the output (an artifact type or a NamedTuple of them).
The decorator checks all of that at import time and says how to fix what is wrong.

Stages are found through the ``ragline.stages`` entry-point group (the ``stages`` package of this
distribution registers itself there) and through a recipe's ``ragline.imports`` list.

Stage packages and names: an entry-point package holds one subpackage per recipe plus
``common``. A stage defined in ``<package>.common`` has a plain name (``retrieve``); a stage
defined in ``<package>.<recipe>`` is named ``<recipe>.<name>`` (``dynamicrag.label``), which
the decorator checks. So a stage name says which subpackage defines it, and the registry imports
only the subpackages a recipe's stage names need (:func:`load_stages`, :func:`get_stage`).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import inspect
import os
import pkgutil
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from orchestrator.artifacts import Artifact, Table
from orchestrator.errors import ConfigError, did_you_mean

REGISTRY: dict[str, "StageSpec"] = {}


class StageDefinitionError(TypeError):
    """A ``@stage`` function whose signature or decorator is wrong: raised when its module is
    imported, naming the stage, its function and what to write instead. ``file`` and ``line``
    are where the function is defined (its first decorator's line), for a ``file:line:`` prefix."""

    file: str | None = None
    line: int | None = None


SEMANTIC = "ragline_semantic"
RECIPE_PATH = "ragline_recipe_path"
NEUTRAL = "ragline_neutral"


def nonsemantic(default: Any) -> Any:
    """A config field that cannot change a stage's output (batch size, workers, log interval).

    It is left out of the cache key, so changing it never recomputes anything.
    """
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata={SEMANTIC: False})
    return field(default=default, metadata={SEMANTIC: False})


def added(default: Any) -> Any:
    """A field added to a stage that may already have results in users' caches, whose
    ``default`` keeps what the stage did before the field existed.

    While the field holds ``default`` it stays out of the cache key, so those results stay
    valid after an upgrade (hours of retrieval are not redone for a new option nobody set);
    any other value enters the key as usual. A later change of what the default does is a
    change of the stage: bump its ``version``.
    """
    if isinstance(default, (list, dict, set)):
        return field(default_factory=lambda: type(default)(default), metadata={NEUTRAL: default})
    return field(default=default, metadata={NEUTRAL: default})


def recipe_path(default: str | None = None) -> Any:
    """A config field naming a file that steers how a stage runs but not what it outputs (a
    DeepSpeed config; a model config for ``rag plan``'s memory estimate).

    Left out of the cache key like ``nonsemantic``. A relative value is looked up as sources
    are, in the current directory and then in the recipe's project directory, and the stage
    gets it as an absolute path, so the recipe runs from any directory. A file whose content
    changes the output belongs in ``sources`` and ``inputs`` instead, where it is hashed.
    """
    return field(default=default, metadata={SEMANTIC: False, RECIPE_PATH: True})


@dataclass
class InputSpec:
    name: str
    type: type[Artifact]
    optional: bool


@dataclass
class StageSpec:
    name: str
    version: int
    fn: Callable
    inputs: dict[str, InputSpec]
    outputs: dict[str, type[Artifact]]
    config_cls: type | None
    config_param: str | None
    ctx_param: str | None
    shard_by: str | None
    multi_output: bool
    doc: str = ""
    multi_gpu: str = "ranks"

    @property
    def module(self) -> str:
        return self.fn.__module__

    def config_fields(self) -> dict[str, dataclasses.Field]:
        return {f.name: f for f in dataclasses.fields(self.config_cls)} if self.config_cls else {}

    def nonsemantic_fields(self) -> set[str]:
        return {n for n, f in self.config_fields().items() if f.metadata.get(SEMANTIC) is False}


def _artifact_type(annotation) -> tuple[type[Artifact] | None, bool]:
    """(artifact class, optional?) of an annotation like ``Questions`` or ``File | None``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            cls, _ = _artifact_type(args[0])
            return cls, True
        return None, False
    if inspect.isclass(annotation) and issubclass(annotation, Artifact):
        return annotation, False
    return None, False


def _type_name(annotation) -> str:
    """An annotation as a reader writes it: ``pyarrow.Table``, ``list[dict]``, ``C``.

    >>> import pathlib
    >>> _type_name(pathlib.Path), _type_name(list[dict]), _type_name(None)
    ('pathlib.Path', 'list[dict]', 'None')
    """
    if annotation is None or annotation is type(None):
        return "None"
    if inspect.isclass(annotation) and typing.get_origin(annotation) is None:
        module = _public_module(annotation)
        return (annotation.__qualname__ if module in ("builtins", "__main__")
                else f"{module}.{annotation.__qualname__}")
    return str(annotation).replace("typing.", "")


def _public_module(cls) -> str:
    """The shortest prefix of ``cls.__module__`` that offers ``cls`` under its name, as a reader
    imports it: ``pathlib`` for ``pathlib._local.Path`` (Python 3.13).

    >>> import json
    >>> json.JSONDecodeError.__module__, _public_module(json.JSONDecodeError)
    ('json.decoder', 'json')
    """
    parts = cls.__module__.split(".")
    for n in range(1, len(parts)):
        module = sys.modules.get(".".join(parts[:n]))
        if module is not None and getattr(module, cls.__qualname__, None) is cls:
            return module.__name__
    return cls.__module__


def _what_instead(annotation, role: str) -> str:
    """For an annotation that is not an artifact type, the artifact type to declare instead:
    a stage declares the type and gets (``role="input"``) a handle or returns (``"output"``)
    plain values: rows, a dict, a path."""
    name = _type_name(annotation).lower()
    origin = typing.get_origin(annotation) or annotation
    if "pyarrow" in name or origin in (list, tuple):
        return ("declare a Table subclass with a pyarrow schema (class Lengths(Table): schema = "
                "pa.schema([...])) or use one of stages.schemas (Passages, Questions, ...); "
                + ("the stage gets a handle: .read() is a pyarrow.Table, .rows() a list of dicts"
                   if role == "input" else "the function still returns list[dict] or a "
                                           "pyarrow.Table"))
    if origin is dict:
        return ("a dict of metrics is a Metrics subclass (class Scores(Metrics): ...)"
                + ("; the stage gets a handle: .read() is the dict" if role == "input"
                   else "; the function still returns the dict"))
    if "path" in name or origin is str:
        return ("a directory is a Directory subclass (class Notes(Directory): ...), one recipe "
                "file is File" + ("; the stage gets a handle with .path" if role == "input"
                                  else "; the function still returns the directory's path"))
    return "see docs/writing-stages.md (Inputs, Outputs)"


def _check_schema(cls: type, where: str, role: str) -> None:
    """A Table type must declare ``schema = pa.schema([...])``: without one its rows cannot be
    written (an output) or checked (an input). A subclass that sets ``schema = None`` itself
    opts out (an untyped table)."""
    if not issubclass(cls, Table):
        return
    declared = any("schema" in vars(c) for c in cls.__mro__
                   if c is not Table and issubclass(c, Table))
    schema = cls.schema
    pa = sys.modules.get("pyarrow")  # a schema can only be a pyarrow.Schema if pyarrow is loaded
    if schema is None and declared:
        return
    if schema is None and cls is Table:
        raise StageDefinitionError(
            f"{where}: {role} is the base class Table, which has no schema; declare "
            "a subclass: class Lengths(Table): schema = pa.schema([(\"id\", "
            "pa.string()), ...]) (or use one of stages.schemas)")
    if schema is None:
        raise StageDefinitionError(
            f"{where}: {role} {cls.__name__} declares no schema; add schema = "
            f"pa.schema([(\"id\", pa.string()), ...]) to class {cls.__name__}")
    if pa is None or not isinstance(schema, pa.Schema):
        raise StageDefinitionError(
            f"{where}: {role} {cls.__name__}.schema is a {type(schema).__name__}, "
            "not a pyarrow.Schema; write schema = pa.schema([(\"id\", pa.string()), "
            "...]) (pa.schema(...) around a list of (name, type) pairs)")


def _outputs(ret, where: str) -> tuple[dict[str, type[Artifact]], bool]:
    """({output name: artifact type}, is it a NamedTuple?) of a stage's return annotation."""
    single, _ = _artifact_type(ret) if ret is not None else (None, False)
    if single is not None:
        return {"out": single}, False
    if ret is None:
        raise StageDefinitionError(
            f"{where}: the return annotation must be an artifact type or a "
            "NamedTuple of artifact types, and there is none; add one to the def: "
            "-> Passages (a Table subclass, Directory, File or Metrics subclass)")
    if not (inspect.isclass(ret) and issubclass(ret, tuple) and hasattr(ret, "_fields")):
        raise StageDefinitionError(
            f"{where}: the return annotation must be an artifact type or a "
            f"NamedTuple of artifact types, got {_type_name(ret)}; "
            f"{_what_instead(ret, 'output')}")
    outputs = {}
    for fname, fann in typing.get_type_hints(ret).items():
        cls, _ = _artifact_type(fann)
        if cls is None:
            raise StageDefinitionError(
                f"{where}: output field '{fname}' of {ret.__name__} is not an "
                f"artifact type, got {_type_name(fann)}; every field of an output "
                f"NamedTuple is one output: {_what_instead(fann, 'output')}")
        outputs[fname] = cls
    return outputs, True


def _parameters(fn: Callable, hints: dict, where: str):
    """(inputs, config class, its parameter, the ctx parameter) of a stage function."""
    inputs: dict[str, InputSpec] = {}
    config_cls = config_param = ctx_param = None
    for pname, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            star = "*" if param.kind == param.VAR_POSITIONAL else "**"
            raise StageDefinitionError(
                f"{where}: '{star}{pname}': a stage takes named parameters only "
                "(each input, the config, ctx); remove it")
        ann = hints.get(pname)
        if ann is None:
            raise StageDefinitionError(
                f"{where}: parameter '{pname}' has no type annotation; annotate "
                "it with an artifact type, the config dataclass or StageContext")
        cls, optional = _artifact_type(ann)
        if cls is not None:
            if optional and param.default is not None:
                raise StageDefinitionError(
                    f"{where}: optional input '{pname}' needs '= None' "
                    f"({pname}: {cls.__name__} | None = None)")
            _check_schema(cls, where, f"input '{pname}'")
            inputs[pname] = InputSpec(pname, cls, optional)
        elif getattr(ann, "__name__", "") == "StageContext":
            ctx_param = pname
        elif dataclasses.is_dataclass(ann):
            if config_cls is not None:
                raise StageDefinitionError(
                    f"{where}: two config dataclasses ('{config_param}', "
                    f"'{pname}'); merge them into one")
            config_cls, config_param = ann, pname
        else:
            own_class = inspect.isclass(ann) and ann.__module__ == fn.__module__
            what = (f"a config class must be a dataclass: add @dataclass above class "
                    f"{ann.__name__}" if own_class else _what_instead(ann, "input"))
            raise StageDefinitionError(
                f"{where}: parameter '{pname}: {_type_name(ann)}' is neither an "
                f"artifact type, a config dataclass nor StageContext; {what}")
    return inputs, config_cls, config_param, ctx_param


def _check_shard_by(shard_by: str | None, inputs: dict[str, InputSpec], where: str) -> None:
    """``shard_by`` names one of the stage's Table inputs."""
    spec = inputs.get(shard_by) if shard_by is not None else None
    if shard_by is None or (spec is not None and issubclass(spec.type, Table)):
        return
    tables = sorted(n for n, i in inputs.items() if issubclass(i.type, Table))
    what = (f"'{shard_by}' is a {spec.type.__name__}, not a Table" if spec is not None
            else f"the function has no parameter '{shard_by}'{did_you_mean(shard_by, tables)}")
    raise StageDefinitionError(f"{where}: shard_by='{shard_by}' must name a Table input; {what}; "
                               f"its Table inputs are: {', '.join(tables) or 'none'}")


def _check_defaults(config_cls: type | None, where: str) -> None:
    """Every config field has a default (``MISSING`` for one the recipe must set)."""
    for f in dataclasses.fields(config_cls) if config_cls is not None else ():
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise StageDefinitionError(
                f"{where}: config field '{f.name}' of {config_cls.__name__} needs a default "
                f"({f.name}: {_type_name(f.type)} = ...; or = MISSING, from omegaconf import "
                "MISSING, for a value the recipe must set)")


MULTI_GPU = ("ranks", "one_process")


def stage(name: str, *, version: int = 1, shard_by: str | None = None,
          multi_gpu: str = "ranks"):
    """Register a function as the stage ``name``.

    Args:
        name: the name recipes use in ``stage:``.
        version: bump it by hand when the stage's semantics change; it is part of the cache key.
        shard_by: the table input split into contiguous row ranges when a step sets ``shards: N``.
        multi_gpu: how a step with ``gpus: N > 1`` runs: ``ranks`` (N processes, one GPU each,
            data parallel: training) or ``one_process`` (one process that sees all N GPUs: an
            inference engine with tensor parallelism).
    """

    def wrap(fn: Callable) -> Callable:
        try:
            return _register(fn)
        except StageDefinitionError as e:
            code = getattr(fn, "__code__", None)
            e.file, e.line = (code.co_filename, code.co_firstlineno) if code else (None, None)
            raise

    def _register(fn: Callable) -> Callable:
        where = f"stage '{name}' ({fn.__module__}.{fn.__qualname__})"
        if not isinstance(version, int):
            raise StageDefinitionError(f"{where}: version must be an int, got {version!r}")
        if multi_gpu not in MULTI_GPU:
            raise StageDefinitionError(
                f"{where}: multi_gpu must be one of {MULTI_GPU}, got {multi_gpu!r}")
        try:
            hints = typing.get_type_hints(fn)
        except Exception as e:  # noqa: BLE001 - an unresolvable annotation is a definition error
            raise StageDefinitionError(
                f"{where}: cannot resolve annotations ({e}); import the types at "
                "module level") from None
        inputs, config_cls, config_param, ctx_param = _parameters(fn, hints, where)
        outputs, multi = _outputs(hints.get("return"), where)
        for oname, ocls in outputs.items():
            _check_schema(ocls, where, "the output" if not multi else f"output '{oname}'")
        _check_shard_by(shard_by, inputs, where)
        _check_defaults(config_cls, where)
        _check_name(name, fn.__module__, where)
        taken = REGISTRY.get(name)
        if taken is not None and (taken.module, taken.fn.__qualname__) != (fn.__module__,
                                                                             fn.__qualname__):
            raise StageDefinitionError(
                f"{where}: the name '{name}' is already registered by "
                f"{taken.module}.{taken.fn.__qualname__}; give one of them another "
                "name (a stage of your own: a prefix of your own, e.g. "
                f"'my.{name.rsplit('.', 1)[-1]}'; `rag stages` lists the names taken)")
        REGISTRY[name] = StageSpec(name, version, fn, inputs, outputs, config_cls, config_param,
                                   ctx_param, shard_by, multi, inspect.getdoc(fn) or "", multi_gpu)
        fn.stage_spec = REGISTRY[name]
        return fn

    return wrap


_loaded: set[str] = set()
_packages: set[str] = set()
_imports: list[str] = []   # the last recipe's ragline.imports, for the unknown-stage hint
_project: list[str] = []   # the last recipe's project folder, for the not-found hint


@functools.cache
def stage_roots() -> tuple[str, ...]:
    """The packages named by the ``ragline.stages`` entry points (``stages`` for this project)."""
    from importlib.metadata import entry_points

    return tuple(sorted({ep.value for ep in entry_points(group="ragline.stages")}))


def package_of(name: str) -> str:
    """The stage subpackage a stage name lives in: ``common`` for a plain name, else its prefix.

    >>> package_of("retrieve"), package_of("dynamicrag.label")
    ('common', 'dynamicrag')
    """
    return name.split(".", 1)[0] if "." in name else "common"


def _check_name(name: str, module: str, where: str) -> None:
    """A stage in ``<root>.<recipe>`` must be named ``<recipe>.<name>``; one in ``<root>.common``
    must have a plain name. Modules outside the entry-point packages may use any name."""
    parts = module.split(".")
    if len(parts) < 3 or parts[0] not in stage_roots():
        return
    package = parts[1]
    if package == "common" and "." in name:
        raise StageDefinitionError(
            f"{where}: a stage in {parts[0]}.common has a plain name; rename it "
            f"'{name.split('.', 1)[1]}' or move it to {parts[0]}/{package_of(name)}/")
    if package != "common" and package_of(name) != package:
        raise StageDefinitionError(
            f"{where}: a stage in {parts[0]}.{package} must be named "
            f"'{package}.<name>'; rename it '{package}.{name.rsplit('.', 1)[-1]}'")


def _dotted(module: str) -> str:
    """A module name as the dotted name it was likely meant as (``my/stages.py``: ``my.stages``)."""
    return module.removesuffix(".py").replace("/", ".").replace("\\", ".").strip(".")


def _import(module: str) -> None:
    if module in _loaded:
        return
    parts = _dotted(module).split(".")
    if module.startswith(".") or not all(part.isidentifier() for part in parts):
        # (a file name with a valid dotted form is _not_found's case, below)
        raise ConfigError(f"cannot import stage module '{module}': not a module name",
                          hint="write it as an import statement names it, from the folder you "
                               "run rag in: my_stages, or my_project.stages")
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        if parts[0] in stage_roots():
            raise ConfigError(f"cannot import stage module '{module}': '{parts[0]}' is the name "
                              f"of the installed stage package ({e})",
                              hint=f"rename your module or folder '{parts[0]}' (my_{parts[0]}, "
                                   f"say) and ragline.imports with it") from None
        missing = _not_found(module, e)
        if missing is None:   # the module imports a package that is not installed: at its line
            raise
        raise missing from None
    _loaded.add(module)
    _packages.add(module.split(".")[0])


def _not_found(module: str, e: ModuleNotFoundError) -> ConfigError | None:
    """The error for a stage module that is not found: a path or ``.py`` name written for a
    module name, a typo among the package's modules, or a package not on the path; None when
    the module was found and what it imports was not (``dag.stage_import_error`` names the
    module's line)."""
    top = module.split(".")[0]
    dotted = _dotted(module)
    if dotted != module:
        return ConfigError(f"cannot import stage module '{module}': write the module's dotted "
                           f"name, '{dotted}', not a file name",
                           hint=f"ragline.imports: [{dotted}] (run rag from the folder that "
                                f"holds {top.split('/')[0]}/)")
    parent = module.rpartition(".")[0]
    if e.name == module and parent:   # the package imports; the module is not in it
        siblings = [f"{parent}.{m.name}" for m in
                    pkgutil.iter_modules(getattr(sys.modules.get(parent), "__path__", None) or [])]
        return ConfigError(f"cannot import stage module '{module}': {parent} has no module "
                           f"'{module.rpartition('.')[2]}'{did_you_mean(module, siblings)}",
                           hint=f"its modules are: {', '.join(sorted(siblings)) or 'none'}")
    if e.name == top:
        folders = list(dict.fromkeys([os.getcwd(), *_project[:1]]))
        here = [p.name for f in folders for p in Path(f).iterdir() if (p / "__init__.py").is_file()]
        return ConfigError(
            f"cannot import stage module '{module}': {e}{did_you_mean(top, here)}",
            hint=f"'{top}' is looked up in the current directory and the recipe's project folder "
                 f"({' and '.join(folders)}): put {top}/ there, or pip install it")
    if importlib.util.find_spec(top) is not None:
        return None
    return ConfigError(f"cannot import stage module '{module}': {e}",
                       hint="check ragline.imports in the recipe, or pip install the package "
                            "that provides it")


def _import_packages_for(name: str) -> None:
    """Import the stage subpackage ``name`` needs from every entry-point package that has it;
    an entry-point module without subpackages (a flat plugin) is imported whole."""
    for root in stage_roots():
        _import(root)
        if not hasattr(sys.modules[root], "__path__"):
            continue
        sub = f"{root}.{package_of(name)}"
        if sub in _loaded or importlib.util.find_spec(sub) is not None:
            _import(sub)


def _import_all_packages() -> None:
    """Import every stage subpackage of every entry-point package (``rag stages``)."""
    for root in stage_roots():
        _import(root)
        path = getattr(sys.modules[root], "__path__", None)
        for info in pkgutil.iter_modules(path or []):
            if info.ispkg:
                _import(f"{root}.{info.name}")


def search_path(path: list[str], cwd: str, project: str | None) -> list[str]:
    """``sys.path`` for a recipe's own modules: the current directory (first, unless it is on
    the path already), then the recipe's project folder right after it, then the rest. The
    project folder never comes before the current directory: with ``PYTHONPATH`` naming the
    current directory, it went ahead of it, and a ``stages.py`` there hid the shipped package.

    >>> search_path(["/venv/bin", "/repo", "/site"], "/repo", "/repo/toy")
    ['/venv/bin', '/repo', '/repo/toy', '/site']
    >>> search_path(["/venv/bin", "/site"], "/repo", "/repo/toy")
    ['/repo', '/repo/toy', '/venv/bin', '/site']
    >>> search_path(["/repo", "/site"], "/repo", None)
    ['/repo', '/site']
    """
    path = path if cwd in path else [cwd, *path]
    if project is None or project in path:
        return list(path)
    at = path.index(cwd) + 1
    return [*path[:at], project, *path[at:]]


def load_stages(imports: list[str] | None = None, names: list[str] | None = None,
                project: str | None = None) -> dict[str, StageSpec]:
    """Import a recipe's stage modules and return the registry.

    ``imports`` (a recipe's ``ragline.imports``: its own modules) come first, looked up in the
    current directory, then in the recipe's ``project`` folder (as its sources are), and last on
    the usual path; then, for each stage name in ``names`` not yet registered, the subpackage
    that defines it (:func:`package_of`). Without ``names`` every stage package is imported.
    """
    if imports:   # a recipe's own stage modules, like a Hydra app's
        for root in stage_roots():   # first: a stages.py beside the recipe must not hide them
            importlib.import_module(root)
        sys.path[:] = search_path(sys.path, os.getcwd(), project)
    if imports and project:
        _project[:] = [project]
    _imports[:] = imports or []
    for module in imports or []:
        try:
            _import(module)
        except ConfigError as e:
            e.key = e.key or "ragline.imports"  # the DAG builder puts the recipe's file:line first
            raise
    for name in names or []:
        _check_not_shadowing(name)
    if names is None:
        _import_all_packages()
    for name in names or []:
        if name not in REGISTRY:
            _import_packages_for(name)
    return REGISTRY


def _check_not_shadowing(name: str) -> None:
    """A recipe's own stage may not take a shipped stage's name: which of the two a recipe got
    would depend on which other stages it uses (the shipped package is imported only for them)."""
    spec = REGISTRY.get(name)
    if spec is None or spec.module.split(".")[0] in stage_roots():
        return
    shipped = _shipped_names(package_of(name)).get(name)
    if shipped:
        raise ConfigError(f"stage '{name}' of {spec.module} has the name of the shipped stage in "
                          f"{shipped}; rename yours, e.g. @stage(\"my.{name.rsplit('.', 1)[-1]}\")",
                          hint="a prefix of your own never collides; `rag stages` lists the "
                               "names taken", key="ragline.imports")


@functools.cache
def _shipped_names(package: str) -> dict[str, str]:
    """{stage name: module file} of the ``@stage("...")`` lines in each entry-point package's
    subpackage ``package``, read as text: nothing is imported but the root packages."""
    import re

    out: dict[str, str] = {}
    for root in stage_roots():
        try:
            found = importlib.util.find_spec(f"{root}.{package}")
        except (ImportError, ValueError):
            continue
        for folder in (found.submodule_search_locations or []) if found else []:
            for path in sorted(Path(folder).glob("*.py")):
                try:
                    text = path.read_text()
                except (OSError, UnicodeDecodeError):
                    continue
                for m in re.finditer(r"^\s*@stage\(\s*[\"']([^\"']+)[\"']", text, re.M):
                    out.setdefault(m.group(1), f"{root}/{package}/{path.name}")
    return out


def imported_module_files() -> list[str]:
    """The files of every loaded module in the packages the registry imported stages from (the
    stage modules, their formula modules, ``stages.lib`` modules they import), sorted."""
    out = []
    for name, mod in sorted(sys.modules.items()):
        path = getattr(mod, "__file__", None)
        if path and name.split(".")[0] in _packages:
            out.append(path)
    return out


def get_stage(name: str, where: str) -> StageSpec:
    """The registered stage ``name``, importing its package first if needed."""
    if name not in REGISTRY:
        _import_packages_for(name)
    spec = REGISTRY.get(name)
    if spec is None:
        _import_all_packages()  # so the suggestion can name any stage
        hint = ("`rag stages` lists the registered stages by package; a stage from a recipe's "
                "own module needs ragline.imports in the recipe (rag stages --import MODULE)")
        empty = _registers_nothing(_imports)
        nearby = None if empty else _defined_nearby(name)
        if nearby:
            hint = (f"{nearby[0]} defines it: add its module to the recipe, ragline: {{imports: "
                    f"[{nearby[1]}]}}")
        if empty:
            found = _defined_in(empty, name)
            hint = (f"ragline.imports: '{empty}' registers no stage (a package imports its modules "
                    "only if its __init__.py does); "
                    + (f"list {found}, which defines '{name}'" if found else
                       "list the module that defines it") +
                    f", or end {empty.replace('.', '/')}/__init__.py with: from stages import "
                    "import_modules; MODULES = import_modules(__name__, __path__)")
        raise ConfigError(f"{where}: unknown stage '{name}'{_suggest(name)}", hint=hint)
    return spec


def _registers_nothing(imports: list[str]) -> str | None:
    """The first of a recipe's imports that registered no stage (a package whose
    ``__init__.py`` imports none of its modules), or None."""
    modules = {spec.module for spec in REGISTRY.values()}
    for m in imports:
        if not any(x == m or x.startswith(m + ".") for x in modules):
            return m
    return None


def _defined_in(package: str, name: str) -> str | None:
    """The module of ``package`` whose source has ``@stage("name"``, or None."""
    path = getattr(sys.modules.get(package), "__path__", None)
    for info in pkgutil.iter_modules(path or []):
        try:
            text = (Path(info.module_finder.path) / f"{info.name}.py").read_text()
        except (OSError, AttributeError, UnicodeDecodeError):
            continue
        if f'@stage("{name}"' in text or f"@stage('{name}'" in text:
            return f"{package}.{info.name}"
    return None


def _defined_nearby(name: str, limit: int = 400) -> tuple[str, str] | None:
    """(file, module) of a ``.py`` file in the current directory or one folder down whose source
    has ``@stage("name"``: a recipe's own stage that ragline.imports does not list. At most
    ``limit`` files are read; None when none is found."""
    here = Path.cwd()
    files = [*sorted(here.glob("*.py")), *sorted(here.glob("*/*.py"))][:limit]
    for path in files:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        if f'@stage("{name}"' in text or f"@stage('{name}'" in text:
            rel = path.relative_to(here).with_suffix("")
            return str(path.relative_to(here)), ".".join(rel.parts)
    return None


def _suggest(name: str) -> str:
    """" (did you mean 'dynamicrag.label'?)" for a recipe stage called by its bare name, else the
    closest registered names."""
    prefixed = sorted(n for n in REGISTRY if n.rsplit(".", 1)[-1] == name)
    if prefixed:
        return f" (did you mean {' or '.join(repr(n) for n in prefixed)}?)"
    return did_you_mean(name, REGISTRY)
