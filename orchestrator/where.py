"""Where a key of a composed recipe is written: ``file:line`` for error messages.

Looked up only when an error is raised. The recipe file is searched first, then the files its
``defaults:`` lists compose, and theirs (a Hydra config in group ``a/b`` holds keys under ``a.b``
unless its ``# @package`` header says otherwise); never a sibling recipe that this one does not
compose. The line of the deepest part of the key that is written somewhere wins (a key that
only the command line sets is named by its override instead: :func:`place`). A line that only
refers to another key (``k: ${retrieval.k}``) is followed to where that key is set (``origin``;
``set_at`` names that place first, as a missing source's problem does). Each file is parsed once
per version of it.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from orchestrator.locate import config_dirs, config_path


def _package(path: Path, conf_dirs: list[Path], text: str) -> list[str]:
    """The key prefix a Hydra config file's content lives under: its ``# @package`` header, or
    its folder under the config directory that holds it."""
    header = re.search(r"^#\s*@package\s+(\S+)", text, re.M)
    if header:
        name = header.group(1)
        return [] if name == "_global_" else name.split(".")
    conf_dir = next((d for d in conf_dirs if path.is_relative_to(d)), path.parent)
    return list(path.parent.relative_to(conf_dir).parts)


def _file(path: Path) -> tuple[str | None, object, object]:
    """(text, composed YAML node, loaded value) of a config file; Nones for what cannot be
    read or parsed. Parsed once per version of the file (a sweep's members ask about the same
    keys of the same files)."""
    try:
        stat = path.stat()
    except OSError:
        return None, None, None
    return _parse(str(path), (stat.st_ino, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=256)
def _parse(path: str, version: tuple) -> tuple[str | None, object, object]:
    """``_file`` of one version of a file (its inode, time and size: an edit is read again)."""
    import yaml

    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return None, None, None
    out: list = [text]
    for parse in (functools.partial(yaml.compose, Loader=yaml.SafeLoader), yaml.safe_load):
        try:
            out.append(parse(text))
        except yaml.YAMLError:   # a tag safe_load does not know still composes
            out.append(None)
    return tuple(out)


def _deepest(node, parts: list[str]) -> tuple[int, int, object]:
    """(how many leading parts of the key are written, 1-based line of the deepest, its YAML
    value node) in a composed YAML ``node``."""
    import yaml

    if node is None:
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
    out, todo = [], [recipe]
    while todo:
        path = todo.pop(0)
        if path in out or not path.is_file():
            continue
        out.append(path)
        data = _file(path)[2]
        defaults = (data.get("defaults") or []) if isinstance(data, dict) else []
        for entry in defaults if isinstance(defaults, list) else []:
            for name in _default_names(entry):
                todo += [config_path(recipe, f"{name}.yaml"), path.parent / f"{name}.yaml"]
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


def default_entry(path: Path, name: str, group: str | None = None) -> str | None:
    """``file:line`` of the entry of ``path``'s ``defaults:`` list that names config ``name``
    (``- name``, ``- g/name``, ``- g: name``; with ``group``, only ``- group: name``), or None.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "r.yaml").write_text("defaults:\\n  - _self_\\n  - nope\\n")
    >>> default_entry(d / "r.yaml", "nope") == f"{d / 'r.yaml'}:3"
    True
    >>> _ = (d / "g.yaml").write_text("defaults:\\n  - executor: local\\n  - hw: local\\n")
    >>> default_entry(d / "g.yaml", "local", group="hw") == f"{d / 'g.yaml'}:3"
    True
    """
    import yaml

    node = _file(path)[1]
    if not isinstance(node, yaml.MappingNode):
        return None
    entries = next((v for k, v in node.value if getattr(k, "value", None) == "defaults"), None)
    for entry in entries.value if isinstance(entries, yaml.SequenceNode) else []:
        if isinstance(entry, yaml.ScalarNode):   # - name, - g/name
            in_group = str(entry.value).rpartition("/")[0].rpartition("/")[2]
            scalars = [entry] if group is None or in_group == group else []
        elif isinstance(entry, yaml.MappingNode):   # - g: name
            scalars = [v for k, v in entry.value if group is None or _group_key(k) == group]
        else:
            scalars = []
        for scalar in scalars:
            text = str(getattr(scalar, "value", ""))
            if any(n.rpartition("/")[2] == name for n in _default_names(text) + [text]):
                return f"{path}:{scalar.start_mark.line + 1}"
    return None


def _group_key(key) -> str:
    """The group a defaults entry's key names: ``override hw@ragline: x`` -> ``hw``."""
    text = str(getattr(key, "value", "")).removeprefix("override ").strip()
    return text.partition("@")[0].rpartition("/")[2]


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


