"""Three unclear outputs a CLI audit found (audit_cli42, findings 8, 10 and 11):

- a stage module of one's own that imports a package that is not installed was blamed on the
  recipe's ``ragline.imports`` line, not on the module's line that imports it;
- a run that waited while another process computed every step ended with "nothing to do: all
  N steps cached", after step lines that said "done in 3.0s";
- ``rag dag --format dot|mermaid`` labelled an edge with the input's name only, hiding which
  of its producer's outputs it reads (``label`` -> ``sample`` is ``label.dpo``).
"""

from __future__ import annotations

import time

from tests.conftest import REPO, rag, rag_process
from tests.faults.faultkit import recipe

SLOW = """ragline:
  imports: [tests.toy.stages]
steps:
  gen: {stage: toy_gen, n: 4}
  mul: {stage: toy_map, inputs: {numbers: gen}, sleep: 3}
  total: {stage: toy_sum, inputs: {numbers: mul}}
"""


def test_a_missing_package_is_named_at_the_stage_modules_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "my_stages42.py").write_text('"""Stages."""\nimport numpy_nope  # noqa\n')
    (tmp_path / "r.yaml").write_text("ragline: {imports: [my_stages42]}\nsteps:\n"
                                     "  a: {stage: toy_gen}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert rag("run", "r.yaml", "--runs-dir", str(tmp_path / "runs")) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert (f"error: {tmp_path / 'my_stages42.py'}:2: a stage module imports 'numpy_nope', "
            "which is not installed") in err, err
    assert "pip install the package that provides 'numpy_nope'" in err


def test_a_run_that_only_waited_says_another_process_computed(toy, capsys):
    # no step after mul: one there made this a race on a loaded machine (this run could take
    # its lock first and compute it)
    waited = SLOW.replace("  total: {stage: toy_sum, inputs: {numbers: mul}}\n", "")
    assert waited != SLOW
    runs, conf = toy / "runs", recipe(toy, waited)
    first = rag_process("run", str(conf), "--runs-dir", str(runs))
    deadline = time.time() + 60
    while len(list((runs / "cache" / "locks").glob("*.lock"))) < 2 and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)   # the first run holds mul's lock (its second) for 3 s from now on
    assert rag("run", str(conf), runs=runs) == 0
    assert first.wait(timeout=120) == 0
    said = " ".join("".join(capsys.readouterr()).split())
    # gen was cached when this run planned, mul computed while it waited
    assert ("nothing computed here: all 2 steps cached, 1 of them (mul) computed by another "
            "process while this run waited") in said, said


def test_dag_edges_name_the_output_of_a_producer_with_several(capsys):
    conf = str(REPO / "conf" / "dynamicrag_demo.yaml")
    assert rag("dag", conf, "--format", "dot") == 0
    dot = capsys.readouterr().out
    assert '"label" -> "sample" [label="dpo→items"];' in dot
    assert '"label" -> "convert" [label="bc"];' in dot
    assert rag("dag", conf, "--format", "mermaid") == 0
    assert "label -->|dpo→items| sample" in capsys.readouterr().out


def test_a_tab_in_a_recipe_is_named_with_what_to_do(toy, capsys):
    conf = toy / "conf" / "tabs.yaml"
    conf.write_text("ragline:\n  imports: [tests.toy.stages]\nsteps:\n\tgen: {stage: toy_gen}\n")
    assert rag("run", str(conf), runs=toy / "runs") == 2
    err = capsys.readouterr().err
    assert f"{conf}:4:1: YAML syntax: found character '\\t'" in err, err
    assert "hint: YAML indents with spaces, never tabs" in err


def test_report_without_metrics_names_the_run_and_runs_dir_in_its_hint(toy, capsys):
    runs, conf = toy / "elsewhere", recipe(toy, SLOW.replace("sleep: 3", "sleep: 0"))
    assert rag("run", str(conf), "--until", "gen", "--runs-dir", str(runs)) == 0
    capsys.readouterr()
    assert rag("report", "--runs-dir", str(runs)) == 2
    err = " ".join(capsys.readouterr().err.split())
    run = next((runs / "c").iterdir())
    assert f"hint: rag status c/{run.name} --runs-dir {runs} shows the run's steps" in err, err


def test_a_failed_sweep_member_with_no_log_prints_no_empty_log_field(toy, capsys):
    runs, conf = toy / "runs", recipe(toy, SLOW.replace("sleep: 3", "sleep: 0"))
    assert rag("run", str(conf), "-m", "steps.gen.n=0,2", runs=runs) == 2   # an empty input
    capsys.readouterr()
    assert rag("status", "--runs-dir", str(runs)) == 0
    out = capsys.readouterr().out
    failed = [line for line in out.splitlines() if line.startswith("✗ member-0000")]
    assert failed and "is empty (0 rows)" in failed[0], out
    assert not failed[0].rstrip().endswith("log:"), failed[0]


def test_plan_previews_an_only_run(toy, capsys):
    """``rag plan`` took --force/--from/--until "as in rag run" but not --only (audit 12h)."""
    runs, conf = toy / "runs", recipe(toy, SLOW.replace("sleep: 3", "sleep: 0"))
    assert rag("plan", str(conf), "--only", "total", "--check", runs=runs) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert ("problem: --only total: upstream steps gen, mul are not cached (--only runs just the "
            "selected steps); run them first with --until total") in out, out
    assert rag("run", str(conf), "--until", "mul", runs=runs) == 0
    capsys.readouterr()
    assert rag("plan", str(conf), "--only", "total", "--json", runs=runs) == 0
    import json
    planned = json.loads(capsys.readouterr().out)
    assert [s["step"] for s in planned["members"][0]["steps"]] == ["total"], planned
    assert not planned["members"][0].get("problems"), planned


def test_a_sweep_of_one_value_says_it_is_one_run(toy, capsys):
    """``-m steps.gen.n=5`` ran a 1-member sweep without a word (audit 12b)."""
    runs, conf = toy / "runs", recipe(toy, SLOW.replace("sleep: 3", "sleep: 0"))
    assert rag("run", str(conf), "-m", "steps.gen.n=3", runs=runs) == 0
    said = " ".join("".join(capsys.readouterr()).split())
    assert ("sweep: 1 member -> " in said and "(no override lists two or more values, "
            "comma-separated: one run, kept as a sweep)") in said, said
