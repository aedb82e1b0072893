"""``rag report``: a run's metrics, several runs' and a sweep's members', as a table, Markdown,
CSV or JSON, read from real run records of the toy chain; and its refusals."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.conftest import rag


def _run(toy, *overrides: str) -> None:
    assert rag("run", str(toy / "conf/chain.yaml"), *overrides, "--no-progress",
               runs=toy / "runs") == 0


def _report(toy, capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = rag("report", *args, "--runs-dir", str(toy / "runs"))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_latest_run_as_csv_and_markdown(toy, capsys):
    _run(toy)
    code, out, _ = _report(toy, capsys, "--format", "csv")
    assert code == 0
    # toy_sum writes sum, count and the label "chain"; no display: every number is shown, in
    # the order written, in full precision
    (row,) = csv.DictReader(io.StringIO(out))
    assert list(row) == ["step", "label", "sum", "count"]
    assert (row["step"], row["label"], row["count"]) == ("evaluate", "chain", "8")
    (written,) = (toy / "runs" / "latest" / "artifacts").glob("evaluate*/**/metrics.json")
    value = json.loads(written.read_text())["sum"]   # 40.800000000000004 before Python 3.12
    assert row["sum"] == repr(value) and value == pytest.approx(40.8)
    code, out, _ = _report(toy, capsys, "--format", "markdown", "--digits", "1")
    assert out == ("| step | label | sum | count |\n|---|---|---:|---:|\n"
                   "| evaluate | chain | 40.8 | 8 |\n")


def test_two_runs_side_by_side_with_the_setting_that_differs(toy, capsys):
    _run(toy)
    _run(toy, "steps.dpo.add=0.2")
    first, second = sorted(p.name for p in (toy / "runs" / "chain").iterdir() if p.is_dir())
    code, out, _ = _report(toy, capsys, first, second, "--format", "json", "--metrics", "sum")
    assert code == 0
    # the setting the second run changed is a column (the first's: the recipe's value, read
    # from its config; it was "", which read as "unknown")
    assert json.loads(out) == [
        {"run": f"chain/{first}", "steps.dpo.add": "0.1", "step": "evaluate", "label": "chain",
         "sum": pytest.approx(40.8)},
        {"run": f"chain/{second}", "steps.dpo.add": "0.2", "step": "evaluate", "label": "chain",
         "sum": pytest.approx(41.6)}]


def test_a_sweep_has_a_row_per_member_with_the_swept_value(toy, capsys):
    _run(toy, "-m", "steps.dpo.add=0.1,0.2")
    (sweep,) = (toy / "runs" / "chain").glob("*-sweep")
    code, out, _ = _report(toy, capsys, sweep.name, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["run"], r["steps.dpo.add"], round(float(r["sum"]), 6)) for r in rows] == [
        (f"chain/{sweep.name}/member-0000", "0.1", 40.8),
        (f"chain/{sweep.name}/member-0001", "0.2", 41.6)]
    code, out, _ = _report(toy, capsys, sweep.name)          # the terminal table
    assert "steps.dpo.add" in out and "41.600" in out
    # the sweep named once in the title, each member by its own name (the whole path wrapped
    # onto two lines per row at 120 columns in the demo's sweep)
    assert f"results of runs in chain/{sweep.name}/" in out
    rows = [line.split("│")[1:3] for line in out.splitlines() if line.count("│") > 3]
    assert [[cell.strip() for cell in row] for row in rows] == [["member-0000", "0.1"],
                                                                 ["member-0001", "0.2"]]


def test_an_unknown_metric_or_step_is_one_line_with_the_closest_name(toy, capsys):
    _run(toy)
    code, _, err = _report(toy, capsys, "--metrics", "summ")
    assert code == 2
    assert "error: no metric 'summ' in these runs (did you mean 'sum'?); they have: sum, count" in err
    code, _, err = _report(toy, capsys, "--steps", "evaluat")
    assert code == 2
    assert "no step with metrics 'evaluat' in these runs (did you mean 'evaluate'?)" in err


def test_a_run_without_metrics_is_named(toy, capsys):
    (toy / "conf" / "short.yaml").write_text(
        "ragline: {imports: [tests.toy.stages]}\nsteps:\n  load: {stage: toy_gen, n: 2}\n")
    assert rag("run", str(toy / "conf/short.yaml"), "--no-progress", runs=toy / "runs") == 0
    code, _, err = _report(toy, capsys)
    assert code == 2
    assert "error: no metrics in short/" in err
    assert "no step wrote a metrics artifact (yet)" in err


def test_a_step_that_scores_several_sets_has_a_row_per_set_under_its_labels():
    """The evaluate stage's metrics with several evaluation sets (by_dataset + macro): each
    block is a row, shown under the step's display labels."""
    from orchestrator.cli.report import Source, columns_and_rows, flat, markdown

    metrics = {"evaluate": {
        "label": "DynamicRAG", "exact_match": 0.5, "num_questions": 4,
        "display": {"exact_match": "EM"},
        "by_dataset": {"nq": {"exact_match": 0.75, "num_questions": 2},
                       "hotpotqa": {"exact_match": 0.25, "num_questions": 2}},
        "macro": {"exact_match": 0.5}}}
    found = [Source("r", metrics)]
    columns, rows = columns_and_rows(found)
    assert markdown(flat(found, columns, rows), set(columns.values())) == (
        "| step | label | block | EM |\n|---|---|---|---:|\n"
        "| evaluate | DynamicRAG |  | 0.500 |\n"
        "| evaluate | DynamicRAG | by_dataset.nq | 0.750 |\n"
        "| evaluate | DynamicRAG | by_dataset.hotpotqa | 0.250 |\n"
        "| evaluate | DynamicRAG | macro | 0.500 |\n")


