"""Where a key of a composed recipe is written: ``file:line`` for error messages.

Looked up only when an error is raised. The recipe file is searched first, then every other YAML
file of its config directory (a Hydra config in group ``a/b`` holds keys under ``a.b`` unless its
``# @package`` header says otherwise). The line of the deepest part of the key that is written
somewhere wins: ``steps.dpo.lr`` set on the command line is reported at step ``dpo``'s line.
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
    files = [recipe] + sorted(p for p in conf_dir.rglob("*.y*ml") if p != recipe)
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
