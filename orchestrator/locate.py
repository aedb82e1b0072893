"""Where a relative path in a recipe points: the current directory, then the recipe's project.

Sources (``sources:``) and config fields declared with ``recipe_path(...)`` (a DeepSpeed config,
say) are both looked up this way, so ``rag run /path/to/proj/conf/x.yaml`` works from any
directory, as long as the file is under the recipe's project.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from orchestrator.registry import RECIPE_PATH


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


def locate_source(path: str, recipe: Path) -> tuple[Path | None, str]:
    """(where a source is, or None; what was tried, for a message). A relative path is looked
    up in the current directory, then in the recipe's project directory (``project_dir``)."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return (p if p.exists() else None), ""
    here, project = Path.cwd(), project_dir(Path(recipe).resolve())
    if (here / p).exists():
        return p, ""
    if project != here and (project / p).exists():
        return project / p, (f"not in the current directory ({here}); read from the recipe's "
                             f"project directory {project}")
    tried = f"the current directory {here}" + (f" and the recipe's project directory {project}"
                                               if project != here else "")
    return None, f"looked in {tried}"


def with_recipe_paths(config_cls: type | None, values: dict, recipe: Path,
                      where: str) -> tuple[dict, list[str]]:
    """(``values`` with each relative ``recipe_path`` field made absolute where it was found,
    notes for ``rag plan``). A value found nowhere is left as written: the field may also take
    a name (``memory_model: llama3-8b``), and its own check says what is missing."""
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
