"""Values a recipe reads from the environment (``${oc.env:NAME}``): used, never recorded.

An API key written as ``api_key: ${oc.env:OPENAI_API_KEY}`` must reach the stage, but must not
land in ``config.yaml``, a cache entry, a state file or a cache key (rotating a key must not
recompute anything). Composition resolves the config with a recording ``oc.env`` and returns the
key paths whose values came from the environment, each with a text that reads it again::

    {"steps.reward.api_key": "${oc.env:OPENAI_API_KEY}"}

Saved configs carry that text instead of the value (``redact``), the DAG leaves those keys out
of cache keys (``Step.secrets``), a worker process turns the text back into the value from its
own environment (``reveal``), and a composition that read the environment is never remembered
on disk.
"""

from __future__ import annotations

import copy
import os
import re
from typing import Any


def resolve_recording(cfg) -> tuple[dict, dict[str, str]]:
    """(``OmegaConf.to_container(cfg, resolve=True)``, secrets found in it)."""
    from omegaconf import OmegaConf
    from omegaconf.resolvers import oc

    seen: dict[str, str] = {}

    def env(key: str, default: Any = oc._DEFAULT_MARKER_):
        if key in os.environ:
            seen[key] = os.environ[key]
        return oc.env(key, default)

    OmegaConf.register_new_resolver("oc.env", env, replace=True)
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True)
    finally:
        OmegaConf.register_new_resolver("oc.env", oc.env, replace=True)
    if not seen:
        return resolved, {}
    raw = OmegaConf.to_container(cfg, resolve=False)
    return resolved, find(raw, resolved, seen)


def find(raw, resolved, seen: dict[str, str], path: str = "") -> dict[str, str]:
    """Key paths of interpolated string values that contain a value read from the environment.

    >>> find({"a": "${oc.env:K}", "b": "x", "c": ["Bearer ${oc.env:K}"]},
    ...      {"a": "s3cret", "b": "x", "c": ["Bearer s3cret"]}, {"K": "s3cret"})
    {'a': '${oc.env:K}', 'c[0]': 'Bearer ${oc.env:K}'}
    """
    out: dict[str, str] = {}
    if isinstance(resolved, dict) and isinstance(raw, dict):
        for k, v in resolved.items():
            out.update(find(raw.get(k), v, seen, f"{path}.{k}" if path else str(k)))
    elif isinstance(resolved, list) and isinstance(raw, list) and len(raw) == len(resolved):
        for i, v in enumerate(resolved):
            out.update(find(raw[i], v, seen, f"{path}[{i}]"))
    elif isinstance(resolved, str) and isinstance(raw, str) and "${" in raw:
        text = resolved
        for name, value in seen.items():
            if value:
                text = text.replace(value, f"${{oc.env:{name}}}")
        if text != resolved:
            out[path] = text
    return out


def _parts(path: str) -> list:
    return [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]


def redact(config: dict, secrets: dict[str, str]) -> dict:
    """A copy of ``config`` with each secret's value replaced by the text that reads it.

    >>> redact({"s": {"x": {"key": "s3cret", "k": 1}}}, {"s.x.key": "${oc.env:K}"})
    {'s': {'x': {'key': '${oc.env:K}', 'k': 1}}}
    """
    if not secrets:
        return config
    out = copy.deepcopy(config)
    for path, text in secrets.items():
        node = out
        *parents, leaf = _parts(path)
        try:
            for p in parents:
                node = node[p]
            node[leaf] = text
        except (KeyError, IndexError, TypeError):
            continue  # an override replaced the block: nothing of the secret is left there
    return out


def reveal(config: dict, secrets: dict[str, str]) -> dict:
    """``config`` with each secret text (relative key paths) resolved from this process's
    environment: what a worker does with a task file written from a redacted config."""
    if not secrets:
        return config
    from omegaconf import OmegaConf

    values = {p: OmegaConf.create({"v": t}).v for p, t in secrets.items()}
    return redact(config, values)
