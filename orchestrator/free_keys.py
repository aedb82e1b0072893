"""Keys of a recipe's free sections that nothing reads: a note, or an error for an override.

A top-level key the orchestrator does not read itself (``retrieval: {k: 5}``) is a free section:
its values take effect only where another value refers to them (``k: ${retrieval.k}``). So a key
there that no ``${...}`` reads is a typo or a comment: ``rag plan`` and ``rag run`` note it at its
file:line, and an override that adds such a key (``+retrieval.kk=3``) is refused with the
corrected override, since an override cannot be documentation.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from orchestrator.errors import ConfigError

# Top-level keys the orchestrator reads itself (``defaults`` and ``hydra`` are Hydra's). Any other
# top-level key is a free section (``retrieval: {k: 5}``): it takes effect only where a value
# refers to it (``k: ${retrieval.k}``), so a key there that nothing refers to is a typo, or a note.
TOP_KEYS = ("steps", "sources", "ragline", "repeat", "defaults", "hydra")
_READ = re.compile(r"(?<!\\)\$\{\s*([\w.\-]*)\s*(:[^${}]*)?")  # ${a.b}, ${.b}, ${oc.select:a.b,1}


class FreeKeys:
    """What a composed base config's interpolations read, and the keys of its free sections that
    nothing reads: each a note (at its file:line), or an error when an override adds it."""

    def __init__(self, recipe: Path, base, groups: tuple):
        from omegaconf import OmegaConf

        self.recipe, self.groups = recipe, groups
        self.plain = OmegaConf.to_container(base, resolve=False)
        self.reads = _reads(self.plain)
        self._written = False  # whether self.reads has the files' own references yet
        self.unread = _free_unread(self.plain, self.reads)
        if self.unread:
            self._add_written_reads()
            self.unread = _free_unread(self.plain, self.reads)
        self._notes: dict[str, str] = {}  # key -> its note (locating a key parses YAML)

    def _add_written_reads(self) -> None:
        """Count as read what a composed file refers to even where the composition dropped the
        value that refers to it (a variant's ``steps.x: null`` drops a step that read
        ``${retrieval.k}``). Looked up only when a key seems unread: it parses the files."""
        if not self._written:
            self._written = True
            from orchestrator.where import composed

            self.reads |= _written_reads(composed(self.recipe) + self.chosen())

    def chosen(self) -> list[Path]:
        """The files of the config groups chosen on the command line (``+variant=x``)."""
        from orchestrator.locate import config_path

        options = [text.lstrip("+~").partition("=") for text in self.groups]
        return [config_path(self.recipe, f"{group}/{option}.yaml")
                for group, _, option in options]

    def check(self, values, typed: dict[str, str]) -> list[str]:
        """The notes of a member with value overrides ``values`` (text, parsed); a key that an
        override adds and nothing reads is almost surely a typo: ``ConfigError``, naming the
        override as ``typed`` has it (key -> the command line's text: ``+a.kk=1,2``)."""
        from hydra.core.override_parser.types import OverrideType

        sets = [(text, ov) for text, ov in values if ov.type != OverrideType.DEL]
        added: set[str] = set()  # what the overrides' own values read (+x.k='${retrieval.kk}')
        for _, ov in sets:
            _reads(ov.value(), tuple(ov.key_or_group.split(".")), added)
        reads = self.reads | added
        for text, ov in sets:
            top, *rest = ov.key_or_group.split(".")
            if top in TOP_KEYS:
                continue
            node = ov.value()
            for part in reversed(rest):  # the value where it goes: {kk: 3} under retrieval
                node = {part: node}
            # a key the recipe's files set is not the override's doing: it has its note instead
            unknown = [k for k in _unread(node, top, reads) if not _exists(self.plain, k)]
            if unknown and not self._written:   # maybe read where the composition dropped it
                self._add_written_reads()
                reads = self.reads | added
                unknown = [k for k in _unread(node, top, reads) if not _exists(self.plain, k)]
            if unknown:
                text = typed.get(text.partition("=")[0], text)
                raise self._unknown(text, ov.key_or_group, unknown[0], reads)
        return [self._note(key) for key in self.unread
                if not (_read_whole(key, added) or _read_below(key, added))]

    def _note(self, key: str) -> str:
        if key not in self._notes:
            from orchestrator.where import locate

            near = self._near(key, self.reads)
            where = locate(self.recipe, key, self.chosen())
            self._notes[key] = (f"{where}: {key} is set, but no ${{{key}}} in the recipe reads it"
                                + (f" (did you mean '{near}'?)" if near else
                                   "; rename it if it is a typo, or make it a # comment if it "
                                   "only documents something"))
        return self._notes[key]

    def _unknown(self, text: str, given: str, key: str, reads: set[str]) -> ConfigError:
        """The error for override ``text`` (of key ``given``) whose key ``key`` nothing reads."""
        near = self._near(key, reads)
        message = (f"override '{text}': nothing in {self.recipe.name} reads {key}"
                   + (f" (did you mean '{near}'?)" if near else ""))
        if near and (given == key or given.startswith(key + ".")):
            fixed = near + given[len(key):]
            sign = "" if _exists(self.plain, fixed) else text[:len(text) - len(text.lstrip("+"))]
            return ConfigError(message, hint=f"write {sign}{fixed}={text.partition('=')[2]}")
        if near:
            return ConfigError(message, hint=f"rename '{key.rpartition('.')[2]}' to "
                                             f"'{near.rpartition('.')[2]}' in the override")
        parent = key.rpartition(".")[0]
        node = _get(self.plain, parent) if parent else None
        known = sorted(str(k) for k in node if _read_whole(f"{parent}.{k}", reads)
                       or _read_below(f"{parent}.{k}", reads)) if isinstance(node, dict) else []
        hint = f"a key takes effect only where the recipe refers to it as ${{{key}}}"
        return ConfigError(message, hint=hint + (f"; the keys of {parent} it reads: "
                                                 f"{', '.join(known)}" if known else ""))

    def _near(self, key: str, reads: set[str]) -> str | None:
        """The key beside ``key`` that the recipe reads (at the top: or a reserved key) that is
        closest in spelling, if one is close."""
        parent, _, name = key.rpartition(".")
        node = _get(self.plain, parent) if parent else self.plain
        prefix = f"{parent}." if parent else ""
        read = [str(k) for k in (node if isinstance(node, dict) else [])
                if (not parent and k in TOP_KEYS) or _read_whole(f"{prefix}{k}", reads)
                or _read_below(f"{prefix}{k}", reads)]
        close = difflib.get_close_matches(name, read, n=1, cutoff=0.6)
        return prefix + close[0] if close else None


def _reads(node, path: tuple[str, ...] = (), out: set[str] | None = None) -> set[str]:
    """Every key that the interpolations in ``node`` (unresolved, plain, found at ``path``) read:
    ``${a.b}``; a relative ``${.b}`` made absolute; a resolver's arguments, which may name keys.

    >>> sorted(_reads({"s": {"x": "${a.b}/${.y}", "l": ["${oc.select:c,1}", "\\\\${d}"]}}))
    ['1', 'a.b', 'c', 's.y']
    """
    out = set() if out is None else out
    if isinstance(node, dict):
        for key, value in node.items():
            _reads(value, (*path, str(key)), out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _reads(value, (*path, str(i)), out)
    elif isinstance(node, str) and "${" in node:
        for name, args in _READ.findall(node):
            for key in args[1:].split(",") if args else [name]:
                key = key.strip()
                dots = len(key) - len(key.lstrip("."))  # ${.b}: beside this value; ${..b}: above
                out.add(".".join([*path[:len(path) - dots], key[dots:]]) if dots else key)
    return out


def _written_reads(files: list[Path]) -> set[str]:
    """The keys that ``${a.b}`` references name in the text of ``files``, comments left out;
    relative references are not followed here."""
    out: set[str] = set()
    for path in files:
        try:
            text = re.sub(r"(?m)(^|\s)#.*$", "", path.read_text())
        except (OSError, UnicodeDecodeError):
            continue
        for name, args in _READ.findall(text):
            out.update(k.strip() for k in (args[1:].split(",") if args else [name])
                       if not k.strip().startswith("."))
    return out


def _free_unread(config: dict, reads: set[str]) -> list[str]:
    """The keys of ``config``'s free sections that nothing in ``reads`` reads."""
    return [key for top, value in config.items() if top not in TOP_KEYS
            for key in _unread(value, str(top), reads)]


def _read_whole(key: str, reads: set[str]) -> bool:
    """Whether ``key`` or a key above it is read."""
    parts = key.split(".")
    return any(".".join(parts[:i]) in reads for i in range(1, len(parts) + 1))


def _read_below(key: str, reads: set[str]) -> bool:
    """Whether a key under ``key`` is read."""
    return any(r.startswith(key + ".") for r in reads)


def _unread(node, key: str, reads: set[str]) -> list[str]:
    """The keys at and under ``key`` (whose value is ``node``) that nothing in ``reads`` reads,
    each named at its highest level; a mapping some of whose keys are read is looked into.

    >>> _unread({"k": 5, "kk": 3, "sub": {"a": 1}}, "retrieval", {"retrieval.k"})
    ['retrieval.kk', 'retrieval.sub']
    """
    if _read_whole(key, reads):
        return []
    if not _read_below(key, reads):
        return [key]
    if not isinstance(node, dict):
        return []
    return [k for name, value in node.items() for k in _unread(value, f"{key}.{name}", reads)]


def _get(config: dict, key: str):
    """The value at dotted ``key`` of a plain config, or None."""
    node = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _exists(config: dict, key: str) -> bool:
    """Whether a plain config has dotted ``key`` (its value may be None)."""
    parent, _, leaf = key.rpartition(".")
    node = _get(config, parent) if parent else config
    return isinstance(node, dict) and leaf in node
