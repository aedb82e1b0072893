"""``rag report``: the metrics of one or more runs, or of a sweep's members, as one table: in the
terminal, or as Markdown, CSV or JSON to paste into a paper or load into pandas.

One row per metrics step of each run, and one more per block of numbers a step nests in its
metrics (a stage that scores several evaluation sets writes one block per set): the ``block``
column names it. A step's metrics file says which metrics it shows, under which labels
(``display``, see :func:`orchestrator.cli.summary.shown`); ``--all`` shows every number.
"""

from __future__ import annotations

import json

from dataclasses import dataclass, field
from pathlib import Path

EXAMPLES = """examples:
  rag report                                    # the latest run's results (a sweep's: each member)
  rag report --format markdown > results.md     # the same as a Markdown table
  rag report 20261204-101500 20261204-120000    # two runs, with the overrides that differ
  rag report 20261204-101500-sweep --format csv > sweep.csv   # a sweep: the swept values as columns
  rag report --all                              # every number each step wrote, not only those it shows
  rag report --metrics EM,F1 --steps eval_top5,evaluate

exit codes: 0 ok, 2 no such run, step or metric, or no metrics in the runs named."""

FORMATS = ("table", "markdown", "csv", "json")


def add_arguments(p) -> None:
    from orchestrator.cli.common import whole_number

    p.add_argument("runs", nargs="*", metavar="RUN",
                   help="runs or sweeps by name or path (default: the latest run; when that "
                        "was a sweep, its members)")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table (the terminal), markdown, csv or json (full precision)")
    p.add_argument("--all", action="store_true",
                   help="every number the steps wrote, under its own name")
    p.add_argument("--metrics", default=None,
                   help="comma-separated metrics to show, by name or label (EM or exact_match), "
                        "shown or not")
    p.add_argument("--steps", default=None, help="comma-separated steps to show")
    p.add_argument("--digits", type=whole_number(0), default=3,
                   help="decimals in the table and Markdown (default 3)")
    p.add_argument("--runs-dir", default=None, help="where rag run wrote its runs (default: ./runs)")


@dataclass
class Source:
    """One run's metrics: ``name`` is how the table names it, ``values`` the settings (overrides)
    that differ between the runs reported."""

    name: str
    metrics: dict
    values: dict[str, str] = field(default_factory=dict)


