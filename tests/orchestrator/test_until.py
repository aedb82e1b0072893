"""``rag run --until STEP``: the step and everything upstream of it, nothing downstream; the
closing note names the steps left and the command that runs them."""

from __future__ import annotations

import shlex

from tests.conftest import counts, rag


def _out(capsys) -> str:
    captured = capsys.readouterr()
    return " ".join((captured.out + captured.err).split())


def test_until_runs_the_step_and_its_upstream_then_names_what_is_left(toy, monkeypatch, capsys):
    runs, chain = toy / "runs", str(toy / "conf/chain.yaml")
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    assert rag("run", chain, "--until", "sft", runs=runs) == 0
    ran = counts(toy / "count.txt")
    assert {k.split(":")[0] for k in ran} == {"retrieve", "aggregate", "rerank", "label",
                                              "convert", "sft"}
    out = _out(capsys)
    assert ("note: --until stopped before 4 step(s): sample, reward, dpo, evaluate; "
            f"to run them: rag run {chain} --runs-dir {runs}") in out

    (toy / "count.txt").unlink()
    rest = out.split("to run them: ")[1].split()[:5]
    assert rag(*shlex.split(" ".join(rest))[1:]) == 0   # the note's command: the rest, once
    assert {k.split(":")[0] for k in counts(toy / "count.txt")} == {"sample", "reward", "dpo"}
    # (toy_sum, the evaluate step's stage, does not count its calls)


def test_until_of_cached_steps_is_a_no_op_and_from_recomputes_within_it(toy, monkeypatch, capsys):
    runs, chain = toy / "runs", str(toy / "conf/chain.yaml")
    assert rag("run", chain, "--until", "label", runs=runs) == 0
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    assert rag("run", chain, "--until", "label", runs=runs) == 0
    assert counts(toy / "count.txt") == {}
    assert rag("run", chain, "--until", "label", "--from", "rerank", runs=runs) == 0
    assert counts(toy / "count.txt") == {"rerank:0": 1, "label:0": 1}


def test_until_refuses_only_and_a_force_or_from_it_leaves_without_effect(toy, capsys):
    runs, chain = toy / "runs", str(toy / "conf/chain.yaml")
    assert rag("run", chain, "--until", "sft", "--only", "dpo", runs=runs) == 2
    assert ("error: --only and --until select steps in two different ways: --only runs just the "
            "named steps, --until runs the named steps and everything upstream hint: give one of "
            "them") in _out(capsys)
    assert rag("run", chain, "--until", "sft", "--force", "dpo", runs=runs) == 2
    assert ("error: --force dpo: 'dpo' is not among the steps --until sft runs, so it would not "
            "be recomputed hint: add --until dpo, or leave out --force dpo") in _out(capsys)
    assert rag("run", chain, "--until", "rerank", "--from", "sft", runs=runs) == 2
    assert ("error: --from sft: no step --until rerank runs is 'sft' or downstream of it, so "
            "nothing would be recomputed") in _out(capsys)
    assert rag("run", chain, "--until", "sfx", runs=runs) == 2
    assert "error: no step 'sfx' in chain.yaml (did you mean 'sft'?)" in _out(capsys)
    assert not (runs / "cache").exists() or not any((runs / "cache").rglob("_entry.json"))


def test_until_in_a_sweep_computes_the_shared_upstream_once(toy, monkeypatch, capsys):
    runs, chain = toy / "runs", str(toy / "conf/chain.yaml")
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    assert rag("run", chain, "-m", "steps.sft.add=1,2", "--until", "sft", runs=runs) == 0
    ran = counts(toy / "count.txt")
    assert ran["label:0"] == 1 and ran["sft:0"] == 2
    assert not any(k.startswith(("sample", "dpo", "evaluate")) for k in ran)


def test_the_rest_after_from_and_until_recomputes_only_what_is_left(toy, monkeypatch, capsys):
    """Before: the note kept `--from rerank`, so its command recomputed rerank and label again;
    a failed run's resume command did the same with every finished forced step."""
    runs, chain = toy / "runs", str(toy / "conf/chain.yaml")
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    assert rag("run", chain, runs=runs) == 0
    (toy / "count.txt").unlink()
    assert rag("run", chain, "--from", "rerank", "--until", "label", runs=runs) == 0
    assert {k.split(":")[0] for k in counts(toy / "count.txt")} == {"rerank", "label"}
    out = _out(capsys)
    rest = out.split("to run them: ")[1].split(" --from convert")[0] + " --from convert"
    assert rest == f"rag run {chain} --runs-dir {runs} --from convert"

    (toy / "count.txt").unlink()
    monkeypatch.setenv("TOY_FAIL", "dpo:0")   # the rest fails at dpo, after convert … reward
    assert rag(*shlex.split(rest)[1:]) == 1
    assert {k.split(":")[0] for k in counts(toy / "count.txt")} == {"convert", "sft", "sample",
                                                                       "reward", "dpo"}
    again = _out(capsys).split("resume with: ")[1].split(" --from dpo")[0] + " --from dpo"
    assert again == f"rag run {chain} --runs-dir {runs} --from dpo"
    assert rag("status", runs=runs) == 0   # the record keeps it: status has no DAG to derive it
    assert f"resume with: {again} (the command less what it forced and finished)" in _out(capsys)
    (toy / "count.txt").unlink()
    monkeypatch.delenv("TOY_FAIL")
    assert rag(*shlex.split(again)[1:]) == 0
    assert {k.split(":")[0] for k in counts(toy / "count.txt")} == {"dpo"}
