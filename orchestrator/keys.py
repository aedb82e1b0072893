"""Cache keys of tasks, and what a changed key is explained by.

key(task) = sha256(canonical JSON of {stage, version, semantic config, input content hashes,
shard}). Inputs enter by *content* hash, not by the upstream key, so when a rerun upstream step
produces identical bytes every downstream key is unchanged (early cut-off).
"""

from __future__ import annotations

from orchestrator.hashing import key_of


def material(stage: str, version: int, semantic: dict, inputs: dict[str, str | None],
             shard: tuple[int, int] | None) -> dict:
    return {"stage": stage, "version": version, "config": semantic, "inputs": inputs,
            "shard": list(shard) if shard else None}


def task_key(mat: dict) -> str:
    return key_of(mat)


def scratch_key(mat: dict) -> str:
    """The key whose scratch directory a task uses: the key of the step's *unsharded* task.

    Every shard of a step, under any ``shards:``, and the unsharded task share it, so a step's
    request cache survives a change of ``shards:`` after a crash: answered requests are not
    paid for again. An unsharded task's scratch key is its own key.

    >>> mat = {"stage": "judge", "version": 1, "config": {}, "inputs": {}, "shard": None}
    >>> scratch_key({**mat, "shard": [0, 2]}) == scratch_key({**mat, "shard": [1, 4]}) == task_key(mat)
    True
    """
    return key_of({**mat, "shard": None})


def explain(old: dict, new: dict, input_names: dict[str, str]) -> str:
    """Why ``new`` material differs from ``old``: the first few changes, human-readable.

    >>> old = {"stage": "dpo", "version": 1, "config": {"beta": 0.1}, "inputs": {"pairs": "a"}, "shard": None}
    >>> new = {"stage": "dpo", "version": 1, "config": {"beta": 0.05}, "inputs": {"pairs": "a"}, "shard": None}
    >>> explain(old, new, {"pairs": "pairs"})
    'config: beta 0.1 -> 0.05'
    >>> explain(old, {**old, "inputs": {"pairs": "missing:p.jsonl"}}, {"pairs": "source 'pairs'"})
    "source 'pairs' missing"
    """
    causes = []
    if old.get("stage") != new["stage"]:
        causes.append(f"stage {old.get('stage')} -> {new['stage']}")
    if old.get("version") != new["version"]:
        causes.append(f"code version {old.get('version')} -> {new['version']}")
    changed = changed_leaves(old.get("config") or {}, new["config"])
    if changed:
        shown = ", ".join(f"{k} {_short(a)} -> {_short(b)}" for k, a, b in changed[:3])
        causes.append("config: " + shown + (f" (+{len(changed) - 3} more)" if len(changed) > 3 else ""))
    oi, ni = old.get("inputs") or {}, new["inputs"]
    for name in sorted(set(oi) | set(ni)):
        if oi.get(name) != ni.get(name):
            gone = str(ni.get(name)).startswith("missing:")   # resolve.source_refs' mark
            causes.append(f"{input_names.get(name, name)} {'missing' if gone else 'changed'}")
    if old.get("shard") != new["shard"]:
        causes.append(f"shards {_count(old.get('shard'))} -> {_count(new['shard'])}")
    return "; ".join(causes) or "entry missing from the cache (removed by gc?)"


def changed_leaves(old: dict, new: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    """``(key path, old value, new value)`` of each setting that differs, nested sections
    followed down to the setting that changed (a section shown whole said nothing: ``judge
    {'backend': 'openai', 'mode... -> {'backend': 'openai', 'mode...``).

    >>> changed_leaves({"judge": {"model": "a", "n": 1}, "k": 5}, {"judge": {"model": "b", "n": 1}})
    [('judge.model', 'a', 'b'), ('k', 5, None)]
    """
    out = []
    for k in sorted(set(old) | set(new), key=str):
        a, b = old.get(k), new.get(k)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += changed_leaves(a, b, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", a, b))
    return out


def _count(shard) -> int:
    """How many shards a task's step had: ``[0, 4]`` (shard 0 of 4) -> 4; unsharded -> 1."""
    return shard[1] if shard else 1


def _short(v) -> str:
    text = repr(v)
    return text if len(text) <= 30 else text[:27] + "..."
