"""Compose a recipe with Hydra, apply overrides, and expand ``-m`` sweeps into members.

A recipe is an ordinary Hydra config file (defaults lists, config groups, interpolation). Config
group overrides (``executor=slurm``) go through Hydra's compose API; value overrides
(``steps.dpo.beta=0.05``, ``+x=1``, ``++x=1``, ``~x``) are parsed by Hydra's override parser and
applied to the composed config. Each distinct set of group choices is composed once, so a
1,000-member sweep costs one compose plus 1,000 cheap applications.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import itertools
import os
import re
import shlex
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigError, did_you_mean
from orchestrator.free_keys import FreeKeys
from orchestrator.locate import config_dirs, config_path, shipped_conf


@dataclass
class Member:
    """One composed configuration: a plain run, or one member of a sweep."""

    recipe: Path
    overrides: list[str]
    config: dict  # resolved, plain containers; values read from the environment as their text
    index: int = 0
    secrets: dict[str, str] = field(default_factory=dict)  # key path -> "${oc.env:NAME}"
    impure: bool = False  # the config calls a resolver (environment, clock): never remembered
    resolved: dict | None = field(default=None, repr=False)  # with secret values; None: = config
    text: str | None = field(default=None, repr=False)  # config as config.yaml text, when known
    notes: list[str] = field(default_factory=list)  # e.g. a key of a free section nothing reads

    @property
    def values(self) -> dict:
        """The config a DAG is built from: secrets as their values. Never write it anywhere."""
        return self.config if self.resolved is None else self.resolved


def _member(recipe: Path, overrides: list[str], resolved: dict, index: int,
            secrets: dict[str, str], impure: bool, notes: list[str]) -> Member:
    from orchestrator.secrets import redact

    if not secrets:
        return Member(recipe, overrides, resolved, index, {}, impure, notes=notes)
    return Member(recipe, overrides, redact(resolved, secrets), index, secrets, impure, resolved,
                  notes=notes)


def find_recipe(spec: str) -> Path:
    """A recipe path from ``conf/x.yaml``, ``x.yaml`` or a bare name looked up in ``./conf``,
    then among the shipped recipes (:func:`shipped_recipe`), so ``rag run dynamicrag_demo`` and
    ``rag run conf/dynamicrag_demo.yaml`` work from a folder of one's own data."""
    path = Path(spec)
    known = sorted({p.stem for p in Path("conf").glob("*.yaml")}) if Path("conf").is_dir() else []
    listed = f"; recipes in conf/: {', '.join(known)}" if known else ""
    if path.suffix and path.suffix != ".yaml" and path.is_file():  # Hydra reads only .yaml
        _not_yaml(spec, path, listed)
    found = _yaml_in(Path("."), spec) or shipped_recipe(spec)
    if found is not None:
        return found.resolve()
    if path.is_file():   # a file without a suffix
        _not_yaml(spec, path, listed)
    conf = shipped_conf()
    shipped = sorted(p.stem for p in conf.glob("*.yaml")) if conf else []
    if shipped and conf.resolve() != Path("conf").resolve():
        listed += f"; shipped recipes ({conf}): {', '.join(shipped)}"
    raise ConfigError(f"recipe '{spec}' not found{did_you_mean(path.stem, known + shipped)}",
                      hint="give a path like conf/dynamicrag_demo.yaml" + listed)


def _yaml_in(root: Path, spec: str) -> Path | None:
    """``spec`` as a .yaml file under ``root``: the path as given (with or without ``.yaml``),
    or a name in ``root/conf``."""
    path = Path(spec)
    for c in (root / path, root / path.with_suffix(".yaml"), root / "conf" / path,
              root / "conf" / f"{spec}.yaml"):
        if c.suffix == ".yaml" and c.is_file():
            return c
    return None


def shipped_recipe(spec: str) -> Path | None:
    """``spec`` among the shipped recipes when it is a relative path or name that the current
    directory does not hold (``conf/dynamicrag_demo.yaml`` or ``dynamicrag_demo``), else None."""
    conf = shipped_conf()
    if conf is None or Path(spec).is_absolute() or _yaml_in(Path("."), spec) is not None:
        return None
    return _yaml_in(conf.parent, spec)


def _not_yaml(spec: str, path: Path, listed: str) -> None:
    """Refuse a recipe file Hydra cannot read for its suffix: a YAML file under another name
    (``.yml``, or no suffix and a YAML mapping inside) is to be renamed; any other file (a stage
    module, a JSON or text file) is not a recipe at all."""
    if path.suffix.lower() in (".yml", ".yaml") or (not path.suffix and _yaml_mapping(path)):
        raise ConfigError(f"{spec}: a recipe must be a .yaml file",
                          hint=f"rename it: mv {spec} {path.with_suffix('.yaml')}")
    what = f"a {path.suffix} file" if path.suffix else "a file without a suffix"
    also = ("; a stage module is listed under ragline.imports: in a recipe"
            if path.suffix == ".py" else "")
    raise ConfigError(f"{spec}: not a recipe: a recipe is a YAML file (conf/NAME.yaml), this "
                      f"is {what}{also}",
                      hint="give a recipe like conf/dynamicrag_demo.yaml" + listed)


def _yaml_mapping(path: Path) -> bool:
    """Whether ``path`` holds a YAML mapping (a recipe written to a file without a suffix)."""
    import yaml

    try:
        return isinstance(yaml.safe_load(path.read_text()), dict)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False


