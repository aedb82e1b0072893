"""Where a key of a composed recipe is written: ``file:line`` for error messages.

Looked up only when an error is raised. The recipe file is searched first, then the files its
``defaults:`` lists compose, and theirs (a Hydra config in group ``a/b`` holds keys under ``a.b``
unless its ``# @package`` header says otherwise); never a sibling recipe that this one does not
compose. The line of the deepest part of the key that is written somewhere wins:
``steps.dpo.lr`` set on the command line is reported at step ``dpo``'s line.
"""

from __future__ import annotations

import re
from pathlib import Path


def _package(path: Path, conf_dir: Path, text: str) -> list[str]:
    """The key prefix a Hydra config file's content lives under."""
    header = re.search(r"^#\s*@package\s+(\S+)", text, re.M)
    if header:
        name = header.group(1)
        return [] if name == "_global_" else name.split(".")
    if path.parent == conf_dir:
        return []
    return list(path.parent.relative_to(conf_dir).parts)


def _deepest(text: str, parts: list[str]) -> tuple[int, int]:
    """(how many leading parts of the key are written, 1-based line of the deepest) in YAML."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return 0, 0
    depth, line = 0, 0
    for part in parts:
        if not isinstance(node, yaml.MappingNode):
            break
        match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
        if match is None:
            break
        depth, line = depth + 1, match[0].start_mark.line + 1
        node = match[1]
    return depth, line


def composed(recipe: Path) -> list[Path]:
    """The recipe and the config files its ``defaults:`` lists name, transitively, in order
    (``- dynamicrag/pipeline``, ``- executor: local``; ``_self_`` and missing files skipped).

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> (d / "g").mkdir()
    >>> _ = (d / "r.yaml").write_text("defaults:\\n  - g/a\\n  - x: b\\n  - _self_\\n")
    >>> _ = (d / "other.yaml").write_text("steps: {}\\n")
    >>> _ = (d / "g" / "a.yaml").write_text("k: 1\\n")
    >>> [str(p.relative_to(d)) for p in composed(d / "r.yaml")]
    ['r.yaml', 'g/a.yaml']
    """
    import yaml

    conf_dir, out, todo = recipe.parent, [], [recipe]
    while todo:
        path = todo.pop(0)
        if path in out or not path.is_file():
            continue
        out.append(path)
        try:
            defaults = (yaml.safe_load(path.read_text()) or {}).get("defaults") or []
        except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError):
            continue
        for entry in defaults if isinstance(defaults, list) else []:
            for name in _default_names(entry):
                todo += [base / f"{name}.yaml" for base in (conf_dir, path.parent)]
    return out


def _default_names(entry) -> list[str]:
    """Config names a defaults-list entry stands for: ``g/a`` for ``g/a`` and ``{g: a}``."""
    def clean(text: str) -> str:
        for word in ("override ", "optional "):
            text = text.removeprefix(word)
        return text.split("@")[0].strip().lstrip("/")

    if isinstance(entry, str):
        return [] if entry == "_self_" else [clean(entry)]
    if isinstance(entry, dict):
        return [f"{clean(str(group))}/{option}" for group, options in entry.items()
                for option in (options if isinstance(options, list) else [options])
                if isinstance(option, str)]
    return []


def locate(recipe: Path, key: str) -> str:
    """``file:line`` of ``key`` (dotted) in the recipe's config files, best effort, else the file.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "r.yaml").write_text("steps:\\n  sft: {lr: 1}\\n  dpo:\\n    stage: dpo\\n")
    >>> locate(d / "r.yaml", "steps.dpo.lr") == f"{d / 'r.yaml'}:3"
    True
    """
    conf_dir = recipe.parent
    parts = key.split(".")
    files = composed(recipe)
    best, where = 0, str(recipe)
    for path in files:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        prefix = _package(path, conf_dir, text)
        if parts[:len(prefix)] != prefix:
            continue
        depth, line = _deepest(text, parts[len(prefix):])
        if depth and depth + len(prefix) > best:
            best, where = depth + len(prefix), f"{path}:{line}"
    return where


def place(err, recipe: Path):
    """``err`` (a ``RagError``) with ``file:line: `` of its ``key`` in front, once."""
    if getattr(err, "key", None):
        err.message = f"{locate(recipe, err.key)}: {err.message}"
        err.key = None
    return err
