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


def nested_note(metrics: dict[str, dict], run: str = "") -> str:
    """The line under the end-of-run table when steps nest blocks of numbers (a stage that
    scores several evaluation sets writes one block per set, and their macro average), which
    that table leaves out: how many, and the command that shows them; "" when none.

    >>> nested_note({"ev": {"em": 0.5, "display": {"em": "EM"}, "by_dataset": {
    ...     "nq": {"em": 0.4}, "fever": {"em": 0.6}}, "macro": {"em": 0.5}}}, "runs/r/1")
    '3 nested rows not shown (by_dataset.nq, by_dataset.fever, macro): rag report runs/r/1'
    >>> nested_note({"ev": {"macro": {"em": 0.5}}}, "My Drive/runs/r/1")
    "1 nested row not shown (macro): rag report 'My Drive/runs/r/1'"
    >>> nested_note({"ev": {"em": 0.5}})
    ''
    """
    import shlex

    from orchestrator.cli.report import blocks

    paths = [path for values in metrics.values() if isinstance(values, dict)
             for path, _, _ in blocks(values) if path]
    if not paths:
        return ""
    listed = ", ".join(paths[:3]) + (", …" if len(paths) > 3 else "")
    command = f"rag report {shlex.quote(run)}" if run else "rag report"
    rows = "1 nested row" if len(paths) == 1 else f"{len(paths)} nested rows"
    return f"{rows} not shown ({listed}): {command}"


def metrics_table(metrics: dict[str, dict], title: str = "results", most: int = 8):
    """One row per metrics step, named by its step (``rag report --steps`` and ``rag show``
    take that name) and, when a step's metrics carry a ``label`` other than its name, by that
    label beside it; the columns its metrics declare (``shown``), at most ``most``;
    metrics.json has them all."""
    from rich.table import Table

    columns: dict[str, str] = {}
    for values in metrics.values():
        for k, label in shown(values).items():
            columns.setdefault(k, label)
    names = list(columns)[:most]
    labels = {step: str(values.get("label") or step) for step, values in metrics.items()}
    named = any(label != step for step, label in labels.items())
    table = Table(title=title)
    table.add_column("step", no_wrap=True)
    if named:
        table.add_column("label")
    for n in names:
        table.add_column(columns[n], justify="right", min_width=len(columns[n]))
    for step, values in metrics.items():
        cells = [_fmt(values[n]) if n in values else "" for n in names]
        table.add_row(step, *([labels[step]] if named else []), *cells)
    return table


def nothing_done_line(steps: dict[str, dict]) -> str:
    """The last line of a run whose steps were all cache hits: a no-op rerun, or a run that
    waited while another process computed them (its step lines said "done in 3.0s").

    >>> nothing_done_line({"a": {"cache": "hit"}, "b": {"cache": "hit"}})
    'nothing to do: all 2 steps cached'
    >>> nothing_done_line({"a": {"cache": "hit"}, "b": {"cache": "hit", "waited": 1}})
    'nothing computed here: all 2 steps cached, 1 of them (b) computed by another process \
while this run waited'
    """
    waited = [name for name, s in steps.items() if s.get("waited")]
    if not waited:
        return f"nothing to do: all {len(steps)} steps cached"
    named = ", ".join(waited[:5]) + (", ..." if len(waited) > 5 else "")
    return (f"nothing computed here: all {len(steps)} steps cached, {len(waited)} of them "
            f"({named}) computed by another process while this run waited")


def print_run_summary(status: dict, brief: bool = True) -> None:
    """The steps table; at the end of a run where every step was a cache hit (a no-op rerun,
    ``brief``) one line, since the step lines above already say each was cached."""
    steps = status["steps"].values()
    c = report()
    if brief and steps and all(s.get("cache") == "hit" for s in steps):
        c.print(nothing_done_line(status["steps"]))
        if status.get("metrics"):
            _print_metrics(c, status)
        return
    from rich.table import Table

    table = Table(title=f"run {status['run']}")
    for col in ("step", "stage", "state", "cache", "shards", "seconds"):
        table.add_column(col, justify="right" if col in ("shards", "seconds") else "left")
    for name, s in status["steps"].items():
        table.add_row(name, s.get("stage", ""), s.get("state", ""), s.get("cache", ""),
                      _shards(s), _seconds(s))
    c = report()
    c.print(table)
    if status.get("metrics"):
        _print_metrics(c, status)


def _print_metrics(console, status: dict) -> None:
    """The results table, and the line that counts the nested rows it leaves out."""
    console.print(metrics_table(status["metrics"]))
    note = nested_note(status["metrics"], str(status.get("run") or ""))
    if note:
        console.print(note, markup=False, highlight=False, soft_wrap=True)


def _shards(step: dict) -> str:
    """A step's shards cell: how many; for a sharded step not finished, how many of them are
    committed so far (``rag status`` counts them).

    >>> _shards({"state": "done", "shards": 4})
    '4'
    >>> _shards({"state": "running", "shards": 4, "shards_done": 3})
    '3/4 done'
    """
    if "shards_done" in step:
        return f"{step['shards_done']}/{step.get('shards', '?')} done"
    return str(step.get("shards", ""))


