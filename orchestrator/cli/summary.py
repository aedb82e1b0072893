"""Tables printed at the end of a run: steps, and the metrics of evaluation steps."""

from __future__ import annotations

from orchestrator.logs import report


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def shown(values: dict) -> dict[str, str]:
    """{metric: column label} that a metrics step asks to show, in order.

    The convention (the orchestrator knows no metric names): a metrics artifact may carry
    ``"display": {"exact_match": "EM", "token_f1": "F1"}``, the metrics to show and their labels
    in order, and ``"label"``, the row's name. Without ``display``, every numeric value is shown
    under its own name, in the artifact's order; the file always has them all.

    >>> shown({"label": "dpo", "em": 0.5, "n": 3, "display": {"em": "EM", "gone": "G"}})
    {'em': 'EM'}
    >>> shown({"em": 0.5, "n": 3, "ok": True})
    {'em': 'em', 'n': 'n'}
    """
    numeric = {k: k for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    display = values.get("display")
    if isinstance(display, dict):
        return {k: str(label) for k, label in display.items() if k in numeric}
    return numeric


def metrics_table(metrics: dict[str, dict], title: str = "results", most: int = 8):
    """One row per metrics step; the columns its metrics declare (``shown``), as many as fit a
    terminal; metrics.json has them all."""
    from rich.table import Table

    columns: dict[str, str] = {}
    for values in metrics.values():
        for k, label in shown(values).items():
            columns.setdefault(k, label)
    names = list(columns)[:most]
    table = Table(title=title)
    table.add_column("step", no_wrap=True)
    for n in names:
        table.add_column(columns[n], justify="right", min_width=len(columns[n]))
    for step, values in metrics.items():
        label = values.get("label") or step
        table.add_row(str(label), *[_fmt(values[n]) if n in values else "" for n in names])
    return table


def print_run_summary(status: dict, brief: bool = True) -> None:
    """The steps table; at the end of a run where every step was a cache hit (a no-op rerun,
    ``brief``) one line, since the step lines above already say each was cached."""
    steps = status["steps"].values()
    c = report()
    if brief and steps and all(s.get("cache") == "hit" for s in steps):
        c.print(f"nothing to do: all {len(steps)} steps cached")
        if status.get("metrics"):
            c.print(metrics_table(status["metrics"]))
        return
    from rich.table import Table

    table = Table(title=f"run {status['run']}")
    for col in ("step", "stage", "state", "cache", "shards", "seconds"):
        table.add_column(col, justify="right" if col in ("shards", "seconds") else "left")
    for name, s in status["steps"].items():
        table.add_row(name, s.get("stage", ""), s.get("state", ""), s.get("cache", ""),
                      str(s.get("shards", "")), _fmt(s.get("duration", "")))
    c = report()
    c.print(table)
    if status.get("metrics"):
        c.print(metrics_table(status["metrics"]))


def _member_state(steps: dict, ok: bool) -> str:
    """A sweep member's state cell: how many steps it computed, or which steps failed.

    >>> _member_state({"a": {"state": "done", "cache": "hit"}, "b": {"state": "done", "cache": "miss"}}, True)
    'ok, 1 ran'
    >>> _member_state({"a": {"state": "failed"}, "b": {"state": "skipped"}}, False)
    'failed: a'
    """
    if not ok:
        failed = [name for name, s in steps.items() if s.get("state") == "failed"]
        return "failed: " + ", ".join(failed) if failed else "failed"
    ran = sum(1 for s in steps.values() if s.get("state") == "done" and s.get("cache") != "hit")
    return f"ok, {ran} ran"


def print_sweep_summary(results) -> None:
    """One row per member: its overrides, state, and the metrics that differ between members."""
    from rich.table import Table

    per_member = [run.status.get("metrics", {}) for _, run, _ in results]
    steps = [st for st in (per_member[0] if per_member else {})
             if len({repr(m.get(st)) for m in per_member}) > 1] or list(per_member[0])[-1:]
    columns = []
    for st in steps[:2]:
        labels = shown(per_member[0].get(st, {}))
        columns += [(st, k, label) for k, label in labels.items()][:4]
    table = Table(title="sweep")
    table.add_column("member")
    table.add_column("overrides")
    table.add_column("state")
    for st, _, label in columns:
        table.add_column(f"{st} {label}", justify="right")
    for (member, run, ok), metrics in zip(results, per_member):
        cells = [_fmt(metrics.get(st, {}).get(k, "")) for st, k, _ in columns]
        table.add_row(str(member.index), " ".join(member.overrides),
                      _member_state(run.status["steps"], ok), *cells)
    report().print(table)