@functools.lru_cache(maxsize=1)
def _parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


_OVERRIDE_KEY = re.compile(r"[+~]{0,2}[\w\-/@:]+(\.[\w\-/@:]+)*")
_SYNTAX = ("write key=value; with -m, key=a,b,c runs each value (no empty items); quote a "
           "value holding a comma, bracket or brace: \"key='a,b'\"")


def _parse(text: str):
    from hydra.errors import HydraException

    try:
        ov = _parser().parse_override(text)
    except HydraException as e:  # OverrideParseException, and grammar errors raised bare
        key, eq, value = text.partition("=")
        grammar = str(e).splitlines()[0].split(" expecting ")[0]  # not ANTLR's token list
        what = "a valid value" if eq and _OVERRIDE_KEY.fullmatch(key) else "a valid override"
        from orchestrator.secrets import masked

        shown = masked(text)   # a pasted key is not echoed (nor Hydra's quote of it)
        if shown != text:
            value, grammar = "", "the value of a credential is not shown"
        raise ConfigError(f"override '{shown}': not {what}{_value_problem(value, key)}; "
                          f"Hydra: {grammar}", hint=_SYNTAX) from None
    if not ov.key_or_group:   # '=1' parses, with an empty key that reads as the config folder
        raise ConfigError(f"override '{text}': no key before the '='; expected KEY=VALUE",
                          hint="write the key to set, e.g. steps.NAME.FIELD=VALUE (a key "
                               "from an unset shell variable, $KEY=1, comes out empty)")
    return ov


def _value_problem(value: str, key: str = "key") -> str:
    """A likely cause of an override value that does not parse, for the message ("" if none).

    >>> _value_problem("0.1,"), _value_problem("{a: 1"), _value_problem("[1,"), _value_problem("x")
    (' (an empty item in a comma list?)', " (an unclosed '{'?)", " (an unclosed '['?)", '')
    >>> print(_value_problem("~/data/c.jsonl", "data.corpus"))
     (a '~' must be quoted: "data.corpus='~/data/c.jsonl'"; a path's ~ is then your home folder)
    >>> print(_value_problem("~/a.jsonl,~/b.jsonl", "data.corpus"))   # a sweep stays two values
     (a '~' must be quoted: "data.corpus='~/a.jsonl','~/b.jsonl'"; a path's ~ is then your home \
folder)
    """
    for opening, closing in ("{}", "[]", "()"):
        if value.count(opening) > value.count(closing):
            return f" (an unclosed '{opening}'?)"
    if re.search(r"^,|,\s*,|,\s*$", value):
        return " (an empty item in a comma list?)"
    if "~" in value and "'" not in value:   # the shell leaves ~ alone after "key="
        quoted = re.sub(r"(~[^,\[\]{}\s]*)", r"'\1'", value)   # each path, the commas kept
        return (f" (a '~' must be quoted: \"{key}={quoted}\"; a path's ~ is then your home "
                "folder)")
    return ""


def _check_repeats(parsed: list[tuple[str, Any]], multirun: bool) -> None:
    """Refuse a key given twice: Hydra would let the last one win without a word (and a sweep
    would count members that are the same config). ``~key`` then ``+key=...`` replaces a key."""
    from hydra.core.override_parser.types import OverrideType

    seen: dict[tuple, tuple[str, Any]] = {}
    for text, ov in parsed:
        name = (ov.key_or_group, ov.package)
        first = seen.get(name)
        if first is not None and not (first[1].type == OverrideType.DEL and ov.type != OverrideType.DEL):
            key = ov.get_key_element().lstrip("+~")
            hint = (f"keep one; to sweep more values list them once: {key}=a,b,c" if multirun
                    else "keep one (the last would win silently)")
            raise ConfigError(f"override {key} is given twice ('{first[0]}' and '{text}')",
                              hint=hint)
        seen[name] = (text, ov)


def _expand(overrides: list[str], multirun: bool) -> list[list[tuple[str, Any]]]:
    """The members of a sweep: for each, its (override text, parsed override) pairs. Each
    override is parsed once; a sweep's values become element overrides without parsing again."""
    from hydra.core.override_parser.types import ValueType

    parsed = [(text, _parse(text)) for text in overrides]
    _check_repeats(parsed, multirun)
    axes = []
    for text, ov in parsed:
        if not ov.is_sweep_override():
            axes.append([(text, ov)])
            continue
        if not multirun:
            from orchestrator.secrets import masked

            raise ConfigError(f"override '{masked(text)}' is a sweep; add -m to run every "
                              "value", hint=f"add -m before the overrides, quoted for the "
                                            f"shell: -m {shlex.quote(masked(text))}")
        key = ov.get_key_element()
        _check_sweep_repeats(text, key, ov)
        axes.append([(f"{key}={s}", dataclasses.replace(ov, value_type=ValueType.ELEMENT, _value=v,
                                                      input_line=f"{key}={s}"))
                     for v, s in zip(ov.sweep_iterator(), ov.sweep_string_iterator())])
    return [list(combo) for combo in itertools.product(*axes)]


