"""How long the steps a plan would run took the last time they ran here: ``rag plan``'s and
``rag run``'s "about 6 min 50 s".

The runner keeps, per recipe and step, the seconds of the last run that computed every shard of
the step (``history``: see :mod:`orchestrator.history`); a step that has not run here since is
left out of the sum and named. It is an estimate from one earlier run on this machine, under
another config maybe (a sweep's ``beta`` changes little of a DPO step's time; ``epochs`` does).
"""

from __future__ import annotations


def to_run(step, plan, key: str) -> bool:
    """Whether the task ``key`` of a planned ``step`` would run: the step is not FRESH, and the
    task is forced or not cached (a cached shard of a STALE step is reused)."""
    return step.state != "FRESH" and (step.forced or key not in plan.entries)


def last_seconds(plans, history: dict, only: set[str] | None = None) -> tuple[float, list[str]]:
    """(seconds the tasks still to run took when their steps last ran here, the steps to run
    that never did), of the steps in ``only`` if given. A task shared by sweep members counts
    once; a sharded step with some shards cached counts its share of the time.

    >>> from types import SimpleNamespace as S
    >>> sft = S(step="sft", state="STALE", forced=False, keys=["a"])
    >>> dpo = S(step="dpo", state="MISSING", forced=False, keys=["b", "c"])   # 2 shards, 1 cached
    >>> new = S(step="new", state="MISSING", forced=False, keys=["d"])
    >>> plan = S(steps={"sft": sft, "dpo": dpo, "new": new}, entries={"c"})
    >>> last_seconds([plan, plan], {"sft": {"seconds": 240.0}, "dpo": {"seconds": 90.0}})
    (285.0, ['new'])
    """
    seen: set[str] = set()
    total, never = 0.0, []
    for plan in plans:
        for step in plan.steps.values():
            if only is not None and step.step not in only:
                continue
            todo = [k for k in step.keys if k not in seen and to_run(step, plan, k)]
            seen.update(todo)
            if not todo:
                continue
            seconds = (history.get(step.step) or {}).get("seconds")
            if not isinstance(seconds, (int, float)):
                if step.step not in never:
                    never.append(step.step)
                continue
            total += seconds * len(todo) / len(step.keys)
    return total, never


def about(seconds: float) -> str:
    """A duration to read at a glance.

    >>> about(7.4), about(412), about(3 * 3600 + 25 * 60 + 9)
    ('7 s', '6 min 52 s', '3 h 25 min')
    """
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def said(seconds: float, never: list[str]) -> str:
    """The estimate as the commands print it; "" when the steps to run took under a second
    (or none ran here before).

    >>> said(412.0, []), said(412.0, ["dpo", "a", "b", "c"]), said(0.2, ["dpo"])
    ('about 6 min 52 s by their last runs here', 'about 6 min 52 s by their last runs here, more for dpo, a, b … (never ran here)', '')
    """
    if seconds < 1:
        return ""
    more = f", more for {', '.join(never[:3])}{' …' if len(never) > 3 else ''} (never ran here)"
    return f"about {about(seconds)} by their last runs here" + (more if never else "")
