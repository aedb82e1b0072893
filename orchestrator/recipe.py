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
import functools
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigError, did_you_mean


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

    @property
    def values(self) -> dict:
        """The config a DAG is built from: secrets as their values. Never write it anywhere."""
        return self.config if self.resolved is None else self.resolved


def _member(recipe: Path, overrides: list[str], resolved: dict, index: int,
            secrets: dict[str, str], impure: bool) -> Member:
    from orchestrator.secrets import redact

    if not secrets:
        return Member(recipe, overrides, resolved, index, {}, impure)
    return Member(recipe, overrides, redact(resolved, secrets), index, secrets, impure, resolved)


def find_recipe(spec: str) -> Path:
    """A recipe path from ``conf/x.yaml``, ``x.yaml`` or a bare name looked up in ``./conf``."""
    path = Path(spec)
    candidates = [path, path.with_suffix(".yaml"), Path("conf") / path, Path("conf") / f"{spec}.yaml"]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    known = [p.stem for p in Path("conf").glob("*.yaml")] if Path("conf").is_dir() else []
    raise ConfigError(f"recipe '{spec}' not found{did_you_mean(path.stem, known)}",
                      hint="give a path like conf/dynamicrag_demo.yaml" +
                           (f"; recipes in conf/: {', '.join(sorted(known))}" if known else ""))


@functools.lru_cache(maxsize=1)
def _parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


def _parse(text: str):
    from hydra.errors import HydraException

    try:
        return _parser().parse_override(text)
    except HydraException as e:  # OverrideParseException, and grammar errors raised bare
        raise ConfigError(f"override '{text}': {str(e).splitlines()[0]}",
                          hint="Hydra override grammar: key=value, +key=value, ~key, "
                               "key=a,b (with -m)") from None


def _expand(overrides: list[str], multirun: bool) -> list[list[tuple[str, Any]]]:
    """The members of a sweep: for each, its (override text, parsed override) pairs. Each
    override is parsed once; a sweep's values become element overrides without parsing again."""
    from hydra.core.override_parser.types import ValueType

    axes = []
    for text in overrides:
        ov = _parse(text)
        if not ov.is_sweep_override():
            axes.append([(text, ov)])
            continue
        if not multirun:
            raise ConfigError(f"override '{text}' is a sweep; add -m to run every value",
                              hint=f"rag run RECIPE -m {text}")
        key = ov.get_key_element()
        axes.append([(f"{key}={s}", dataclasses.replace(ov, value_type=ValueType.ELEMENT, _value=v,
                                                      input_line=f"{key}={s}"))
                     for v, s in zip(ov.sweep_iterator(), ov.sweep_string_iterator())])
    return [list(combo) for combo in itertools.product(*axes)]


