"""The RAG stages, one package per recipe (docs/layout.md).

* ``stages/common/``: stages two or more recipes use, registered unprefixed (``retrieve``);
* ``stages/<recipe>/``: one recipe's stages, registered as ``<recipe>.<name>``
  (``dynamicrag.label``), with the recipe's pure formulas and own artifact types beside them;
* ``stages/lib/``: code the stages share, by concern (models, train, metrics, data, chat);
* ``stages/schemas.py``: the artifact types shared by the recipes.

Importing this package registers nothing: the registry imports the stage packages a recipe's
stage names need (``stages.common`` for unprefixed names, ``stages.<recipe>`` for prefixed ones),
and each stage package imports its own modules with :func:`import_modules`, so no list of
modules is kept by hand. Heavy libraries are imported inside the stage functions only.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path


def import_modules(package: str, path: list[str]) -> list[str]:
    """Import the modules of a package that define a stage; returns their names, sorted.

    A stage package's ``__init__.py`` calls ``import_modules(__name__, __path__)``, which
    registers the ``@stage`` functions of every file in that folder. A module counts when its
    source has a ``@stage(`` line; the formula modules beside them (some import torch or numpy)
    are imported only by the stages that use them.
    """
    names = sorted(m.name for m in pkgutil.iter_modules(path)
                   if not m.ispkg and _defines_stage(Path(m.module_finder.path) / f"{m.name}.py"))
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names


def _defines_stage(source: Path) -> bool:
    try:
        return any(line.lstrip().startswith("@stage(") for line in source.read_text().splitlines())
    except OSError:  # not a plain .py file (a compiled extension): import it to be safe
        return True