def _written(recipe: Path, key: str, also: list[Path] | None = None,
             chosen: list[Path] | None = None) -> tuple[int, str | None, object]:
    """(how many parts of ``key`` are written, ``file:line`` of the deepest or None, its YAML
    value node): the first composed file that writes the most of the key wins. ``chosen``:
    config group files the command line adds, searched first (last first: Hydra composes them
    after the recipe's own keys)."""
    conf_dirs = config_dirs(recipe)
    parts = key.split(".")
    best, where, value = 0, None, None
    for path in list(reversed(chosen or [])) + composed(recipe) + list(also or []):
        text, node, _ = _file(path)
        if text is None:
            continue
        prefix = _package(path, conf_dirs, text)
        if parts[:len(prefix)] != prefix:
            continue
        depth, line, node = _deepest(node, parts[len(prefix):])
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


def _follow(recipe: Path, key: str, overrides: list[str],
            chosen: list[Path] | None = None) -> tuple[str | None, str | None, str]:
    """Follow ``key``'s line while it only refers to another key (``k: ${retrieval.k}``):
    (the first reference as written, ``${retrieval.k}``, or None when the line holds a value;
    where the value at the end is set, ``FILE:LINE`` or ``override 'X'``, or None when it is
    written nowhere or the references go round; the key at the end)."""
    import yaml

    first, seen = None, {key}
    while True:
        depth, where, node = _written(recipe, key, chosen=chosen)
        reference = _REFERENCE.fullmatch(node.value.strip()) if (
            isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str") else None
        if reference is None:  # a value, or written nowhere (the key's own line then)
            return first, (where if first and depth == len(key.split(".")) else None), key
        rest = key.split(".")[depth:]   # ${common.opts} on the line of steps.a.opts: .lr below
        key = ".".join([reference.group(1), *rest])
        first = first or "${" + reference.group(1) + "}" + "".join("." + r for r in rest)
        if key in seen:
            return first, None, key
        seen.add(key)
        override = _set_by(key, overrides)
        if override:
            return first, f"override '{override}'", key


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
    overrides = overrides or []
    if _set_by(key, overrides):
        return None  # the command line replaced what the files write
    first, where, final = _follow(recipe, key, overrides)
    if first is None or where is None:
        return None
    return f"= {first}, set {'by' if _set_by(final, overrides) else 'at'} {where}"


def step_key(recipe: Path, name: str) -> str:
    """The key a step's settings are written under: ``steps.NAME``, or for a step unrolled from
    a ``repeat:`` block (``augment_2``) the block's template, ``repeat.BLOCK.steps.augment``.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "r.yaml").write_text("repeat:\\n  round:\\n    steps:\\n      augment: {gpus: 1}\\n")
    >>> step_key(d / "r.yaml", "augment_2"), step_key(d / "r.yaml", "load")
    ('repeat.round.steps.augment', 'steps.load')
    """
    base, _, number = name.rpartition("_")
    if number.isdigit():
        for path in composed(recipe):
            data = _file(path)[2]
            blocks = data.get("repeat") if isinstance(data, dict) else None
            for block, body in (blocks.items() if isinstance(blocks, dict) else ()):
                if isinstance(body, dict) and base in (body.get("steps") or {}):
                    return f"repeat.{block}.steps.{base}"
    return f"steps.{name}"


def value_key(recipe: Path, key: str, overrides: list[str] | None = None) -> str:
    """The key to change to change ``key``'s value: the last key its line refers to
    (``gpus: ${hw.gpus}`` -> ``hw.gpus``), else ``key`` itself.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "r.yaml").write_text("hw:\\n  gpus: 1\\nsteps:\\n  a:\\n    gpus: ${hw.gpus}\\n  b:\\n    gpus: 2\\n")
    >>> value_key(d / "r.yaml", "steps.a.gpus"), value_key(d / "r.yaml", "steps.b.gpus")
    ('hw.gpus', 'steps.b.gpus')
    """
    overrides = overrides or []
    if _set_by(key, overrides):
        return key
    return _follow(recipe, key, overrides, _chosen(recipe, overrides))[2]


def set_at(recipe: Path, key: str, overrides: list[str] | None = None) -> str:
    """Where the value of ``key`` is set, for the front of a message about it: the command
    line's ``override 'X'`` (of the key, or of the key its line refers to), else ``FILE:LINE``
    of the line that writes the value, with the key it is written under when that is another
    key (``sources.corpus: ${data.corpus}``: ``FILE:LINE (data.corpus)``), else the recipe.
    A config group chosen on the command line (``+variant=x``) is searched too.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "r.yaml").write_text("data:\\n  c: x.txt\\nsources:\\n  c: ${data.c}\\n  d: y\\n")
    >>> [set_at(d / "r.yaml", "sources.d")[len(str(d)):], set_at(d / "r.yaml", "sources.c")[len(str(d)):]]
    ['/r.yaml:5', '/r.yaml:2 (data.c)']
    >>> set_at(d / "r.yaml", "sources.c", ["data.c=z.txt"])
    "override 'data.c=z.txt'"
    """
    overrides = overrides or []
    given = _set_by(key, overrides)
    if given:
        return f"override '{given}'"
    chosen = _chosen(recipe, overrides)
    first, where, final = _follow(recipe, key, overrides, chosen)
    if where is not None and _set_by(final, overrides):
        return where
    if first is not None and where is not None:
        return f"{where} ({final})"
    return _written(recipe, key, chosen=chosen)[1] or str(recipe)


def _chosen(recipe: Path, overrides: list[str]) -> list[Path]:
    """The files of the config groups the command line chooses (``+variant=x``, ``executor=y``)."""
    out = []
    for text in overrides:
        group, _, option = text.lstrip("+~").partition("=")
        if group and "." not in group and re.fullmatch(r"[\w\-]+", option):   # not data.corpus=/a/b
            path = config_path(recipe, f"{group}/{option}.yaml")
            if path.is_file():
                out.append(path)
    return out


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
    written = _template_key(recipe, key) if key else None   # where the key is written and set
    given = (_set_by(written, overrides or []) or _named_below(written, err.message, overrides or [])
             or _added_by(written, overrides or []) if key else None)
    if key and written != key and err.message.startswith(f"{key}: "):   # a repeat round's step:
        step = key.split(".")[1]                                           # named as written
        err.message = f"{written} (step {step}){err.message[len(key):]}"
        key = written
    if given:   # the command line set it: the file's line is not where to fix it
        from orchestrator.secrets import masked

        err.message = f"override '{masked(given)}': {err.message}"
        err.key = None
    elif key:
        source = origin(recipe, written, overrides)
        message = err.message
        if source and message.startswith(f"{key}: "):
            message = f"{key} ({source}){message[len(key):]}"
        elif source:
            message = f"{message} ({key} {source})"
        err.message = f"{locate(recipe, written)}: {message}"
        err.key = None
    return err


def _template_key(recipe: Path, key: str) -> str:
    """``key`` as written: a key of a step unrolled from a ``repeat:`` block
    (``steps.augment_2.n``) is its template's (``repeat.round.steps.augment.n``), which the
    files write and the command line overrides; any other key as is."""
    parts = key.split(".")
    if len(parts) < 2 or parts[0] != "steps":
        return key
    return ".".join([step_key(recipe, parts[1]), *parts[2:]])


def _added_by(key: str, overrides: list[str]) -> str | None:
    """The last override that added the step ``key`` is in (``+steps.new.stage=…``): the recipe
    has no line for that step, so the override is where to fix it.

    >>> _added_by("steps.new.inputs.x", ["steps.sft.lr=1", "+steps.new.stage=evaluate"])
    '+steps.new.stage=evaluate'
    >>> _added_by("steps.sft.inputs.x", ["steps.sft.lr=1", "+steps.sft.gpus=2"]) is None
    True
    """
    parts = key.split(".")
    step = parts[:2]
    for text in reversed(overrides):   # +steps.X.stage: a new step (an existing one has a stage)
        name = text.partition("=")[0]
        if parts[0] == "steps" and name.startswith("+") and \
                name.lstrip("+").split(".") in (step, [*step, "stage"]):
            return text
    return None


def _named_below(key: str, message: str, overrides: list[str]) -> str | None:
    """The last override that sets a key of the step ``key`` is in, under ``key``, that
    ``message`` names (a part of its path after the step's, as a word): a config's own
    ``__post_init__`` refuses the whole step, ``steps.sft: epochs must be > 0``, and
    ``steps.sft.epochs=0`` set it.

    >>> _named_below("steps.sft", "steps.sft: epochs must be > 0", ["steps.sft.lr=1", "steps.sft.epochs=0"])
    'steps.sft.epochs=0'
    >>> _named_below("steps.sft", "steps.sft: epochs must be > 0", ["steps.sft.lr=1"]) is None
    True
    """
    parts = key.split(".")
    step = parts[:4] if parts[0] == "repeat" else parts[:2]
    if step[0] not in ("steps", "repeat"):
        return None
    for text in reversed(overrides):
        name = text.partition("=")[0].lstrip("+~").split(".")
        if name[:len(parts)] == parts and any(
                re.search(rf"(?<![\w.]){re.escape(part)}(?!\w)", message)
                for part in name[len(step):]):
            return text
    return None