def test_metrics_picks_any_metric_by_name_or_label(tmp_path, capsys):
    """A step shows EM and F1 (its display) but wrote recall@5 too: --metrics names either."""
    run = tmp_path / "runs" / "demo" / "20261204-120000"
    run.mkdir(parents=True)
    run.joinpath("status.json").write_text(json.dumps({"run": str(run), "steps": {}, "metrics": {
        "evaluate": {"label": "DynamicRAG", "exact_match": 0.5, "token_f1": 0.75,
                     "recall@5": 1.0, "display": {"exact_match": "EM", "token_f1": "F1"}}}}))
    code, out, _ = _report(tmp_path, capsys, "--format", "csv")
    assert code == 0 and out.splitlines()[0] == "step,label,EM,F1"
    code, out, _ = _report(tmp_path, capsys, "--metrics", "recall@5,EM", "--format", "csv")
    assert code == 0 and out.splitlines() == ["step,label,recall@5,EM", "evaluate,DynamicRAG,1.0,0.5"]


def test_a_table_wider_than_the_terminal_is_split_into_blocks_of_whole_columns(tmp_path, capsys):
    """``--all`` over pytrec_eval's metrics is wider than 120 columns (the width when stdout is
    not a terminal): the table comes in blocks that each fit, every block with the step and
    label, every metric whole in one of them (rich alone squeezed the step into 2-character
    slivers and cut the last columns off)."""
    run = tmp_path / "runs" / "demo" / "20261204-120000"
    run.mkdir(parents=True)
    metrics = {f"{m}@{k}": 0.5 for k in (1, 3, 5, 10, 20) for m in ("recall", "ndcg", "mrr")}
    run.joinpath("status.json").write_text(json.dumps({"run": str(run), "steps": {}, "metrics": {
        "eval_no_retrieval": {"label": "no retrieval", "exact_match": 0.25, **metrics},
        "evaluate": {"label": "DynamicRAG (SFT+DPO)", "exact_match": 0.75, **metrics}}}))
    code, out, _ = _report(tmp_path, capsys, "--all")
    assert code == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 120
    titles = [line.strip() for line in lines if line.strip().startswith("results")]
    assert len(titles) > 1 and titles[0] == f"results (1/{len(titles)})"
    for name in ("exact_match", *metrics):
        assert sum(f" {name} " in line for line in lines) == 1, name     # one header, whole
    assert sum("│ evaluate " in line for line in lines) == len(titles)   # the step in every block
    assert sum("DynamicRAG (SFT+DPO)" in line for line in lines) == len(titles)


