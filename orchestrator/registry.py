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
from typing import Any, Callable

from orchestrator.artifacts import Artifact, Table
from orchestrator.errors import ConfigError, did_you_mean

REGISTRY: dict[str, "StageSpec"] = {}
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


def _outputs(ret, where: str) -> tuple[dict[str, type[Artifact]], bool]:
    """({output name: artifact type}, is it a NamedTuple?) of a stage's return annotation."""
    single, _ = _artifact_type(ret) if ret is not None else (None, False)
    if single is not None:
        return {"out": single}, False
    if not (inspect.isclass(ret) and issubclass(ret, tuple) and hasattr(ret, "_fields")):
        raise TypeError(f"{where}: the return annotation must be an artifact type or a "
                        f"NamedTuple of artifact types, got {ret!r}")
    outputs = {}
    for fname, fann in typing.get_type_hints(ret).items():
        cls, _ = _artifact_type(fann)
        if cls is None:
            raise TypeError(f"{where}: output field '{fname}' of {ret.__name__} is not an "
                            "artifact type")
        outputs[fname] = cls
    return outputs, True


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
        where = f"stage '{name}' ({fn.__module__}.{fn.__qualname__})"
        if not isinstance(version, int):
            raise TypeError(f"{where}: version must be an int, got {version!r}")
        if multi_gpu not in MULTI_GPU:
            raise TypeError(f"{where}: multi_gpu must be one of {MULTI_GPU}, got {multi_gpu!r}")
        try:
            hints = typing.get_type_hints(fn)
        except Exception as e:  # noqa: BLE001 - an unresolvable annotation is a definition error
            raise TypeError(f"{where}: cannot resolve annotations ({e}); import the types at "
                            "module level") from None
        inputs: dict[str, InputSpec] = {}
        config_cls = config_param = ctx_param = None
        for pname, param in inspect.signature(fn).parameters.items():
            ann = hints.get(pname)
            if ann is None:
                raise TypeError(f"{where}: parameter '{pname}' has no type annotation; annotate "
                                "it with an artifact type, the config dataclass or StageContext")
            cls, optional = _artifact_type(ann)
            if cls is not None:
                if optional and param.default is not None:
                    raise TypeError(f"{where}: optional input '{pname}' needs '= None'")
                inputs[pname] = InputSpec(pname, cls, optional)
            elif getattr(ann, "__name__", "") == "StageContext":
                ctx_param = pname
            elif dataclasses.is_dataclass(ann):
                if config_cls is not None:
                    raise TypeError(f"{where}: two config dataclasses ('{config_param}', "
                                    f"'{pname}'); merge them into one")
                config_cls, config_param = ann, pname
            else:
                raise TypeError(f"{where}: parameter '{pname}: {ann}' is neither an artifact "
                                "type, a config dataclass nor StageContext")
        outputs, multi = _outputs(hints.get("return"), where)
        if shard_by is not None:
            spec = inputs.get(shard_by)
            if spec is None or not issubclass(spec.type, Table):
                raise TypeError(f"{where}: shard_by='{shard_by}' must name a Table input; inputs "
                                f"are {sorted(inputs)}")
        if config_cls is not None:
            for f in dataclasses.fields(config_cls):
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise TypeError(f"{where}: config field '{f.name}' needs a default (use "
                                    "omegaconf.MISSING for a value the recipe must set)")
        _check_name(name, fn.__module__, where)
        if name in REGISTRY and REGISTRY[name].fn.__qualname__ != fn.__qualname__:
            raise TypeError(f"{where}: the name '{name}' is already registered by "
                            f"{REGISTRY[name].module}")
        REGISTRY[name] = StageSpec(name, version, fn, inputs, outputs, config_cls, config_param,
                                   ctx_param, shard_by, multi, inspect.getdoc(fn) or "", multi_gpu)
        fn.stage_spec = REGISTRY[name]
        return fn

    return wrap


_loaded: set[str] = set()
_packages: set[str] = set()


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
        raise TypeError(f"{where}: a stage in {parts[0]}.common has a plain name; rename it "
                        f"'{name.split('.', 1)[1]}' or move it to {parts[0]}/{package_of(name)}/")
    if package != "common" and package_of(name) != package:
        raise TypeError(f"{where}: a stage in {parts[0]}.{package} must be named "
                        f"'{package}.<name>'; rename it '{package}.{name.rsplit('.', 1)[-1]}'")


def _import(module: str) -> None:
    if module in _loaded:
        return
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        top = module.split(".")[0]
        hint = (f"'{top}' is imported from the current directory ({os.getcwd()}): run rag from "
                f"the folder that holds {top}/ (the recipe's project), or pip install it"
                if e.name == top else "check ragline.imports in the recipe, or pip install the "
                                      "package that provides it")
        raise ConfigError(f"cannot import stage module '{module}': {e}", hint=hint) from None
    _loaded.add(module)
    _packages.add(module.split(".")[0])


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


def load_stages(imports: list[str] | None = None,
                names: list[str] | None = None) -> dict[str, StageSpec]:
    """Import a recipe's stage modules and return the registry.

    ``imports`` (a recipe's ``ragline.imports``: its own modules) come first; then, for each stage
    name in ``names`` not yet registered, the subpackage that defines it (:func:`package_of`).
    Without ``names`` every stage package is imported.
    """
    if imports and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # a recipe's own stage modules, like a Hydra app's
    for module in imports or []:
        _import(module)
    if names is None:
        _import_all_packages()
    for name in names or []:
        if name not in REGISTRY:
            _import_packages_for(name)
    return REGISTRY


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
        raise ConfigError(f"{where}: unknown stage '{name}'{_suggest(name)}",
                          hint="`rag stages` lists the registered stages by package; a stage "
                               "from a recipe's own module needs ragline.imports in the recipe "
                               "(rag stages --import MODULE)")
    return spec


def _suggest(name: str) -> str:
    """" (did you mean 'dynamicrag.label'?)" for a recipe stage called by its bare name, else the
    closest registered names."""
    prefixed = sorted(n for n in REGISTRY if n.rsplit(".", 1)[-1] == name)
    if prefixed:
        return f" (did you mean {' or '.join(repr(n) for n in prefixed)}?)"
    return did_you_mean(name, REGISTRY)
