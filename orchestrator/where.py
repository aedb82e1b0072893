"""Where a key of a composed recipe is written: ``file:line`` for error messages.

Looked up only when an error is raised. The recipe file is searched first, then the files its
``defaults:`` lists compose, and theirs (a Hydra config in group ``a/b`` holds keys under ``a.b``
unless its ``# @package`` header says otherwise); never a sibling recipe that this one does not
compose. The line of the deepest part of the key that is written somewhere wins (a key that
only the command line sets is named by its override instead: :func:`place`). A line that only
refers to another key (``k: ${retrieval.k}``) is followed to where that key is set (``origin``).
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


def _deepest(text: str, parts: list[str]) -> tuple[int, int, object]:
    """(how many leading parts of the key are written, 1-based line of the deepest, its YAML
    value node) in YAML."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return 0, 0, None
    depth, line = 0, 0
    for part in parts:
        if not isinstance(node, yaml.MappingNode):
            break
        match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
        if match is None:
            break
        depth, line = depth + 1, match[0].start_mark.line + 1
        node = match[1]
    return depth, line, node


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


def locate(recipe: Path, key: str, also: list[Path] | None = None) -> str:
    """``file:line`` of ``key`` (dotted) in the recipe's config files, best effort, else the file.
    ``also``: more files the composition read (a config group chosen on the command line).

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "r.yaml").write_text("steps:\\n  sft: {lr: 1}\\n  dpo:\\n    stage: dpo\\n")
    >>> locate(d / "r.yaml", "steps.dpo.lr") == f"{d / 'r.yaml'}:3"
    True
    """
    return _written(recipe, key, also)[1] or str(recipe)


def _written(recipe: Path, key: str,
             also: list[Path] | None = None) -> tuple[int, str | None, object]:
    """(how many parts of ``key`` are written, ``file:line`` of the deepest or None, its YAML
    value node): the first composed file that writes the most of the key wins."""
    conf_dir = recipe.parent
    parts = key.split(".")
    best, where, value = 0, None, None
    for path in composed(recipe) + list(also or []):
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        prefix = _package(path, conf_dir, text)
        if parts[:len(prefix)] != prefix:
            continue
        depth, line, node = _deepest(text, parts[len(prefix):])
        if depth and depth + len(prefix) > best:
            best, where, value = depth + len(prefix), f"{path}:{line}", node
    return best, where, value


_REFERENCE = re.compile(r"\$\{\s*([A-Za-z_][\w\-]*(?:\.[\w\-]+)*)\s*\}")  # ${a.b}, no resolver


def _set_by(key: str, overrides: list[str]) -> str | None:
    """The last command-line override that sets ``key`` or a key above it, if any."""
    parts = key.split(".")
    for text in reversed(overrides):
        name = text.partition("=")[0].lstrip("+~")
        if parts[:len(name.split("."))] == name.split("."):
            return text
    return None


def origin(recipe: Path, key: str, overrides: list[str] | None = None) -> str | None:
    """Where the value of ``key`` comes from when its line only refers to another key
    (``k: ${retrieval.k}``): ``= ${retrieval.k}, set at FILE:LINE`` (references followed to the
    last one), or ``set by override 'X'``; None when the key is written as a value itself.
    ``overrides``: the command line's, when the caller knows them.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "r.yaml").write_text("k: 5\\nsteps:\\n  a:\\n    k: ${k}\\n")
    >>> origin(d / "r.yaml", "steps.a.k") == f"= ${{k}}, set at {d / 'r.yaml'}:1"
    True
    >>> origin(d / "r.yaml", "steps.a.k", ["k=6"])
    "= ${k}, set by override 'k=6'"
    """
    import yaml

    overrides = overrides or []
    if _set_by(key, overrides):
        return None  # the command line replaced what the files write
    first, seen = None, {key}
    while True:
        depth, where, node = _written(recipe, key)
        reference = _REFERENCE.fullmatch(node.value.strip()) if (
            isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str") else None
        if reference is None:  # a value, or written nowhere (the key's own line then)
            if first is None or depth < len(key.split(".")):
                return None
            return f"= {first}, set at {where}"
        rest = key.split(".")[depth:]   # ${common.opts} on the line of steps.a.opts: .lr below
        key = ".".join([reference.group(1), *rest])
        first = first or "${" + reference.group(1) + "}" + "".join("." + r for r in rest)
        if key in seen:
            return None
        seen.add(key)
        override = _set_by(key, overrides)
        if override:
            return f"= {first}, set by override '{override}'"


def place(err, recipe: Path, overrides: list[str] | None = None):
    """``err`` (a ``RagError``) with ``file:line: `` of its ``key`` in front, once; when that
    line only refers to another key, where the value comes from follows the key in the message
    (``steps.r.k (= ${retrieval.k}, set at FILE:LINE): ...``). ``overrides``: the command
    line's: a value set there is named by its override, not blamed on a file.

    >>> from types import SimpleNamespace as N
    >>> place(N(key="steps.a.k", message="steps.a.k: expected a number, got 'x'"), Path("r.yaml"),
    ...       ["steps.a.k=x"]).message
    "override 'steps.a.k=x': steps.a.k: expected a number, got 'x'"
    """
    key = getattr(err, "key", None)
    given = _set_by(key, overrides or []) if key else None
    if given:   # the command line set it: the file's line is not where to fix it
        err.message = f"override '{given}': {err.message}"
        err.key = None
    elif key:
        source = origin(recipe, key, overrides)
        message = err.message
        if source and message.startswith(f"{key}: "):
            message = f"{key} ({source}){message[len(key):]}"
        elif source:
            message = f"{message} ({key} {source})"
        err.message = f"{locate(recipe, key)}: {message}"
        err.key = None
    return err