def _seconds(step: dict, now: float | None = None) -> str:
    """A step's seconds cell: its duration once done; for a step still running, the seconds
    since it started so far.

    >>> _seconds({"state": "done", "duration": 41.25})
    '41.250'
    >>> _seconds({"state": "running", "started": 1000.0}, now=1041.4)
    '41 so far'
    >>> _seconds({"state": "running", "started": 1000.0, "last_seconds": 243.9}, now=1041.4)
    '41 so far (last run: 244)'
    >>> _seconds({"state": "interrupted", "started": 1000.0})
    ''
    """
    import time

    if step.get("state") == "running" and isinstance(step.get("started"), (int, float)):
        last = step.get("last_seconds")
        return (f"{(now or time.time()) - step['started']:.0f} so far"
                + (f" (last run: {last:.0f})" if isinstance(last, (int, float)) else ""))
    return _fmt(step.get("duration", ""))


def member_state(state: str, steps: dict) -> str:
    """A sweep member's state cell: how many steps it computed, or where it failed or stopped.

    >>> member_state("ok", {"a": {"state": "done", "cache": "hit"}, "b": {"state": "done", "cache": "miss"}})
    'ok, 1 ran'
    >>> member_state("failed", {"a": {"state": "failed"}, "b": {"state": "skipped"}})
    'failed: a'
    >>> member_state("failed", {})
    'failed before its steps ran'
    >>> member_state("interrupted", {"a": {"state": "done"}, "b": {"state": "interrupted"}})
    'interrupted: b'
    """
    if state == "ok":
        ran = sum(1 for s in steps.values() if s.get("state") == "done" and s.get("cache") != "hit")
        return f"ok, {ran} ran"
    if state == "failed":
        failed = [name for name, s in steps.items() if s.get("state") == "failed"]
        return "failed: " + ", ".join(failed) if failed else "failed before its steps ran"
    where = [name for name, s in steps.items() if s.get("state") in ("running", "interrupted")]
    return f"{state}: {', '.join(where)}" if where else state


def swept(overrides: list[list[str]]) -> dict[str, list[str]]:
    """{key: each member's value} of the overrides whose value differs between members, in order;
    {} when the members' overrides do not line up (the table then shows them whole).

    >>> swept([["a=1", "b=x"], ["a=2", "b=x"]])
    {'a': ['1', '2']}
    """
    if len({len(o) for o in overrides}) != 1:
        return {}
    out = {}
    for column in zip(*overrides):
        if len(set(column)) > 1:
            keys = {text.partition("=")[0] for text in column}
            if len(keys) > 1:
                return {}
            out[keys.pop()] = [text.partition("=")[2] for text in column]
    return out


def compared(per_member: list[dict]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(columns, same): the (step, metric, label) of every shown metric whose value differs
    between the members that have it (or that fewer than two members have: a sweep of one, a
    member that failed), and "step label value" of the others.

    >>> compared([{"ev": {"em": 0.5, "n": 3}}, {"ev": {"em": 0.25, "n": 3}}, {}])
    ([('ev', 'em', 'em')], ['ev n 3'])
    """
    candidates: dict[tuple[str, str], str] = {}
    for metrics in per_member:
        for step, values in metrics.items():
            for k, label in shown(values).items():
                candidates.setdefault((step, k), label)
    columns, same = [], []
    for (step, k), label in candidates.items():
        values = [m[step][k] for m in per_member if k in m.get(step, {})]
        if len(values) > 1 and len({repr(v) for v in values}) == 1:
            same.append(f"{step} {label} {_fmt(values[0])}")
        else:
            columns.append((step, k, label))
    return columns, same


def print_sweep_table(title: str, rows: list[dict], most: int = 6, sweep: str = "") -> None:
    """One row per member: its directory, the values swept, its state, and the metrics that differ
    between members; then a line naming the metrics that are the same in every member, and one
    counting each member's nested rows (per evaluation set) that ``rag report SWEEP`` shows.

    ``rows``: {"member": "member-0000", "overrides": [...], "state": cell text, "metrics": {...}}.
    """
    from rich.table import Table

    from orchestrator.logs import escape

    per_member = [r.get("metrics") or {} for r in rows]
    columns, same = compared(per_member)
    keys = swept([r["overrides"] for r in rows]) if len(rows) > 1 else {}
    table = Table()
    table.add_column("member", no_wrap=True)
    for key in keys or ["overrides"]:
        table.add_column(escape(key))
    table.add_column("state")
    for st, _, label in columns[:most]:
        table.add_column(escape(f"{st} {label}"), justify="right")
    for i, (row, metrics) in enumerate(zip(rows, per_member)):
        values = [v[i] for v in keys.values()] if keys else [" ".join(row["overrides"])]
        cells = [_fmt(metrics.get(st, {}).get(k, "")) for st, k, _ in columns[:most]]
        table.add_row(row["member"], *map(escape, values), escape(row["state"]), *cells)
    c = report()
    c.print(escape(title), soft_wrap=True)   # a path: a title would wrap to the table's width
    c.print(table)
    if same:
        every = "every member" if all(per_member) else "every member with results"
        c.print(escape(f"same in {every}: " + ", ".join(same[:most])
                       + (f" (and {len(same) - most} more)" if len(same) > most else "")),
                soft_wrap=True)
    if len(columns) > most:
        c.print(f"{len(columns) - most} more metrics differ between members: each member's "
                "metrics.json has them all", soft_wrap=True)
    note = nested_note(next((m for m in per_member if m), {}), sweep)
    if note:
        c.print(escape(f"each member: {note}"), soft_wrap=True)


def print_sweep_summary(sweep, results) -> None:
    """The table at the end of a sweep: ``results`` are (member, run, ok) of the members run."""
    rows = [{"member": run.path.name, "overrides": member.overrides,
             "state": member_state(run.status.get("state", ""), run.status["steps"]),
             "metrics": run.status.get("metrics") or {}} for member, run, _ in results]
    print_sweep_table(f"sweep {sweep}", rows, sweep=str(sweep))
