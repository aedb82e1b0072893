"""Where a relative path in a recipe points: the current directory, the recipe's project, then
the shipped project (the checkout that holds the ``stages`` package and its ``conf/``).

Sources (``sources:``) and config fields declared with ``recipe_path(...)`` (a DeepSpeed config,
say) are looked up this way, so ``rag run /path/to/proj/conf/x.yaml`` works from any directory,
as long as the file is under the recipe's project; and a shipped recipe copied into a folder of
one's own (``rag cp``) still reads the shipped prompts it names. Config groups and the configs of
a ``defaults:`` list are looked up the same way (:func:`config_dirs`): next to the recipe first,
then in the shipped ``conf/``, as Hydra's search path.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path


def project_dir(recipe: Path) -> Path:
    """The folder that holds the recipe's ``conf/`` tree (the recipe's own folder when it is
    not under a folder named ``conf``).

    >>> project_dir(Path("/work/main/conf/dynamicrag/x.yaml")), project_dir(Path("/tmp/r.yaml"))
    (PosixPath('/work/main'), PosixPath('/tmp'))
    """
    for parent in recipe.parents:
        if parent.name == "conf":
            return parent.parent
    return recipe.parent


def cache_root(runs: str | Path, env: dict | None = None) -> Path:
    """The cache directory of the runs directory ``runs``: ``$RAGLINE_CACHE`` when set (``env``:
    ``os.environ`` unless given), else ``RUNS/cache``. A ``~`` in it is the home folder, as in a
    source's path: the shell leaves it as is in quotes, and a folder named ``~`` would be made.

    >>> cache_root("runs", {}), cache_root("runs", {"RAGLINE_CACHE": "/c"})
    (PosixPath('runs/cache'), PosixPath('/c'))
    >>> cache_root("runs", {"RAGLINE_CACHE": "~/c"}) == Path.home() / "c"
    True
    """
    import os

    named = (os.environ if env is None else env).get("RAGLINE_CACHE")
    return Path(named).expanduser() if named else Path(runs) / "cache"


@functools.lru_cache(maxsize=1)
def shipped_conf() -> Path | None:
    """The ``conf/`` folder beside the installed ``stages`` package: the repository's for a
    ``pip install -e`` checkout, the one a wheel installs into site-packages otherwise; found
    without importing the stages. None when there is none (a ``stages`` package of one's own
    that shadows ragline's)."""
    import importlib.util

    spec = importlib.util.find_spec("stages")
    origin = Path(spec.origin) if spec is not None and spec.origin else None
    conf = origin.parent.parent / "conf" if origin else None
    return conf.resolve() if conf is not None and conf.is_dir() else None


def config_dirs(recipe: Path) -> list[Path]:
    """Where the recipe's config groups (``executor/``) and ``defaults:`` configs
    (``dynamicrag/pipeline``) are looked up, in order: the recipe's own folder, then the shipped
    ``conf/`` when that is another folder. A group or config of one's own wins.

    >>> config_dirs(shipped_conf() / "dynamicrag_demo.yaml") == [shipped_conf()]
    True
    >>> config_dirs(Path("/tmp/mine/my.yaml")) == [Path("/tmp/mine"), shipped_conf()]
    True
    """
    own = Path(recipe).resolve().parent
    shipped = shipped_conf()
    return [own] if shipped is None or shipped == own else [own, shipped]


def config_path(recipe: Path, name: str) -> Path:
    """``name`` (a group folder ``executor`` or a config file ``dynamicrag/pipeline.yaml``) in
    the first of :func:`config_dirs` that has it; in the recipe's own folder when none has."""
    dirs = config_dirs(recipe)
    return next((d / name for d in dirs if (d / name).exists()), dirs[0] / name)


def locate_source(path: str, recipe: Path) -> tuple[Path | None, str]:
    """(where a source is, or None; what was tried, for a message). A relative path is looked
    up in the current directory, then in the recipe's project directory (``project_dir``), then
    in the shipped project (the folder of :func:`shipped_conf`)."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return (p if p.exists() else None), ""
    here, project = Path.cwd(), project_dir(Path(recipe).resolve())
    if (here / p).exists():
        return p, ""
    if project != here and (project / p).exists():
        return project / p, (f"not in the current directory ({here}); read from the recipe's "
                             f"project directory {project}")
    shipped = shipped_conf().parent if shipped_conf() is not None else None
    if shipped in (here, project):
        shipped = None
    if shipped is not None and (shipped / p).exists():
        return shipped / p, (f"not in the current directory ({here}); read from the shipped "
                             f"project {shipped}")
    tried = [f"the current directory {here}"]
    tried += [f"the recipe's project directory {project}"] if project != here else []
    tried += [f"the shipped project {shipped}"] if shipped is not None else []
    return None, "looked in " + (", ".join(tried[:-1]) + " and " + tried[-1] if len(tried) > 1
                                 else tried[0])


def with_recipe_paths(config_cls: type | None, values: dict, recipe: Path,
                      where: str) -> tuple[dict, list[str]]:
    """(``values`` with each relative ``recipe_path`` field made absolute where it was found,
    notes for ``rag plan``). A value found nowhere is left as written: the field may also take
    a name (``memory_model: llama3-8b``), and its own check says what is missing."""
    from orchestrator.registry import RECIPE_PATH

    if config_cls is None:
        return values, []
    out, notes = dict(values), []
    for f in dataclasses.fields(config_cls):
        value = values.get(f.name)
        if not f.metadata.get(RECIPE_PATH) or not isinstance(value, str) or not value:
            continue
        found, tried = locate_source(value, recipe)
        if found is not None:
            out[f.name] = str(found.resolve())
            if tried:
                notes.append(f"{where}.{f.name}: {value} {tried}")
    return out, notes