def test_the_end_of_run_table_names_the_per_set_rows_it_leaves_out(tmp_path, capsys):
    """The table at the end of ``rag run`` has one row per metrics step: a step that scores
    several evaluation sets showed its pooled figures only, with no word of the per-set blocks
    and their macro average. A line now counts them and gives the command that shows them,
    which works from anywhere (the run's path)."""
    from orchestrator.cli.summary import print_run_summary

    run = tmp_path / "runs" / "demo" / "20261205-120000"
    run.mkdir(parents=True)
    status = {"run": str(run), "steps": {"evaluate": {"stage": "evaluate", "state": "done",
                                                      "cache": "miss", "duration": 1.0}},
              "metrics": {"evaluate": {"exact_match": 0.5, "display": {"exact_match": "EM"},
                                       "by_dataset": {"nq": {"exact_match": 0.75},
                                                      "hotpotqa": {"exact_match": 0.25}},
                                       "macro": {"exact_match": 0.5}}}}
    run.joinpath("status.json").write_text(json.dumps(status))
    capsys.readouterr()
    print_run_summary(status)
    line = capsys.readouterr().out.splitlines()[-1]
    assert line == ("3 nested rows not shown (by_dataset.nq, by_dataset.hotpotqa, macro): "
                    f"rag report {run}")
    assert rag(*line.split(": ", 1)[1].split()[1:]) == 0
    assert "by_dataset.hotpotqa" in capsys.readouterr().out
    print_run_summary({**status, "metrics": {"evaluate": {"exact_match": 0.5}}})
    assert "nested rows" not in capsys.readouterr().out


def test_the_sweep_table_names_each_members_per_set_rows(capsys):
    from orchestrator.cli.summary import print_sweep_table

    metrics = {"evaluate": {"exact_match": 0.5, "by_dataset": {"nq": {"exact_match": 0.75},
                                                               "fever": {"exact_match": 0.25}}}}
    rows = [{"member": f"member-000{i}", "overrides": [f"retrieval.k={k}"], "state": "done",
             "metrics": metrics} for i, k in enumerate((1, 3))]
    capsys.readouterr()
    print_sweep_table("sweep runs/demo/20261205-120000-sweep", rows,
                      sweep="runs/demo/20261205-120000-sweep")
    assert capsys.readouterr().out.splitlines()[-1] == (
        "each member: 2 nested rows not shown (by_dataset.nq, by_dataset.fever): rag report "
        "runs/demo/20261205-120000-sweep")


def test_an_override_that_sets_the_recipes_own_value_is_no_difference(toy, capsys):
    """Before: the override text was compared, so `steps.dpo.add=0.1` (the recipe's value)
    made a column, blank for the run that left it alone; a run named twice came twice."""
    _run(toy)
    _run(toy, "steps.dpo.add=0.1")
    first, second = sorted(p.name for p in (toy / "runs" / "chain").iterdir() if p.is_dir())
    code, out, _ = _report(toy, capsys, first, second, second, "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [r["run"] for r in rows] == [f"chain/{first}", f"chain/{second}"]
    assert all("steps.dpo.add" not in r for r in rows)


def test_the_results_table_names_each_row_by_its_step_and_its_label(capsys):
    """The end-of-run results table headed its first column "step" but filled it with each
    metrics block's label ("top-1 RAG"), a name no command takes: ``rag show`` and ``rag report
    --steps`` need the step's name. It now shows the step, and the label beside it when one
    differs."""
    from orchestrator.cli.summary import metrics_table
    from orchestrator.logs import report

    metrics = {"eval_top1": {"label": "top-1 RAG", "em": 0.25, "display": {"em": "EM"}},
               "evaluate": {"label": "evaluate", "em": 0.5, "display": {"em": "EM"}}}
    capsys.readouterr()
    report().print(metrics_table(metrics))
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if " EM " in line)
    assert header.split()[1:4] == ["step", "┃", "label"]
    row = next(line for line in lines if "eval_top1" in line)
    assert row.split("│")[1:4] == [" eval_top1 ", " top-1 RAG ", " 0.250 "]
    report().print(metrics_table({"evaluate": {"em": 0.5, "display": {"em": "EM"}}}))
    assert "label" not in capsys.readouterr().out
