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
    from rich.table import Table

    table = Table(title="sweep")
    table.add_column("member")
    table.add_column("overrides")
    table.add_column("state")
    names: list[str] = []
    for _, run, _ in results:
        for step, values in run.status.get("metrics", {}).items():
            for k, v in values.items():
                key = f"{step}.{k}"
                if isinstance(v, (int, float)) and not isinstance(v, bool) and key not in names:
                    names.append(key)
    names = names[:8]
    for n in names:
        table.add_column(n, justify="right")
    for member, run, ok in results:
        m = run.status.get("metrics", {})
        cells = []
        for n in names:
            step, k = n.split(".", 1)
            cells.append(_fmt(m.get(step, {}).get(k, "")))
        ran = sum(1 for s in run.status["steps"].values() if s.get("state") == "done")
        table.add_row(str(member.index), " ".join(member.overrides),
                      ("ok" if ok else "failed") + f" ({ran} ran)", *cells)
    console().print(table)
