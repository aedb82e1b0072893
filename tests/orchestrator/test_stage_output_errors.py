"""A stage that returns the wrong thing: its own code is at fault, not its input.

Each case runs a tiny recipe with a toy stage that returns something its declared output type
cannot hold (tests/toy/stages.py, ``toy_wrong_*``) and checks the one line (step, output, stage
and its module, then what is wrong), the hint (what the type expects), exit 1 (not 2, "bad
input"), the run record, and that the other steps' results are kept.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import rag

RECIPE = """ragline:
  imports: [tests.toy.stages]
  executor: {{name: local, isolate: {isolate}}}
steps:
  gen: {{stage: toy_gen, n: 4}}
  ok: {{stage: toy_map, inputs: {{numbers: gen}}, mul: 2.0}}
  bad: {{stage: {stage}, inputs: {{numbers: gen}}, what: {what}{extra}}}
{after}"""

STAGE = "(tests.toy.stages)"
TABLE_HINT = ("hint: fix the stage's return value: Numbers expects a list of row dicts (or a "
              "pyarrow.Table) with the columns id (string), x (double)")
METRICS_HINT = ("hint: fix the stage's return value: Summary expects a dict of JSON values, "
                "e.g. {\"recall@10\": 0.5}")
SPLIT_HINT = ("hint: fix the stage's return value: build it by name, Split(low=..., high=...), "
              "so no output can get another's value (a dict with exactly the keys low, high "
              "works too)")


def _run(toy: Path, stage: str, what: str, *, isolate: str = "never", extra: str = "",
         after: str = "  total: {stage: toy_sum, inputs: {numbers: bad}}\n") -> int:
    recipe = toy / "conf" / "wrong.yaml"
    recipe.parent.mkdir(parents=True, exist_ok=True)
    recipe.write_text(RECIPE.format(isolate=isolate, stage=stage, what=what, extra=extra,
                                    after=after))
    return rag("run", str(recipe), "--no-progress", runs=toy / "runs")


def _lines(capsys) -> list[str]:
    """stderr's lines, each with its spaces collapsed (rich pads and may wrap)."""
    return [" ".join(line.split()) for line in capsys.readouterr().err.splitlines()]


def _status(toy: Path) -> dict:
    return json.loads((toy / "runs" / "latest" / "status.json").read_text())


def _check_failed_run(toy: Path, lines: list[str], failed: str, message: str, hint: str,
                      skipped: tuple[str, ...] = ("total",)) -> None:
    """``failed`` failed with ``message`` (one line) and ``hint`` (the next line), exit 1's
    wording, and the run record; gen and ok done and kept."""
    at = lines.index(f"✗ {failed} failed: {message}")
    assert lines[at + 1] == hint
    assert "the run failed. Finished steps are cached; resume with:" in lines
    assert not any("bad input" in line for line in lines)
    assert not any("Traceback" in line for line in lines)
    status = _status(toy)
    assert status["state"] == "failed"
    step = failed.split("[")[0]
    assert status["steps"][step]["state"] == "failed"
    assert status["steps"][step]["error"] == message
    assert {status["steps"][s]["state"] for s in ("gen", "ok")} == {"done"}
    for name in skipped:
        assert status["steps"][name]["state"] == "skipped"
    assert (toy / "runs" / "latest" / "artifacts" / "ok.out").exists()


@pytest.mark.parametrize("isolate", ["never", "always"])   # in this process; in a worker
def test_rows_without_a_declared_column_are_the_stages_fault_not_bad_input(toy, capsys, isolate):
    assert _run(toy, "toy_wrong_rows", "misnamed", isolate=isolate) == 1
    message = (f"step 'bad' output 'out' of stage 'toy_wrong_rows' {STAGE}: no row has the column "
               "'x' that Numbers declares; the rows have: id, value")
    _check_failed_run(toy, _lines(capsys), "bad", message, TABLE_HINT)
    # the other steps' results were kept: fixed, only the stage that was wrong runs again
    assert _run(toy, "toy_wrong_rows", "ok", isolate=isolate) == 0
    lines = _lines(capsys)
    assert "✓ gen cached" in lines and "✓ ok cached" in lines
    assert _status(toy)["steps"]["bad"]["state"] == "done"


def test_a_value_of_the_wrong_type_names_column_type_row_and_value(toy, capsys):
    """Sharded, with isolate: auto, so in worker processes (the line and hint come back through
    the worker's result): shard 0's rows fit and are kept; shard 1's row 0 (x == 2) has a string
    where Numbers declares a double."""
    assert _run(toy, "toy_wrong_rows", "mistyped", isolate="auto", extra=", shards: 2") == 1
    message = (f"step 'bad' output 'out' of stage 'toy_wrong_rows' {STAGE}: rows do not fit "
               "Numbers: column 'x' (double): row 0 has 'three' (str)")
    lines = _lines(capsys)
    _check_failed_run(toy, lines, "bad[1/2]", message, TABLE_HINT)
    assert not any(line.startswith("✗ bad[0/2]") for line in lines)
    assert _status(toy)["steps"]["bad"]["error"] == message


def test_no_return_says_so(toy, capsys):
    assert _run(toy, "toy_wrong_rows", "none") == 1
    message = (f"step 'bad' output 'out' of stage 'toy_wrong_rows' {STAGE}: expected a list of row "
               "dicts or a pyarrow.Table for Numbers, got None (does the stage return its rows?)")
    _check_failed_run(toy, _lines(capsys), "bad", message, TABLE_HINT)


