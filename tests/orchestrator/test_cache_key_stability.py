"""The cache keys of the shipped recipes' steps change only on purpose.

A step's key is its stage, its stage's version, its semantic config and its inputs' content
(orchestrator/keys.py). A change of the first three recomputes the step in every user's cache,
and then whatever its new output changes downstream: hours of retrieval or training for the
paper recipes. This test keeps, for every step of every recipe in conf/, the stage, version
and semantic config (``cache_keys.json``), and fails on any difference, naming the steps and
what changed, so that a new field without ``added(...)`` or a changed default is a decision.

When the change is meant (a fixed default, a bumped version), record it:

    python -m tests.orchestrator.test_cache_key_stability --update
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from orchestrator.keys import changed_leaves
from tests.conftest import REPO

RECORD = Path(__file__).with_name("cache_keys.json")
UPDATE = "python -m tests.orchestrator.test_cache_key_stability --update"


def key_material() -> dict:
    """recipe -> step -> {stage, version, config (semantic)}, of every recipe in conf/."""
    from orchestrator.dag import build_dags
    from orchestrator.recipe import compose

    out = {}
    for recipe in sorted((REPO / "conf").glob("*.yaml")):
        dag = build_dags(recipe, compose(recipe, []))[0]
        out[recipe.stem] = {s.name: {"stage": s.stage.name, "version": s.stage.version,
                                     "config": s.semantic} for s in dag.steps.values()}
    return json.loads(json.dumps(out))   # as the record reads back (tuples are lists)


def differences(old: dict, new: dict) -> list[str]:
    """One line per step whose key material differs.

    >>> old = {"r": {"a": {"stage": "s", "version": 1, "config": {"k": 1}}}}
    >>> differences(old, {"r": {"a": {"stage": "s", "version": 2, "config": {"k": 3}}}})
    ['r.a: version 1 -> 2; config: k 1 -> 3']
    >>> differences(old, {"r": {}})
    ['r.a: step gone']
    """
    lines = []
    for recipe in sorted(set(old) | set(new)):
        o, n = old.get(recipe, {}), new.get(recipe, {})
        for step in sorted(set(o) | set(n)):
            if step not in n or step not in o:
                lines.append(f"{recipe}.{step}: step {'gone' if step not in n else 'new'}")
                continue
            what = [f"{k} {o[step][k]} -> {n[step][k]}" for k in ("stage", "version")
                    if o[step][k] != n[step][k]]
            config = changed_leaves(o[step]["config"], n[step]["config"])
            if config:
                what.append("config: " + ", ".join(f"{k} {a!r} -> {b!r}" for k, a, b in config))
            if what:
                lines.append(f"{recipe}.{step}: " + "; ".join(what))
    return lines


def test_the_shipped_recipes_keep_their_cache_keys():
    changed = differences(json.loads(RECORD.read_text()), key_material())
    assert not changed, (
        "the cache key of these steps changed; users' cached results of them will be "
        "recomputed:\n  " + "\n  ".join(changed) + "\nA new config field that should not "
        "change existing results: orchestrator.api.added(default) or nonsemantic(...). If the "
        f"change is meant, record it: {UPDATE}")


def record_text(material: dict) -> str:
    """The record as JSON with one line per step, so that a changed key is a one-line diff.

    >>> print(record_text({"r": {"b": {"version": 1}, "a": {"version": 2}}}), end="")
    {
     "r": {
      "a": {"version": 2},
      "b": {"version": 1}
     }
    }
    """
    recipes = []
    for recipe in sorted(material):
        steps = ",\n".join(f"  {json.dumps(step)}: {json.dumps(value, sort_keys=True)}"
                           for step, value in sorted(material[recipe].items()))
        recipes.append(f" {json.dumps(recipe)}: {{\n{steps}\n }}")
    return "{\n" + ",\n".join(recipes) + "\n}\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(f"usage: {UPDATE}")
    RECORD.write_text(record_text(key_material()))
    print(f"wrote {RECORD.relative_to(REPO)}")