def expand_sweep(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The members of a sweep as lists of plain overrides (Hydra's basic sweeper order).

    >>> expand_sweep(["a=1,2", "b=x"], multirun=True)
    [['a=1', 'b=x'], ['a=2', 'b=x']]
    """
    return [[text for text, _ in member] for member in _expand(overrides, multirun)]


def _is_group(conf_dir: Path, ov) -> bool:
    key = ov.key_or_group
    return (conf_dir / key).is_dir()


def _check_override(ov, text: str, recipe: Path, exists: bool, siblings) -> None:
    """The rules of one value override, shared by both appliers (OmegaConf and plain dicts).

    A stage config field left at its default is not in the YAML, so ``steps.X.field=v`` may set
    a new key there (``build_dag`` then checks the name against the stage's config).
    """
    from hydra.core.override_parser.types import OverrideType

    key = ov.key_or_group
    parts = key.split(".")
    in_step = len(parts) == 3 and parts[0] == "steps"
    if ov.type == OverrideType.DEL and not exists:
        raise ConfigError(f"override '{text}': no key '{key}' to delete in {recipe.name}")
    if ov.type == OverrideType.CHANGE and not exists and not in_step:
        raise ConfigError(f"override '{text}': {recipe.name} has no key '{key}'"
                          f"{did_you_mean(parts[-1], list(siblings))}", hint=f"to add a new key write +{text}")
    if ov.type == OverrideType.ADD and exists:
        raise ConfigError(f"override '{text}': key '{key}' already exists",
                          hint=f"to change it write {text.lstrip('+')}")


def _no_key(text: str, recipe: Path, parts: list[str], depth: int, siblings: list) -> ConfigError:
    """Override ``text`` names a key whose part ``parts[depth]`` is not there (``siblings`` are)."""
    missing = ".".join(parts[:depth + 1])
    near = did_you_mean(parts[depth], [str(k) for k in siblings])
    if near:
        hint = None
    elif parts[0] == "steps" and depth == 1:
        hint = f"a new step needs its stage: +{missing}={{stage: NAME}} (rag stages lists them)"
    else:
        hint = f"to add a new key write +{text}"
    return ConfigError(f"override '{text}': {recipe.name} has no key '{missing}'{near}", hint=hint)


def _apply(cfg, ov, text: str, recipe: Path) -> None:
    """Apply one value override to an OmegaConf config, in place (the exact path)."""
    from hydra.core.override_parser.types import OverrideType
    from omegaconf import OmegaConf, open_dict

    key = ov.key_or_group
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(cfg, parent, default=None) if parent else cfg
    sentinel = object()
    exists = OmegaConf.select(cfg, key, default=sentinel, throw_on_missing=False) is not sentinel
    is_dict = node is not None and OmegaConf.is_dict(node)
    if ov.type == OverrideType.CHANGE and not is_dict:  # steps.dpoo.x=1: say where it goes wrong
        parts, here = key.split("."), cfg
        for depth, part in enumerate(parts[:-1]):
            child = here.get(part)                  # here is always a mapping
            if child is None or not OmegaConf.is_dict(child):
                raise _no_key(text, recipe, parts, depth, list(here.keys()))
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


def _yaml_error(recipe: Path, e: Exception) -> str:
    """One line for a Hydra/YAML failure; a YAML syntax error keeps its file, line and column."""
    mark = getattr(e, "problem_mark", None)
    if mark is not None:
        problem = getattr(e, "problem", None) or str(e).strip().splitlines()[0]
        context = getattr(e, "context", None)
        return (f"{mark.name}:{mark.line + 1}:{mark.column + 1}: YAML syntax: {problem}"
                + (f" ({context})" if context else ""))
    text = str(e).strip()
    first = text.splitlines()[0] if text else type(e).__name__
    options = re.search(r"Available options in '([^']+)':\n((?:\t.*\n?)+)", text)
    missing = re.search(r"Could not find '[^']*?([^'/]+)'", first)
    if options:   # a group choice typo: executor=rey
        names = [n.strip() for n in options.group(2).splitlines() if n.strip()]
        tried = missing.group(1) if missing else ""
        first += (f"{did_you_mean(tried, names)}; the options in '{options.group(1)}' are: "
                  f"{', '.join(names)}")
    return f"{recipe}: {first}"


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
        first = str(e).strip().splitlines()[0]
        key = getattr(e, "full_key", "")
        raise ConfigError(f"{'key ' + key + ': ' if key else ''}{first}", key=key or None) from None


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
                raise _no_key(text, recipe, parts, depth, list(node))
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
    try:
        with initialize_config_dir(config_dir=str(recipe.parent), version_base=None):
            return hydra_compose(config_name=recipe.stem, overrides=list(groups))
    except Exception as e:  # noqa: BLE001 - Hydra raises many kinds; all are config errors
        raise ConfigError(_yaml_error(recipe, e)) from None
    finally:
        GlobalHydra.instance().clear()


def _compose(recipe: Path, overrides: list[str], multirun: bool) -> list[Member]:
    """Each distinct set of group choices composed once; a sweep member whose values touch no
    interpolation is the resolved base with its values applied as plain dicts (fast path),
    any other member is applied and resolved by OmegaConf (exact path)."""
    from omegaconf import OmegaConf

    members = _expand(overrides, multirun)
    bases: dict[tuple, Any] = {}
    views: dict[tuple, tuple] = {}  # groups -> _base_view
    out = []
    for i, pairs in enumerate(members):
        member = [t for t, _ in pairs]
        groups = tuple(t for t, ov in pairs if _is_group(recipe.parent, ov))
        if groups not in bases:
            bases[groups] = _compose_base(recipe, groups)
        values = [(t, ov) for t, ov in pairs if t not in groups]
        if len(members) > 1:
            if groups not in views:
                views[groups] = _base_view(bases[groups])
            resolved, refs, secrets = views[groups]
            if not _touches_interpolation(values, refs):
                config = resolved
                for text, ov in values:
                    config = _apply_plain(config, ov, text, recipe)
                touched = [ov.key_or_group for _, ov in values]
                mine = {p: t for p, t in secrets.items()
                        if not any(p == k or p.startswith(k + ".") for k in touched)}
                out.append(_member(recipe, member, config, i, mine, _impure(refs)))
                continue
        cfg = copy.deepcopy(bases[groups]) if len(members) > 1 else bases[groups]
        for text, ov in values:
            _apply(cfg, ov, text, recipe)
        resolved, secrets = _resolve(cfg)
        refs = _interpolation_refs(OmegaConf.to_container(cfg, resolve=False), [])
        out.append(_member(recipe, member, resolved, i, secrets, _impure(refs)))
    return out


def _impure(refs: list[str]) -> bool:
    """Whether a config calls a resolver (``${oc.env:…}``, ``${now:…}``): its value may change
    without any file changing."""
    return any(_RESOLVER.match(r) for r in refs)
