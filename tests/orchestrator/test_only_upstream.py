"""``rag run --only``: every upstream step that is not cached is named at once, before any step
runs (exit 2), with a command that would work."""

from __future__ import annotations

import json
import shlex

from tests.conftest import counts, rag


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def _hint_command(err: str) -> list[str]:
    """The arguments of the 'run them too' command in an error's hint (without the 'rag')."""
    command = err.split("run them too: ")[1].split(" (cached steps are reused)")[0]
    return shlex.split(command)[1:]


def test_only_names_every_uncached_upstream_step_before_any_step_runs(toy, monkeypatch, capsys):
    runs, chain = toy / "runs", str(toy / "conf/chain.yaml")
    assert rag("run", chain, "--only", "load", runs=runs) == 0
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    capsys.readouterr()

    # retrieve comes first and is selected: it used to run before the run stopped at aggregate
    assert rag("run", chain, "--only", "retrieve", "--only", "evaluate", runs=runs) == 2
    err = _err(capsys)
    assert ("error: --only evaluate, retrieve: upstream steps aggregate, rerank, label, convert, "
            "sft, sample, reward, dpo are not cached (--only runs just the selected steps and "
            "reads their inputs from the cache)") in err
    assert (f"hint: run them too: rag run {chain} --runs-dir {runs} --until evaluate --until "
            "retrieve (cached steps are reused); "
            f"or run without --only: rag run {chain} --runs-dir {runs}") in err
    assert counts(toy / "count.txt") == {}  # nothing ran
    status = json.loads((runs / "latest" / "status.json").read_text())
    assert status["state"] == "failed" and "upstream steps aggregate," in status["error"]

    assert rag(*_hint_command(err)) == 0  # the hint's command works
    assert "dpo:0" in counts(toy / "count.txt") and "retrieve:0" in counts(toy / "count.txt")


def test_one_uncached_upstream_step_is_named_alone(toy, capsys):
    runs, chain = toy / "runs", str(toy / "conf/chain.yaml")
    assert rag("run", chain, runs=runs) == 0
    capsys.readouterr()
    assert rag("run", chain, "steps.dpo.add=3", "--only", "evaluate", runs=runs) == 2
    err = _err(capsys)
    assert "error: --only evaluate: upstream step 'dpo' is not cached" in err
    assert (f"hint: run it too: rag run {chain} steps.dpo.add=3 --runs-dir {runs} --until "
            "evaluate (cached steps are reused); or run without --only: rag run "
            f"{chain} steps.dpo.add=3 --runs-dir {runs}") in err


def test_only_with_cached_upstream_runs_just_the_selected_step(toy, monkeypatch):
    runs, chain = toy / "runs", str(toy / "conf/chain.yaml")
    assert rag("run", chain, runs=runs) == 0
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    assert rag("run", chain, "steps.sft.add=2", "--only", "sft", runs=runs) == 0
    assert counts(toy / "count.txt") == {"sft:0": 1}


def test_a_force_or_from_that_only_leaves_without_effect_is_refused(toy, capsys):
    """--force Y with --only X (Y not selected) used to be ignored in silence."""
    from tests.conftest import rag

    path = toy / "conf" / "sel.yaml"
    path.write_text("ragline:\n  imports: [tests.toy.stages]\nsteps:\n  a: {stage: toy_gen, n: 2}\n"
                    "  b: {stage: toy_map, inputs: {numbers: a}}\n"
                    "  c: {stage: toy_sum, inputs: {numbers: b}}\n")
    assert rag("run", str(path), runs=toy / "runs") == 0
    capsys.readouterr()
    assert rag("run", str(path), "--only", "c", "--force", "a", runs=toy / "runs") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert ("--force a: 'a' is not among the steps --only c runs, so it would not be recomputed "
            "hint: add --only a, or leave out --force a") in err
    assert rag("run", str(path), "--only", "a", "--from", "b", runs=toy / "runs") == 2
    assert "--from b: no step --only a runs is 'b' or downstream of it" in " ".join(
        capsys.readouterr().err.split())
    assert rag("run", str(path), "--only", "c", "--from", "b", runs=toy / "runs") == 0
