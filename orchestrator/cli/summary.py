"""Tables printed at the end of a run: steps, and the metrics of evaluation steps."""

from __future__ import annotations

from orchestrator.logs import console


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


SHORT = {"avg_selected_docs": "docs", "exact_match": "EM", "token_f1": "F1",
         "match_gold_in_pred": "gold⊂pred", "match_pred_in_gold": "pred⊂gold",
         "first_char_accuracy": "acc", "rouge_l": "ROUGE-L", "recall@1": "R@1"}


def metrics_table(metrics: dict[str, dict], title: str = "results"):
    """One row per metrics step. Known metrics first, in a fixed order, as many columns as fit a
    terminal; metrics.json has them all."""
    from rich.table import Table

    present: list[str] = []
    for values in metrics.values():
        for k, v in values.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in present:
                present.append(k)
    names = [n for n in SHORT if n in present]
    names += [n for n in present if n not in SHORT and not n.startswith(
        ("ndcg", "mrr", "num_", "recall@"))]
    names = names[:8]
    table = Table(title=title)
    table.add_column("step", no_wrap=True)
    for n in names:
        header = SHORT.get(n, n)
        table.add_column(header, justify="right", min_width=len(header))
    for step, values in metrics.items():
        label = values.get("label") or step
        table.add_row(str(label), *[_fmt(values[n]) if n in values else "" for n in names])
    return table


def print_run_summary(status: dict) -> None:
    from rich.table import Table

    table = Table(title=f"run {status['run']}")
    for col in ("step", "stage", "state", "cache", "shards", "seconds"):
        table.add_column(col, justify="right" if col in ("shards", "seconds") else "left")
    for name, s in status["steps"].items():
        table.add_row(name, s.get("stage", ""), s.get("state", ""), s.get("cache", ""),
                      str(s.get("shards", "")), _fmt(s.get("duration", "")))
    c = console()
    c.print(table)
    if status.get("metrics"):
        c.print(metrics_table(status["metrics"]))


def print_sweep_summary(results) -> None:
    """One row per member: its overrides, state, and the metrics that differ between members."""
    from rich.table import Table

    per_member = [run.status.get("metrics", {}) for _, run, _ in results]
    steps = [st for st in (per_member[0] if per_member else {})
             if len({repr(m.get(st)) for m in per_member}) > 1] or list(per_member[0])[-1:]
    columns = []
    for st in steps[:2]:
        present = [k for k, v in per_member[0].get(st, {}).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
        known = [k for k in SHORT if k in present]
        columns += [(st, k) for k in (known or present)][:4]
    table = Table(title="sweep")
    table.add_column("member")
    table.add_column("overrides")
    table.add_column("state")
    for st, k in columns:
        header = f"{st} {SHORT.get(k, k)}"
        table.add_column(header, justify="right")
    for (member, run, ok), metrics in zip(results, per_member):
        ran = sum(1 for s in run.status["steps"].values() if s.get("state") == "done")
        cells = [_fmt(metrics.get(st, {}).get(k, "")) for st, k in columns]
        table.add_row(str(member.index), " ".join(member.overrides),
                      ("ok" if ok else "failed") + f", {ran} ran", *cells)
    console().print(table)