def blocks(metrics: dict, path: str = "", display=None):
    """``(path, numbers, display)`` for a step's metrics and for every dict nested in them
    (``display`` aside): a nested block without a ``display`` of its own takes its parent's.

    >>> m = {"em": 0.5, "display": {"em": "EM"}, "by_dataset": {"nq": {"em": 0.25}}, "macro": {"em": 0.25}}
    >>> [(p, n, d) for p, n, d in blocks(m)]
    [('', {'em': 0.5}, {'em': 'EM'}), ('by_dataset.nq', {'em': 0.25}, {'em': 'EM'}), ('macro', {'em': 0.25}, {'em': 'EM'})]
    """
    display = metrics.get("display") if isinstance(metrics.get("display"), dict) else display
    numbers = {k: v for k, v in metrics.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if numbers:
        yield path, numbers, display
    for k, v in metrics.items():
        if isinstance(v, dict) and k != "display":
            yield from blocks(v, f"{path}.{k}" if path else k, display)


def columns_and_rows(sources: list[Source], every: bool = False) -> tuple[dict[str, str], list[dict]]:
    """``(columns, rows)``: {metric: header} in order of first appearance (the step's labels,
    or every number under its own name with ``every``), and one row per (run, step, block).

    >>> s = Source("r", {"ev": {"label": "top-5", "em": 0.5, "n": 3, "display": {"em": "EM"}}})
    >>> columns_and_rows([s])
    ({'em': 'EM'}, [{'run': 'r', 'step': 'ev', 'label': 'top-5', 'block': '', 'values': {'em': 0.5}}])
    >>> columns_and_rows([s], every=True)[0]
    {'em': 'em', 'n': 'n'}
    """
    from orchestrator.cli.summary import shown

    columns: dict[str, str] = {}
    rows = []
    for source in sources:
        for step, metrics in source.metrics.items():
            if not isinstance(metrics, dict):
                continue
            for path, numbers, display in blocks(metrics):
                picked = ({k: k for k in numbers} if every
                          else shown({**numbers, "display": display}))
                for k, label in picked.items():
                    columns.setdefault(k, label)
                if picked:
                    rows.append({"run": source.name, "step": step,
                                 "label": str(metrics.get("label") or step), "block": path,
                                 "values": {k: numbers[k] for k in picked}})
    return columns, rows


def pick(wanted: str, choices: dict[str, str], what: str, hint: str) -> list[str]:
    """The keys of ``choices`` ({key: label}) that the comma-separated ``wanted`` names, by key or
    label, in its order; a name that is neither is a one-line error with the closest one.

    >>> pick("F1,exact_match", {"exact_match": "EM", "token_f1": "F1"}, "metric", "")
    ['token_f1', 'exact_match']
    """
    from orchestrator.errors import ConfigError, did_you_mean

    by_name = {**{label: key for key, label in choices.items()}, **{key: key for key in choices}}
    out = []
    for name in (n.strip() for n in wanted.split(",") if n.strip()):
        if name not in by_name:
            listed = ", ".join(dict.fromkeys(choices.values()))
            raise ConfigError(f"no {what} '{name}' in these runs{did_you_mean(name, by_name)}; "
                              f"they have: {listed}", hint=hint)
        out.append(by_name[name])
    return list(dict.fromkeys(out))


def sources(args) -> list[Source]:
    """The runs named on the command line (a sweep: each of its members), or the latest run
    (when that was a sweep: each of its members, as ``rag status`` shows it, not its last
    member alone); each with the overrides whose value is not the same in all of them."""
    from orchestrator.cli.common import find_run, find_sweep, read_status, runs_dir, sweep_of

    runs = runs_dir(args)
    found: list[tuple[Path, dict]] = []
    for spec in args.runs or [None]:
        sweep = find_sweep(runs, spec)
        if sweep is None and spec is None:
            sweep = sweep_of(find_run(runs, None))
        members = (sorted(p.parent for p in sweep.glob("member-*/status.json")) if sweep
                   else [find_run(runs, spec)])
        found += [(run, read_status(run)) for run in members]
    found = list({run.resolve(): (run, status) for run, status in found}.values())  # X X: once
    values = differing([status.get("overrides") or [] for _, status in found],
                       [_config(run) for run, _ in found])
    return [Source(_name(run, runs), status.get("metrics") or {}, v)
            for (run, status), v in zip(found, values)]


def differing(overrides: list[list[str]], configs: list[dict]) -> list[dict[str, str]]:
    """Per run, ``{key: value}`` of the overridden keys whose value in the runs' configs is not
    the same in every run, so runs made with different settings show them side by side, as a
    sweep's members show what they swept. A value is the override as typed, or where a run did
    not override the key, its config's value ("?" where its config has none): an override that
    sets the recipe's own value is no difference, and a run of another recipe shows its value.

    >>> cfgs = [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}, {"a": 3, "b": "x"}]
    >>> differing([["a=1", "b=x"], ["a=2", "b=x"], ["b=x"]], cfgs)
    [{'a': '1'}, {'a': '2'}, {'a': '3'}]
    >>> differing([["a=1"], []], [{"a": 1}, {"a": 1}])      # the recipe's value set again
    [{}, {}]
    """
    parsed = [dict(o.lstrip("+~").partition("=")[::2] for o in run) for run in overrides]
    keys = list(dict.fromkeys(k for run in parsed for k in run))
    values = [{k: _at(config, k) for k in keys} for config in configs]
    keys = [k for k in keys if len({json.dumps(v[k], sort_keys=True, default=str)
                                    for v in values}) > 1]
    return [{k: run[k] if k in run else _shown(value[k]) for k in keys}
            for run, value in zip(parsed, values)]


_MISSING = object()


def _at(config: dict, key: str):
    """The value at dotted ``key`` in a run's config (``_MISSING`` when it has none)."""
    value = config
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _shown(value) -> str:
    if value is _MISSING:
        return "?"
    return value if isinstance(value, str) else json.dumps(value)


def _config(run: Path) -> dict:
    """A run's ``config.yaml`` as a dict ({} when it cannot be read)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml: 8x faster a config
    try:
        config = yaml.load((run / "config.yaml").read_text(), Loader=loader)
    except (OSError, yaml.YAMLError):
        return {}
    return config if isinstance(config, dict) else {}


def _name(run: Path, runs: Path) -> str:
    """A run as ``rag status`` accepts it: its path under the runs directory, else its path."""
    try:
        return str(run.resolve().relative_to(runs.resolve()))
    except ValueError:
        return str(run)


def _has_metrics(run: Path) -> bool:
    import json

    try:
        return bool(json.loads((run / "status.json").read_text()).get("metrics"))
    except (OSError, ValueError, AttributeError):
        return False


def main(args) -> int:
    import sys

    from orchestrator.cli.common import newest_run_with, rag_command, runs_dir
    from orchestrator.errors import ConfigError
    from orchestrator.logs import console, escape

    found = sources(args)
    empty = [s.name for s in found if not s.metrics]
    if len(empty) == len(found):
        shown = f"rag status {found[0].name}" if len(found) == 1 else "rag status"
        hint = (f"{rag_command(shown, runs_dir(args))} shows the run's steps; a run has metrics "
                "once a step that scores (evaluate) has finished")
        other = None if args.runs else newest_run_with(runs_dir(args), _has_metrics)
        if other:
            hint = ("the newest run with metrics: "
                    + rag_command(f"rag report {other}", runs_dir(args)))
        raise ConfigError(f"no metrics in {', '.join(empty)}: no step wrote a metrics artifact "
                          "(yet)", hint=hint)
    for name in empty:
        console().print(f"{escape(name)}: no metrics (yet); left out", soft_wrap=True)
    columns, rows = columns_and_rows(found, args.all or bool(args.metrics))
    if args.metrics and not args.all:   # any metric may be named; under the step's label if any
        labels, _ = columns_and_rows(found)
        columns = {k: labels.get(k, k) for k in columns}
    hint = "rag report --all lists every metric the steps wrote"
    if args.steps:
        steps = pick(args.steps, {r["step"]: r["step"] for r in rows}, "step with metrics",
                     "rag report without --steps shows every step with metrics")
        rows = [r for r in rows if r["step"] in steps]
    if args.metrics:
        keys = pick(args.metrics, columns, "metric", hint)
        columns = {k: columns[k] for k in keys}
        rows = [r for r in rows if any(k in r["values"] for k in keys)]
    if not rows:
        raise ConfigError(f"none of the steps {args.steps} has the metrics {args.metrics}",
                          hint="rag report --all shows which step has which")
    table = flat(found, columns, rows)
    if args.format == "json":
        import json

        sys.stdout.write(json.dumps(table, indent=1) + "\n")
    elif args.format == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=list(table[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
    elif args.format == "markdown":
        sys.stdout.write(markdown(table, set(columns.values()), args.digits))
    else:
        _print_table(table, set(columns.values()), args.digits)
    return 0


def flat(found: list[Source], columns: dict[str, str], rows: list[dict]) -> list[dict]:
    """The rows as ``{column: value}``, each with the same columns: ``run`` when there are
    several runs, the settings that differ between them, ``step``, ``label`` and ``block``
    where any row has one, then the metrics under their headers ("" where a row has none)."""
    settings = list(dict.fromkeys(k for s in found for k in s.values))
    values_of = {s.name: s.values for s in found}
    show_run = len({r["run"] for r in rows}) > 1
    show_label = any(r["label"] != r["step"] for r in rows)
    show_block = any(r["block"] for r in rows)
    out = []
    for r in rows:
        row = {"run": r["run"]} if show_run else {}
        row.update({k: values_of[r["run"]].get(k, "") for k in settings})
        row["step"] = r["step"]
        if show_label:
            row["label"] = r["label"]
        if show_block:
            row["block"] = r["block"]
        row.update({label: r["values"].get(k, "") for k, label in columns.items()})
        out.append(row)
    return out


def _cell(value, digits: int) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(table: list[dict], numeric: set[str], digits: int = 3) -> str:
    """A GitHub Markdown table; metric columns right-aligned, ``|`` in a cell escaped.

    >>> print(markdown([{"step": "ev", "EM": 0.5}], {"EM"}), end="")
    | step | EM |
    |---|---:|
    | ev | 0.500 |
    """
    heads = list(table[0])
    lines = ["| " + " | ".join(heads) + " |",
             "|" + "|".join("---:" if h in numeric else "---" for h in heads) + "|"]
    for row in table:
        cells = (_cell(row[h], digits).replace("|", "\\|") for h in heads)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def column_blocks(widths: dict[str, int], numeric: set[str], room: int) -> list[list[str]]:
    """The table's columns split into blocks that each fit ``room`` characters, as pandas prints
    a wide frame: every block repeats the text columns (step, label, the overrides) and takes as
    many metric columns, in order, as fit. ``widths`` is each column's widest cell or header; a
    rich table adds 3 characters per column (padding and rule) and 1 for its left edge.

    >>> w = {"step": 8, "EM": 5, "F1": 5, "R@1": 5, "R@5": 5}
    >>> column_blocks(w, {"EM", "F1", "R@1", "R@5"}, room=40)
    [['step', 'EM', 'F1', 'R@1'], ['step', 'R@5']]
    >>> column_blocks(w, {"EM", "F1", "R@1", "R@5"}, room=200)
    [['step', 'EM', 'F1', 'R@1', 'R@5']]
    """
    keys = [h for h in widths if h not in numeric]
    base = 1 + sum(widths[h] + 3 for h in keys)
    out: list[list[str]] = []
    used = room
    for h in (h for h in widths if h in numeric):
        if used + widths[h] + 3 > room and (not out or len(out[-1]) > len(keys)):
            out.append(list(keys))
            used = base
        out[-1].append(h)
        used += widths[h] + 3
    return out or [keys]


def common_folder(names: list[str]) -> str:
    """The folder that every run of ``names`` lies under ("" when they share none, or name one
    run), which the terminal table says once in its title instead of on every row.

    >>> common_folder(["demo/20261205-071457-sweep/member-0000", "demo/20261205-071457-sweep/member-0001"])
    'demo/20261205-071457-sweep'
    >>> common_folder(["demo/20261201-101500", "demo/20261202-090000"]), common_folder(["a/x", "b/y"])
    ('demo', '')
    >>> common_folder(["demo/20261201-101500", "/elsewhere/runs/demo/20261202-090000"])
    ''
    >>> common_folder(["/tmp/runs/demo/20261201-101500", "/home/me/runs/demo/20261202-090000"])
    ''
    """
    import os.path

    if len(set(names)) < 2:
        return ""
    try:
        folder = os.path.commonpath(names)
    except ValueError:   # a run under the runs directory beside one named by its absolute path
        return ""
    folder = os.path.dirname(folder) if folder in names else folder
    return "" if folder == os.path.dirname(folder) else folder   # the root is no common folder


def _print_table(table: list[dict], numeric: set[str], digits: int) -> None:
    from rich.table import Table

    from orchestrator.logs import escape, report

    console = report()
    cells = [{h: _cell(v, digits) for h, v in row.items()} for row in table]
    folder = common_folder([row["run"] for row in cells]) if "run" in cells[0] else ""
    if folder:   # a sweep's members as member-0000, …, under the sweep named once
        for row in cells:
            row["run"] = row["run"][len(folder) + 1:]
    widths = {h: max([len(h)] + [len(row[h]) for row in cells]) for h in table[0]}
    parts = column_blocks(widths, numeric, console.width)
    for n, heads in enumerate(parts, 1):
        title = "results" if len(parts) == 1 else f"results ({n}/{len(parts)})"
        title += f" of runs in {folder}/" if folder else ""
        out = Table(title=title)
        for h in heads:
            out.add_column(escape(h), justify="right" if h in numeric else "left",
                           min_width=len(h) if h in numeric else None, overflow="fold")
        for row in cells:
            out.add_row(*(escape(row[h]) for h in heads))
        console.print(out)