def test_a_metric_that_is_not_json_is_one_line_not_a_crash(toy, capsys):
    assert _run(toy, "toy_wrong_metrics", "path", after="") == 1
    message = (f"step 'bad' output 'out' of stage 'toy_wrong_metrics' {STAGE}: metric 'p' is a "
               "PosixPath; metrics are JSON values (numbers, strings, lists, dicts)")
    _check_failed_run(toy, _lines(capsys), "bad", message, METRICS_HINT, skipped=())


def test_numpy_scalar_metrics_still_work(toy, capsys):
    assert _run(toy, "toy_wrong_metrics", "ok", after="") == 0
    assert _status(toy)["metrics"]["bad"] == {"count": 4.0, "mean": 1.5}


@pytest.mark.parametrize("what, got", [("tuple", "tuple"), ("list", "list"),
                                       ("baddict", "a dict with the keys low, hi")])
def test_a_plain_tuple_for_a_namedtuple_names_the_fields_to_build(toy, capsys, what, got):
    after = "  total: {stage: toy_sum, inputs: {numbers: bad.low}}\n"
    assert _run(toy, "toy_wrong_split", what, after=after) == 1
    message = (f"step 'bad': stage 'toy_wrong_split' {STAGE} declares Split (outputs low, high): "
               f"return Split(low=..., high=...), got {got}")
    _check_failed_run(toy, _lines(capsys), "bad", message, SPLIT_HINT)


@pytest.mark.parametrize("what", ["dict", "ok"])
def test_a_dict_of_exactly_the_output_names_is_taken_like_the_namedtuple(toy, capsys, what):
    """A dict names each output, as the NamedTuple does: nothing can land in the wrong one."""
    after = "  total: {stage: toy_sum, inputs: {numbers: bad.high}}\n"
    assert _run(toy, "toy_wrong_split", what, after=after) == 0
    assert _status(toy)["metrics"]["total"] == {"sum": 5.0, "count": 2.0, "label": "sum"}


def test_a_stage_refusing_its_input_is_still_bad_input(toy, capsys):
    """DataError keeps meaning bad input (exit 2); only a wrong return value became exit 1."""
    data = toy / "numbers.txt"
    data.write_text("1\nabc\n")
    recipe = toy / "conf" / "input.yaml"
    recipe.parent.mkdir(parents=True, exist_ok=True)
    recipe.write_text(f"ragline:\n  imports: [tests.toy.stages]\nsources:\n  numbers: {data}\n"
                      "steps:\n  load: {stage: toy_gen, inputs: {path: numbers}}\n")
    assert rag("run", str(recipe), "--no-progress", runs=toy / "runs") == 2
    lines = _lines(capsys)
    assert f"✗ load failed: {data}:2: expected a number, got 'abc'" in lines
    assert any(line.startswith("the run failed on bad input") for line in lines)


# ------------------------------------------------------------------ the writer itself


def test_the_offending_row_is_found_past_the_first_chunk(tmp_path):
    from orchestrator.artifacts import write_artifact
    from orchestrator.errors import StageOutputError
    from tests.toy.stages import Numbers

    rows = [{"id": str(i), "x": float(i)} for i in range(3000)]
    rows[2500]["x"] = [1.0]
    with pytest.raises(StageOutputError) as e:
        write_artifact(rows, Numbers, tmp_path / "t", "s.out", "k")
    assert e.value.message == ("step 's' output 'out': rows do not fit Numbers: column 'x' "
                               "(double): row 2500 has [1.0] (list)")


def test_rows_that_are_not_dicts_and_untypable_extra_columns_are_named(tmp_path):
    from orchestrator.artifacts import write_artifact
    from orchestrator.errors import StageOutputError
    from tests.toy.stages import Numbers

    with pytest.raises(StageOutputError) as e:
        write_artifact([{"id": "0", "x": 0.0}, ("1", 1.0)], Numbers, tmp_path / "t", "s.out", "k")
    assert e.value.message == ("step 's' output 'out': row 1 is ('1', 1.0) (tuple), not a dict "
                               "of column values")
    with pytest.raises(StageOutputError) as e:
        write_artifact([{"id": "0", "x": 0.0, "n": 1}, {"id": "1", "x": 1.0, "n": "one"}], Numbers,
                       tmp_path / "u", "s.out", "k")
    assert e.value.message.startswith("step 's' output 'out': column 'n' (not declared by "
                                      "Numbers, so typed from its values) cannot be typed: ")


def test_metrics_keep_numpy_scalars_as_before_and_name_a_nested_non_json_value(tmp_path):
    import numpy as np

    from orchestrator.artifacts import write_artifact
    from orchestrator.errors import StageOutputError
    from tests.toy.stages import Summary

    ref = write_artifact({"n": np.int64(3), "f": np.float32(0.5), "s": "x"}, Summary,
                         tmp_path / "m", "s.out", "k")
    assert json.loads(Path(ref.paths[0]).read_text()) == {"f": 0.5, "n": 3.0, "s": "x"}
    with pytest.raises(StageOutputError) as e:
        write_artifact({"by_task": {"qa": {1, 2}}}, Summary, tmp_path / "n", "s.out", "k")
    assert e.value.message == ("step 's' output 'out': metric 'by_task' holds a set; metrics are "
                               "JSON values (numbers, strings, lists, dicts)")


def test_a_worker_result_carries_the_hint():
    from orchestrator.executors.base import Failed, result_from_json, result_to_json

    assert result_from_json(result_to_json(Failed("x", hint="fix it"))).hint == "fix it"
    assert result_from_json({"state": "failed", "message": "old worker"}).hint == ""