def _check_sweep_repeats(text: str, key: str, ov) -> None:
    """Refuse a sweep that lists a value twice (``a=0.1,0.1``): it would run the same member
    twice. Values are compared as parsed, with their type (``1`` and ``1.0`` differ)."""
    seen: dict[tuple, str] = {}
    repeated: list[str] = []
    for value, shown in zip(ov.sweep_iterator(), ov.sweep_string_iterator()):
        same = (type(value).__name__, repr(value))
        if same not in seen:
            seen[same] = shown
        elif not repeated:
            first = seen[same]
            repeated.append(f"'{shown}'" if shown == first else f"'{shown}' (= '{first}')")
    if repeated:
        raise ConfigError(f"override '{text}': the sweep lists the value {repeated[0]} twice; "
                          "it would run the same member twice",
                          hint=f"remove the repeat: {key}={','.join(seen.values())}")


def expand_sweep(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The members of a sweep as lists of plain overrides (Hydra's basic sweeper order).

    >>> expand_sweep(["a=1,2", "b=x"], multirun=True)
    [['a=1', 'b=x'], ['a=2', 'b=x']]
    """
    return [[text for text, _ in member] for member in _expand(overrides, multirun)]


def _is_group(recipe: Path, ov) -> bool:
    key = ov.key_or_group
    return bool(key) and config_path(recipe, key).is_dir()


def _check_group_value(recipe: Path, text: str, ov) -> None:
    """A config group override names an option (``executor=local``), not a number: Hydra's
    own message (``Got int``) names neither the override nor the options."""
    from hydra.core.override_parser.types import OverrideType

    value = ov.value()
    if ov.type == OverrideType.DEL or isinstance(value, (str, list)):
        return
    group = ov.key_or_group
    options = _in_dirs(recipe, group)[0]
    got = "null" if value is None else _a(type(value).__name__)
    raise ConfigError(f"override '{text}': {group} is a config group; expected the name of one "
                      f"of its options, got {got}",
                      hint=f"write {group}=OPTION (options in {group}/: "
                           f"{', '.join(options) or 'none'})"
                           + (f"; to drop the group write ~{group}" if value is None else ""))


def _check_override(ov, text: str, recipe: Path, exists: bool, siblings) -> None:
    """The rules of one value override, shared by both appliers (OmegaConf and plain dicts).

    A stage config field left at its default is not in the YAML, so ``steps.X.field=v`` (and
    ``repeat.B.steps.X.field=v``) may set a new key there (``build_dag`` then checks the name
    against the stage's config).
    """
    from hydra.core.override_parser.types import OverrideType

    key = ov.key_or_group
    parts = key.split(".")
    in_step = ((len(parts) == 3 and parts[0] == "steps")      # or a repeat block's template step:
               or (len(parts) == 5 and parts[0] == "repeat" and parts[2] == "steps"))
    if ov.type == OverrideType.DEL and not exists:
        raise ConfigError(f"override '{text}': no key '{key}' to delete in {recipe.name}")
    if ov.type == OverrideType.CHANGE and not exists and not in_step:
        from orchestrator.secrets import masked

        near = difflib.get_close_matches(parts[-1], [str(s) for s in siblings], n=1, cutoff=0.6)
        value, text = text.partition('=')[2], masked(text)   # a key given: quoted as ***
        if not value:   # `key=` sets '': +key= would add an empty key, rarely what was meant
            hint = _empty_value_hint(parts, near[0] if near else None)
        elif near and masked(f"{parts[-1]}=v") != f"{parts[-1]}=v":   # api_key -> api_key_env
            hint = f"write {'.'.join([*parts[:-1], near[0]])}=NAME, the variable that holds it"
        elif near:
            hint = f"write {'.'.join([*parts[:-1], near[0]])}={value}"
        elif len(parts) == 1:   # a new top-level key does nothing unless the recipe reads it
            where = os.path.relpath(recipe)
            hint = (f"rag config {recipe if where.startswith('..') else where} lists its keys; a "
                    f"new one (+{text}) is used only where the recipe reads it, as ${{{key}}}")
        else:
            hint = f"to add a new key write +{text}"
        raise ConfigError(f"override '{text}': {recipe.name} has no key '{key}'"
                          f"{did_you_mean(parts[-1], list(siblings))}", hint=hint)
    if ov.type == OverrideType.ADD and exists:
        raise ConfigError(f"override '{text}': key '{key}' already exists",
                          hint=f"to change it write {text.lstrip('+')}")
    if ov.type == OverrideType.ADD and len(parts) == 2 and parts[0] == "steps" \
            and ov.value() is None:   # steps.X=null removes a step; +steps.X=null removes none
        raise ConfigError(f"override '{text}': there is no step '{parts[1]}' to remove"
                          f"{did_you_mean(parts[1], [str(s) for s in siblings])}",
                          hint=f"steps.STEP=null removes a step (no '+'); {parts[1]} is not one")


def _empty_value_hint(parts: list[str], near: str | None) -> str:
    """The hint for ``key=`` (an empty value) on a key the config lacks: what the empty value
    means and the likely intent (the close key, or a new step's stage).

    >>> _empty_value_hint(["steps", "x"], None)
    "an empty value sets '' (an empty string), not a step; to add a step write +steps.x.stage=NAME (rag stages lists the stages)"
    >>> _empty_value_hint(["steps", "dpoo"], "dpo")
    "an empty value sets '' (an empty string), not a step; to remove step 'dpo' write steps.dpo=null"
    """
    key = ".".join(parts)
    if parts[0] == "steps" and len(parts) == 2:
        if near:
            return (f"an empty value sets '' (an empty string), not a step; to remove step "
                    f"'{near}' write steps.{near}=null")
        return (f"an empty value sets '' (an empty string), not a step; to add a step write "
                f"+{key}.stage=NAME (rag stages lists the stages)")
    if near:
        close = ".".join([*parts[:-1], near])
        return f"{close}= sets it to '' (an empty string), {close}=null to null"
    return (f"an empty value sets '' (an empty string), {key}=null sets null; to add the key "
            f"write +{key}=VALUE")


def _no_key(text: str, recipe: Path, parts: list[str], depth: int, siblings: list,
            repeat=None) -> ConfigError:
    """Override ``text`` names a key whose part ``parts[depth]`` is not there (``siblings`` are);
    ``repeat``: the config's ``repeat:`` blocks, whose unrolled steps (``generator_1``) are
    set through their template."""
    missing = ".".join(parts[:depth + 1])
    template = _unrolled(repeat, parts[1]) if parts[0] == "steps" and depth == 1 else None
    if template is not None:
        value = text.partition("=")[2]
        where = ".".join([template, *parts[2:]])
        block = template.split(".")[1]
        return ConfigError(f"override '{text}': step '{parts[1]}' is unrolled from the repeat "
                           f"block '{block}', whose steps are set for every round at once, "
                           f"under {template}",
                           hint=f"write {where}{'=' + value if value else ''} (every round)")
    near = did_you_mean(parts[depth], [str(k) for k in siblings])
    if near:
        hint = None
    elif parts[0] == "steps" and depth == 1:
        hint = f"a new step needs its stage: +{missing}={{stage: NAME}} (rag stages lists them)"
    else:
        hint = f"to add a new key write +{text}"
    return ConfigError(f"override '{text}': {recipe.name} has no key '{missing}'{near}", hint=hint)


def _unrolled(repeat, name: str) -> str | None:
    """``repeat.BLOCK.steps.BASE`` when step ``name`` (``generator_1``) is unrolled from a
    ``repeat:`` block (a plain or an OmegaConf mapping) with a step ``BASE``, else None.

    >>> _unrolled({"round": {"steps": {"generator": {}}}}, "generator_1"), _unrolled({}, "g_1")
    ('repeat.round.steps.generator', None)
    """
    base, _, number = name.rpartition("_")
    if not (base and number.isdigit() and isinstance(repeat, Mapping)):
        return None
    for block, body in repeat.items():
        steps = body.get("steps") if isinstance(body, Mapping) else None
        if isinstance(steps, Mapping) and base in steps:
            return f"repeat.{block}.steps.{base}"
    return None


def _apply(cfg, ov, text: str, recipe: Path) -> None:
    """Apply one value override to an OmegaConf config, in place (the exact path)."""
    from hydra.core.override_parser.types import OverrideType
    from omegaconf import OmegaConf, open_dict

    key = ov.key_or_group
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, default=None) if parent else cfg
    sentinel = object()
    exists = OmegaConf.select(cfg, key, default=sentinel, throw_on_missing=False,  # replaced:
                              throw_on_resolution_failure=False) is not sentinel  # not resolved
    is_dict = node is not None and OmegaConf.is_dict(node)
    if ov.type == OverrideType.CHANGE and not is_dict:  # steps.dpoo.x=1: say where it goes wrong
        parts, here = key.split("."), cfg
        for depth, part in enumerate(parts[:-1]):
            child = here.get(part)                  # here is always a mapping
            if child is None or not OmegaConf.is_dict(child):
                raise _no_key(text, recipe, parts, depth, list(here.keys()), cfg.get("repeat"))
            here = child
    _check_override(ov, text, recipe, exists, node.keys() if is_dict else [])
    with open_dict(cfg):
        if ov.type == OverrideType.DEL:
            del node[leaf]
        else:
            OmegaConf.update(cfg, key, ov.value(), merge=False, force_add=True)


def compose(recipe: Path, overrides: list[str], multirun: bool = False) -> list[Member]:
    """Compose ``recipe`` with ``overrides``; one Member per sweep combination.

    Remembering the result between commands is ``orchestrator.remember``'s job, not this one's.
    """
    return _compose(recipe, overrides, multirun)


def _compose_error(recipe: Path, e: Exception) -> ConfigError:
    """One line for a Hydra/YAML failure: a YAML syntax error keeps its file, line and column,
    a bad interpolation its key (``place`` adds the key's file:line), a file that is not UTF-8
    its line and byte."""
    from omegaconf.errors import OmegaConfBaseException

    causes, cause = [], e
    while cause is not None and len(causes) < 10:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    for cause in causes:
        if isinstance(cause, UnicodeDecodeError):
            return _not_utf8(recipe, cause)
        if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
            return _omegaconf_error(cause)
    mark = getattr(e, "problem_mark", None)
    if mark is not None:
        problem = getattr(e, "problem", None) or str(e).strip().splitlines()[0]
        context = getattr(e, "context", None)
        tab = "'\\t'" in problem   # PyYAML names a tab as '\t'
        return ConfigError(f"{mark.name}:{mark.line + 1}:{mark.column + 1}: YAML syntax: {problem}"
                           + (f" ({context})" if context else ""),
                           hint="YAML indents with spaces, never tabs: replace the tab at that "
                                "line with spaces" if tab else None)
    text = str(e).strip()
    first = text.splitlines()[0] if text else type(e).__name__
    if re.match(r"primary config '[^']*' must be a DictConfig, got ListConfig", first):
        first_line = _first_line(recipe.read_text()) if recipe.is_file() else None
        shown = f" (line {first_line[0]}: {first_line[1]!r})" if first_line else ""
        return ConfigError(f"{recipe}: a recipe must be a mapping (steps:, data:, ...), got a "
                           f"list{shown}",
                           hint="write the recipe's top level as keys (steps:, sources:, ...), "
                                "not '- ' items; see conf/ for examples")
    append = re.search(r"Could not override '([^']+)'.*\n.*use (\+\S+)", text)
    if append and config_path(recipe, append.group(1)).is_dir():  # dpa_rag=x without the +
        return ConfigError(f"{recipe}: {first}", hint=f"the recipe's defaults list has no "
                           f"'{append.group(1)}' to change: add it with {append.group(2)}")
    unknown = re.match(r"In '([^']+)': Could not load '([^']+)'", first)
    if unknown:   # defaults: [nope]
        return _unknown_default(recipe, unknown.group(1), unknown.group(2))
    group_entry = re.match(r"In '([^']+)': Could not find '([^']+)/([^'/]+)'", first)
    if group_entry:   # defaults: [executr: local] or [executor: locall], not executor=locall
        found = _unknown_group_entry(recipe, *group_entry.groups())
        if found is not None:
            return found
    options = re.search(r"Available options in '([^']+)':\n((?:\t.*\n?)+)", text)
    missing = re.search(r"Could not find '[^']*?([^'/]+)'", first)
    if options:   # a group choice typo: executor=rey
        names = [n.strip() for n in options.group(2).splitlines() if n.strip()]
        tried = missing.group(1) if missing else ""
        first += (f"{did_you_mean(tried, names)}; the options in '{options.group(1)}' are: "
                  f"{', '.join(names)}")
    return ConfigError(f"{recipe}: {first}")


def _in_dirs(recipe: Path, folder: str) -> tuple[list[str], list[str]]:
    """(config names, group names) in ``folder`` (relative, "" for the top) of every one of
    the recipe's :func:`config_dirs`, merged as Hydra's search path merges them; the shipped
    recipes at the top of the shipped ``conf/`` are recipes, not configs to compose, and are
    not offered."""
    configs, groups = set(), set()
    for i, d in enumerate(config_dirs(recipe)):
        here = d / folder
        if here.is_dir():
            if i == 0 or folder:
                configs |= {p.stem for p in here.glob("*.yaml")}
            groups |= {p.name for p in here.iterdir() if p.is_dir() and any(p.glob("*.yaml"))}
    return sorted(configs), sorted(groups)


def _folder_shown(recipe: Path, folder: str) -> str:
    """``folder`` (relative, "" for the top) as a message names it: ``conf/``, ``executor/``,
    followed by the shipped ``conf/`` when that is searched too."""
    dirs = config_dirs(recipe)
    shown = f"{folder}/" if folder else f"{dirs[0].name}/"
    return shown + (f" (or the shipped {dirs[1] / folder})" if len(dirs) > 1 else "")


def _unknown_default(recipe: Path, parent: str, name: str) -> ConfigError:
    """A defaults-list entry ``name`` of config ``parent`` (a name relative to the recipe's
    folder) that is no config there nor in the shipped ``conf/``: at the entry's line, with the
    configs that are."""
    from orchestrator.where import default_entry

    file = config_path(recipe, f"{parent}.yaml")
    folder, _, stem = name.rpartition("/")
    where = default_entry(file, stem) or str(file)
    configs, groups = _in_dirs(recipe, folder)
    configs = [c for c in configs if f"{folder}/{c}".lstrip("/") != parent]   # not itself
    choices = ", ".join(configs) or "none"
    if groups:
        choices += f"; groups (written - GROUP: OPTION): {', '.join(groups)}"
    return ConfigError(f"{where}: defaults: '{name}' is not a config in "
                       f"{_folder_shown(recipe, folder)} (no {stem}.yaml)"
                       f"{did_you_mean(stem, configs + groups)}",
                       hint=f"name a config there: {choices}")


def _unknown_group_entry(recipe: Path, parent: str, group: str,
                         option: str) -> ConfigError | None:
    """A defaults-list entry ``- GROUP: OPTION`` of config ``parent`` whose group folder or
    option file is neither in the recipe's folder nor in the shipped ``conf/``: at the entry's
    line, with the groups (or the group's options) there and the closest one. None when no
    entry of ``parent`` names ``option`` (the choice came from the command line:
    ``executor=locall``)."""
    from orchestrator.where import default_entry

    written = group.rpartition("/")[2]
    where = default_entry(config_path(recipe, f"{parent}.yaml"), option, group=written)
    if where is None:
        return None
    options, _ = _in_dirs(recipe, group)
    if config_path(recipe, group).is_dir():
        near = difflib.get_close_matches(option, options, n=1, cutoff=0.6)
        return ConfigError(f"{where}: defaults: '{written}: {option}': config group {group}/ "
                           f"has no option '{option}' (no {group}/{option}.yaml)"
                           f"{did_you_mean(option, options)}; expected one of: "
                           f"{', '.join(options) or 'none'}",
                           hint=f"write - {written}: {near[0] if near else 'OPTION'}")
    inside = group.rpartition("/")[0]
    _, groups = _in_dirs(recipe, inside)
    near = difflib.get_close_matches(written, groups, n=1, cutoff=0.6)
    shown = _folder_shown(recipe, inside)
    if groups:
        expected = f"expected a config group there: {', '.join(groups)}"
    else:
        expected = f"{shown} has no config groups (folders of .yaml files) at all"
    if near:
        hint = f"write - {near[0]}: {option}"
    elif groups:
        hint = f"write - GROUP: {option} with a group in {shown}"
    else:   # a recipe copied out of conf/ alone, with no shipped conf/ to fall back on
        hint = (f"config groups are folders next to the recipe ({recipe.parent}); keep the "
                "recipe in a conf/ folder that holds them (e.g. copy the project's conf/ "
                "folder, not the recipe alone)")
    return ConfigError(f"{where}: defaults: '{written}: {option}': no config group '{written}' "
                       f"in {shown} (no folder {group}/){did_you_mean(written, groups)}; "
                       f"{expected}", hint=hint)


def _not_utf8(recipe: Path, e: UnicodeDecodeError) -> ConfigError:
    """The recipe file (or a file it composes) holding ``e.object``, with the bad byte's line."""
    from orchestrator.where import composed

    data = bytes(e.object)
    files = composed(recipe) + sorted(p for d in config_dirs(recipe)   # and config groups' files
                                      for p in d.glob("*/*.yaml"))
    path = next((f for f in files if f.is_file() and f.read_bytes() == data), None)
    line = data.count(b"\n", 0, e.start) + 1
    column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
    where = f"{path}:{line}:{column}" if path else f"{recipe}: a file it composes, line {line}"
    return ConfigError(f"{where}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start})",
                       hint="save the file as UTF-8 (a Latin-1 file: iconv -f latin1 -t utf-8)")


def _omegaconf_error(e) -> ConfigError:
    """An OmegaConf error at a key, as ``key: what is wrong``; ``place`` adds the file:line."""
    from omegaconf.errors import GrammarParseError

    key = getattr(e, "full_key", "") or ""
    first = str(e).strip().splitlines()[0]
    value = getattr(e, "value", None)
    if isinstance(e, GrammarParseError) and isinstance(value, str):
        unterminated = value.count("${") > value.count("}")
        what = "unterminated interpolation ${...}" if unterminated else "invalid interpolation"
        return ConfigError(f"{key + ': ' if key else ''}{what} in {value!r} (OmegaConf: {first})",
                           hint="close it: ${other.key}; for a literal '${' write '\\${'",
                           key=key or None)
    missing = re.fullmatch(r"Interpolation key '([^']+)' not found", first)
    if missing:   # often a step copied from a shipped recipe, without the section it reads
        ref = missing.group(1)
        section, _, leaf = ref.rpartition(".")
        define = f"{section}: {{{leaf}: ...}}" if section else f"{ref}: ..."
        return ConfigError(f"{key + ': ' if key else ''}${{{ref}}} reads a key the recipe does "
                           "not set", hint=f"set it in the recipe ({define}) or write the value "
                                           "itself; a step copied from a shipped recipe reads "
                                           "that recipe's sections", key=key or None)
    at = f"{key}: " if key else ""
    unset = re.search(r"Environment variable '([^']+)' not found", first)
    if unset:
        var = unset.group(1)
        return ConfigError(f"{at}${{oc.env:{var}}} reads the environment variable {var}, which is "
                           "not set", hint=f"export {var}=VALUE before running rag, or give it a "
                                           f"default: ${{oc.env:{var},DEFAULT}}", key=key or None)
    if first.startswith("Recursive interpolation detected"):
        return ConfigError(f"{at}the value refers to itself (OmegaConf: {first})",
                           hint="write the value itself, or a reference to another key",
                           key=key or None)
    unknown = re.fullmatch(r"Unsupported interpolation type (\S+)", first)
    if unknown:
        from omegaconf.basecontainer import BaseContainer

        known = sorted(getattr(BaseContainer, "_resolvers", {}))   # OmegaConf lists none publicly
        return ConfigError(f"{at}no resolver '{unknown.group(1)}' in ${{{unknown.group(1)}:…}}"
                           f"{did_you_mean(unknown.group(1), known)}",
                           hint=f"the resolvers here: {', '.join(known)}", key=key or None)
    return ConfigError(f"{'key ' + key + ': ' if key else ''}{first}", key=key or None)


_RESOLVER = re.compile(r"^\s*[\w.\-]+:")  # ${name:args}: a resolver call, not a key reference


def _interpolation_refs(node, out: list[str]) -> list[str]:
    """Every ``${...}`` body in an unresolved plain config."""
    if isinstance(node, dict):
        for v in node.values():
            _interpolation_refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _interpolation_refs(v, out)
    elif isinstance(node, str) and "${" in node:
        out += re.findall(r"\$\{([^}]*)\}", node) or ["."]
    return out


def _base_view(base) -> tuple[dict, list[str], dict[str, str]]:
    """(resolved plain dict, every ``${…}`` body, secrets) of a composed base config."""
    from omegaconf import OmegaConf

    resolved, secrets = _resolve(base)
    return resolved, _interpolation_refs(OmegaConf.to_container(base, resolve=False), []), secrets


def _touches_interpolation(values, refs: list[str]) -> bool:
    """Whether an override may change an interpolated value (then the slow, exact path runs).

    A relative reference (``${.x}``) or a resolver other than OmegaConf's own (``oc.env`` …) may
    depend on anything, so it always takes the exact path.
    """
    for _, ov in values:
        key = ov.key_or_group
        value = ov.value() if ov.value() is not None else ""
        if isinstance(value, str) and "${" in value:
            return True
        for ref in refs:
            if ref.startswith(".") or (_RESOLVER.match(ref) and not ref.startswith("oc.")):
                return True
            if ref == key or ref.startswith(key + ".") or key.startswith(ref + "."):
                return True
    return False


def _resolve(cfg) -> tuple[dict, dict[str, str]]:
    from omegaconf.errors import OmegaConfBaseException

    from orchestrator.secrets import resolve_recording

    try:
        return resolve_recording(cfg)
    except OmegaConfBaseException as e:
        raise _omegaconf_error(e) from None


def _apply_plain(config: dict, ov, text: str, recipe: Path) -> dict:
    """``config`` with one override applied, copying only the dicts along the key's path (the
    sweep fast path: same rules as ``_apply``)."""
    from hydra.core.override_parser.types import OverrideType

    parts = ov.key_or_group.split(".")
    root = dict(config)
    node = root
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if not isinstance(child, dict):
            if ov.type in (OverrideType.ADD, OverrideType.FORCE_ADD) and child is None:
                child = {}
            else:
                raise _no_key(text, recipe, parts, depth, list(node), config.get("repeat"))
        node[part] = dict(child)
        node = node[part]
    leaf = parts[-1]
    _check_override(ov, text, recipe, leaf in node, node)
    if ov.type == OverrideType.DEL:
        del node[leaf]
    else:
        node[leaf] = ov.value()
    return root


def _compose_base(recipe: Path, groups: tuple):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    try:   # Hydra's warnings (a defaults list without _self_) name its own files, not the recipe
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"hydra\.")
            with initialize_config_dir(config_dir=str(recipe.parent), version_base=None):
                return hydra_compose(config_name=recipe.stem,
                                     overrides=_search_path(recipe) + list(groups))
    except Exception as e:  # noqa: BLE001 - Hydra raises many kinds; all are config errors
        raise _compose_error(recipe, e) from None
    finally:
        GlobalHydra.instance().clear()


def _search_path(recipe: Path) -> list[str]:
    """Hydra's override adding the shipped ``conf/`` behind the recipe's own folder
    (:func:`config_dirs`), or none.

    >>> _search_path(shipped_conf() / "dynamicrag_demo.yaml")
    []
    >>> _search_path(Path("/tmp/mine/my.yaml")) == [f"hydra.searchpath=['file://{shipped_conf()}']"]
    True
    """
    extra = config_dirs(recipe)[1:]
    quoted = ", ".join("'file://" + str(d).replace("\\", "\\\\").replace("'", "\\'") + "'"
                       for d in extra)
    return [f"hydra.searchpath=[{quoted}]"] if extra else []


def _compose(recipe: Path, overrides: list[str], multirun: bool) -> list[Member]:
    """Each distinct set of group choices composed once; a sweep member whose values touch no
    interpolation is the resolved base with its values applied as plain dicts (fast path),
    any other member is applied and resolved by OmegaConf (exact path)."""
    from omegaconf import OmegaConf

    members = _expand(overrides, multirun)
    bases: dict[tuple, Any] = {}
    views: dict[tuple, tuple] = {}  # groups -> _base_view
    free: dict[tuple, FreeKeys] = {}  # groups -> what the base's interpolations read
    typed = {text.partition("=")[0]: text for text in overrides}  # a sweep's key=a,b as given
    out = []
    for i, pairs in enumerate(members):
        member = [t for t, _ in pairs]
        groups = tuple(t for t, ov in pairs if _is_group(recipe, ov))
        for text, ov in pairs:
            if text in groups:
                _check_group_value(recipe, text, ov)
        if groups not in bases:
            bases[groups] = _compose_base(recipe, groups)
            free[groups] = FreeKeys(recipe, bases[groups], groups)
        values = [(t, ov) for t, ov in pairs if t not in groups]
        if len(members) > 1:
            if groups not in views:
                views[groups] = _base_view(bases[groups])
            resolved, refs, secrets = views[groups]
            if not _touches_interpolation(values, refs):
                config = resolved
                for text, ov in values:
                    config = _apply_plain(config, ov, text, recipe)
                notes = free[groups].check(values, typed)
                _check_steps(recipe, config)
                _check_deleted_steps(config, values)
                touched = [ov.key_or_group for _, ov in values]
                mine = {p: t for p, t in secrets.items()
                        if not any(p == k or p.startswith(k + ".") for k in touched)}
                out.append(_member(recipe, member, config, i, mine, _impure(refs), notes))
                continue
        cfg = copy.deepcopy(bases[groups]) if len(members) > 1 else bases[groups]
        for text, ov in values:
            _apply(cfg, ov, text, recipe)
        notes = free[groups].check(values, typed)
        resolved, secrets = _resolve(cfg)
        _check_steps(recipe, resolved)
        _check_deleted_steps(resolved, values)
        refs = _interpolation_refs(OmegaConf.to_container(cfg, resolve=False), [])
        out.append(_member(recipe, member, resolved, i, secrets, _impure(refs), notes))
    return out


def _check_steps(recipe: Path, config: dict) -> None:
    """Refuse a config whose ``steps:`` is not a mapping of steps, saying which case it is: the
    file is empty or not a mapping, ``steps:`` is missing, empty, a list or a scalar. Steps may
    also come from ``repeat:`` blocks (``expand_repeats``), so no steps is fine with those."""
    steps = config.get("steps")
    if isinstance(steps, dict) and steps:
        return
    if steps is None or steps == {}:
        if config.get("repeat"):
            return
        if "steps" in config:
            raise ConfigError("steps: is empty; a recipe needs at least one step",
                              hint="add one under steps:, e.g." + _steps_example([]), key="steps")
        raise _no_steps(recipe, config)
    if isinstance(steps, list):
        first = steps[0] if steps else None
        items = isinstance(first, dict) and len(first) == 1 and isinstance(
            next(iter(first.values())), dict)     # - load: {stage: x}: one mapping per item
        raise ConfigError(f"steps: is a list ({_shown(steps)}); steps are a mapping "
                          "NAME: {stage: STAGE, ...}",
                          hint=("drop the '- ' in front of each step" if items else
                                "write each step as NAME: {stage: STAGE}") + ", e.g."
                               + _steps_example(steps), key="steps")
    raise ConfigError(f"steps: is {_a(type(steps).__name__)} ({_shown(steps)}), not a mapping "
                      "of steps NAME: {stage: STAGE, ...}",
                      hint="write each step under steps:, e.g." + _steps_example([]), key="steps")


def _a(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _shown(value, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _steps_example(steps) -> str:
    """Two lines of a ``steps:`` mapping, named after the first item of a list of steps.

    >>> print(_steps_example(["load"]))
    <BLANKLINE>
          steps:
            load: {stage: STAGE, ...}
    """
    first = steps[0] if isinstance(steps, list) and steps else None
    if isinstance(first, dict) and len(first) == 1:
        first = next(iter(first))
    name = first if isinstance(first, str) and re.fullmatch(r"[A-Za-z_][\w\-]*", first) else "load"
    return f"\n      steps:\n        {name}: {{stage: STAGE, ...}}"


def _first_line(text: str) -> tuple[int, str] | None:
    """(1-based number, text) of the first line that is not blank or a comment."""
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            return number, line.strip()
    return None


def _no_steps(recipe: Path, config: dict) -> ConfigError:
    """The composed config has no ``steps:``: the recipe file is empty, holds something else
    than a mapping (``hello``: Hydra makes that a key), or its keys lack ``steps:``."""
    import yaml

    try:
        text = recipe.read_text()
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        text, data = "", {}
    first = _first_line(text)
    example = _steps_example([])
    if first is None and not config:
        return ConfigError(f"{recipe}: the file is empty; a recipe names its steps under steps:",
                           hint="write them (conf/ has recipes to copy), e.g." + example)
    if data is not None and not isinstance(data, dict) and first is not None:
        return ConfigError(f"{recipe}:{first[0]}: a recipe must be a mapping (steps:, data:, "
                           f"...), got {_a(type(data).__name__)}: {first[1]!r}",
                           hint="write the recipe's top level as keys, e.g." + example)
    keys = [str(k) for k in config]
    near = difflib.get_close_matches("steps", keys, n=1, cutoff=0.6)
    if near:
        from orchestrator.where import locate

        return ConfigError(f"{locate(recipe, near[0])}: no steps: in the recipe; '{near[0]}:' "
                           "looks like a misspelled steps:",
                           hint=f"rename '{near[0]}:' to 'steps:'")
    has = f"its keys: {', '.join(keys)}" if keys else "it sets no keys"
    return ConfigError(f"{recipe}: no steps: in the recipe ({has}); a recipe names its steps "
                       "under steps:", hint="add them (conf/ has recipes to copy), e.g." + example)


def _check_deleted_steps(config: dict, values) -> None:
    """A step deleted by an override (``~steps.load``) that another step still reads: the error
    names the override, not only the wire (``steps.load: null`` is ``build_dag``'s to report)."""
    from hydra.core.override_parser.types import OverrideType

    deleted = {ov.key_or_group.split(".")[1]: text for text, ov in values
               if ov.type == OverrideType.DEL and re.fullmatch(r"steps\.[^.]+", ov.key_or_group)}
    steps, sources = config.get("steps"), config.get("sources")
    if not deleted or not isinstance(steps, dict):
        return
    gone = {n: t for n, t in deleted.items()
            if n not in steps and not (isinstance(sources, dict) and n in sources)}
    for name, body in steps.items():
        inputs = body.get("inputs") if isinstance(body, dict) else None
        for iname, ref in (inputs.items() if isinstance(inputs, dict) else []):
            node = str(ref).partition(".")[0]
            if ref is not None and node in gone:
                where = f"steps.{name}.inputs.{iname}"
                raise ConfigError(f"{where}: reads step '{node}', which the override "
                                  f"'{gone[node]}' removed",
                                  hint=f"wire it to another step ({where}=STEP), or remove step "
                                       f"'{name}' too (~steps.{name})", key=where)


def _impure(refs: list[str]) -> bool:
    """Whether a config calls a resolver (``${oc.env:…}``, ``${now:…}``): its value may change
    without any file changing."""
    return any(_RESOLVER.match(r) for r in refs)
