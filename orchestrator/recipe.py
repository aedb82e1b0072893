"""Compose a recipe with Hydra, apply overrides, and expand ``-m`` sweeps into members.

A recipe is an ordinary Hydra config file (defaults lists, config groups, interpolation). Config
group overrides (``executor=slurm``) go through Hydra's compose API; value overrides
(``steps.dpo.beta=0.05``, ``+x=1``, ``++x=1``, ``~x``) are parsed by Hydra's override parser and
applied to the composed config. Each distinct set of group choices is composed once, so a
1,000-member sweep costs one compose plus 1,000 cheap applications.
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigError, did_you_mean


@dataclass
class Member:
    """One composed configuration: a plain run, or one member of a sweep."""

    recipe: Path
    overrides: list[str]
    config: dict  # resolved, plain containers
    index: int = 0


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


def _parse(overrides: list[str]):
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            parsed.append(parser.parse_override(text))
        except OverrideParseException as e:
            msg = str(e).splitlines()[0]
            raise ConfigError(f"override '{text}': {msg}",
                              hint="Hydra override grammar: key=value, +key=value, ~key, "
                                   "key=a,b (with -m)") from None
    return parsed


def expand_sweep(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The members of a sweep as lists of plain overrides (Hydra's basic sweeper order).

    >>> expand_sweep(["a=1,2", "b=x"], multirun=True)
    [['a=1', 'b=x'], ['a=2', 'b=x']]
    """
    parsed = _parse(overrides)
    axes = []
    for text, ov in zip(overrides, parsed):
        if ov.is_sweep_override():
            if not multirun:
                raise ConfigError(f"override '{text}' is a sweep; add -m to run every value",
                                  hint=f"rag run RECIPE -m {text}")
            key = ov.get_key_element()
            axes.append([f"{key}={v}" for v in ov.sweep_string_iterator()])
        else:
            axes.append([text])
    return [list(combo) for combo in itertools.product(*axes)]


def _is_group(conf_dir: Path, ov) -> bool:
    key = ov.key_or_group
    return (conf_dir / key).is_dir()


def _apply(cfg, ov, text: str, recipe: Path) -> None:
    from hydra.core.override_parser.types import OverrideType
    from omegaconf import OmegaConf, open_dict

    key = ov.key_or_group
    sentinel = object()
    exists = OmegaConf.select(cfg, key, default=sentinel, throw_on_missing=False) is not sentinel
    with open_dict(cfg):
        if ov.type == OverrideType.DEL:
            if not exists:
                raise ConfigError(f"override '{text}': no key '{key}' to delete in {recipe.name}")
            parent, _, leaf = key.rpartition(".")
            node = OmegaConf.select(cfg, parent) if parent else cfg
            del node[leaf]
            return
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent, default=None) if parent else cfg
        # A stage config field left at its default is not in the YAML: allow steps.X.field=v
        # (build_dag then checks the field name against the stage's config, with did-you-mean).
        in_step = parent.startswith("steps.") and parent.count(".") == 1 and OmegaConf.is_dict(node)
        if ov.type == OverrideType.CHANGE and not exists and not in_step:
            siblings = list(node.keys()) if node is not None and OmegaConf.is_dict(node) else []
            raise ConfigError(
                f"override '{text}': {recipe.name} has no key '{key}'{did_you_mean(leaf, siblings)}",
                hint=f"to add a new key write +{text}")
        if ov.type == OverrideType.ADD and exists:
            raise ConfigError(f"override '{text}': key '{key}' already exists",
                              hint=f"to change it write {text.lstrip('+')}")
        OmegaConf.update(cfg, key, ov.value(), merge=False, force_add=True)


def _compose_key(recipe: Path, overrides: list[str], multirun: bool) -> str | None:
    """A key for the composed result: recipe, overrides and every config file's size and mtime.

    None when a config reads the environment or the clock (``${oc.env:…}``, ``${now:…}``).
    """
    import os

    from orchestrator.hashing import key_of

    files = []
    for root, dirs, names in os.walk(recipe.parent):
        dirs.sort()
        for name in sorted(names):
            if name.endswith((".yaml", ".yml")):
                path = os.path.join(root, name)
                with open(path, "rb") as f:
                    text = f.read()
                if b"${oc.env" in text or b"${now" in text:
                    return None
                st = os.stat(path)
                files.append([path, st.st_size, st.st_mtime_ns])
    return key_of([str(recipe), overrides, multirun, files, 1])


def compose(recipe: Path, overrides: list[str], multirun: bool = False,
            cache_dir: Path | None = None) -> list[Member]:
    """Compose ``recipe`` with ``overrides``; one Member per sweep combination.

    With ``cache_dir``, the composed result is remembered: an unchanged recipe with the same
    overrides is not composed again (Hydra costs ~0.3 s; a no-op rerun must stay well under 0.5 s).
    """
    import json

    key = _compose_key(recipe, overrides, multirun) if cache_dir is not None else None
    cached = cache_dir / f"{key}.json" if key else None
    if cached is not None and cached.is_file():
        data = json.loads(cached.read_text())
        return [Member(recipe, m["overrides"], m["config"], i) for i, m in enumerate(data)]
    members = _compose(recipe, overrides, multirun)
    if cached is not None:
        import os

        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps([{"overrides": m.overrides, "config": m.config} for m in members]))
        os.replace(tmp, cached)
    return members


def _interpolation_refs(node, out: list[str]) -> list[str]:
    """Every ``${...}`` body in an unresolved plain config."""
    import re

    if isinstance(node, dict):
        for v in node.values():
            _interpolation_refs(v, out)
    elif isinstance(node, list):
        for v in node:
            _interpolation_refs(v, out)
    elif isinstance(node, str) and "${" in node:
        out += re.findall(r"\$\{([^}]*)\}", node) or ["."]
    return out


def _touches_interpolation(base, values, resolved_bases: dict, groups: tuple) -> bool:
    """Whether an override may change an interpolated value (then the slow, exact path runs)."""
    from omegaconf import OmegaConf

    if groups not in resolved_bases:
        plain = OmegaConf.to_container(base, resolve=False)
        refs = _interpolation_refs(plain, [])
        resolved_bases[groups] = (OmegaConf.to_container(base, resolve=True), refs)
    refs = resolved_bases[groups][1]
    for _, ov in values:
        key = ov.key_or_group
        value = ov.value() if ov.value() is not None else ""
        if isinstance(value, str) and "${" in value:
            return True
        for ref in refs:
            if ref.startswith(".") or ":" in ref and not ref.startswith("oc."):
                return True
            if ref == key or ref.startswith(key + ".") or key.startswith(ref + "."):
                return True
    return False


def _apply_plain(config: dict, ov, text: str, recipe: Path) -> dict:
    """``config`` with one override applied, copying only the dicts along the key's path."""
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
                raise ConfigError(f"override '{text}': {recipe.name} has no key "
                                  f"'{'.'.join(parts[:depth + 1])}'{did_you_mean(part, node)}")
        node[part] = dict(child)
        node = node[part]
    leaf = parts[-1]
    in_step = len(parts) == 3 and parts[0] == "steps"
    if ov.type == OverrideType.DEL:
        if leaf not in node:
            raise ConfigError(f"override '{text}': no key '{ov.key_or_group}' to delete in {recipe.name}")
        del node[leaf]
    elif ov.type == OverrideType.CHANGE and leaf not in node and not in_step:
        raise ConfigError(f"override '{text}': {recipe.name} has no key '{ov.key_or_group}'"
                          f"{did_you_mean(leaf, node)}", hint=f"to add a new key write +{text}")
    elif ov.type == OverrideType.ADD and leaf in node:
        raise ConfigError(f"override '{text}': key '{ov.key_or_group}' already exists",
                          hint=f"to change it write {text.lstrip('+')}")
    else:
        node[leaf] = ov.value()
    return root


def _compose(recipe: Path, overrides: list[str], multirun: bool) -> list[Member]:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    conf_dir = recipe.parent
    members = expand_sweep(overrides, multirun)
    bases: dict[tuple, Any] = {}
    resolved_bases: dict[tuple, tuple] = {}  # groups -> (resolved dict, interpolation refs)
    out = []
    for i, member in enumerate(members):
        parsed = _parse(member)
        groups = tuple(t for t, ov in zip(member, parsed) if _is_group(conf_dir, ov))
        if groups not in bases:
            GlobalHydra.instance().clear()
            try:
                with initialize_config_dir(config_dir=str(conf_dir), version_base=None):
                    bases[groups] = hydra_compose(config_name=recipe.stem, overrides=list(groups))
            except Exception as e:  # noqa: BLE001 - Hydra raises many kinds; all are config errors
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ConfigError(f"{recipe}: {first}") from None
            finally:
                GlobalHydra.instance().clear()
        values = [(t, ov) for t, ov in zip(member, parsed) if t not in groups]
        if len(members) > 1 and not _touches_interpolation(bases[groups], values, resolved_bases, groups):
            # Fast path for sweeps: apply plain values to the resolved base, sharing structure.
            config = resolved_bases[groups][0]
            for text, ov in values:
                config = _apply_plain(config, ov, text, recipe)
            out.append(Member(recipe, member, config, i))
            continue
        cfg = copy.deepcopy(bases[groups]) if len(members) > 1 else bases[groups]
        for text, ov in values:
            _apply(cfg, ov, text, recipe)
        try:
            resolved = OmegaConf.to_container(cfg, resolve=True)
        except OmegaConfBaseException as e:
            first = str(e).strip().splitlines()[0]
            key = getattr(e, "full_key", "")
            raise ConfigError(f"{recipe}: {'key ' + key + ': ' if key else ''}{first}") from None
        out.append(Member(recipe, member, resolved, i))
    return out
