"""What stops a run before its steps start is named up front, and where to fix it:

* a missing source names where its path is set: the recipe's line of its ``sources:`` entry, the
  line of the key that entry refers to (``${data.numbers}``), or the command-line override;
* a sweep member whose step the executor refuses (more GPUs than the machine has) stops the
  sweep before any member runs, as a member with a missing source does; ``rag plan`` names it.
"""

from __future__ import annotations

from tests.conftest import counts, rag

DIRECT = """\
ragline:
  imports: [tests.toy.stages]
sources:
  numbers: {path}
steps:
  load: {{stage: toy_gen, inputs: {{path: numbers}}}}
  map:  {{stage: toy_map, inputs: {{numbers: load}}, add: 1.0}}
"""

REFERENCED = """\
ragline:
  imports: [tests.toy.stages]
data:
  numbers: {path}
sources:
  numbers: ${{data.numbers}}
steps:
  load: {{stage: toy_gen, inputs: {{path: numbers}}}}
  map:  {{stage: toy_map, inputs: {{numbers: load}}, add: 1.0}}
"""


def _words(text: str) -> str:
    return " ".join(text.split())


def _recipe(toy, template: str, path) -> str:
    recipe = toy / "recipe.yaml"
    recipe.write_text(template.format(path=path))
    return str(recipe)


def _plan(capsys, *args, runs) -> tuple[int, str, str]:
    capsys.readouterr()
    code = rag("plan", *args, runs=runs)
    captured = capsys.readouterr()
    return code, _words(captured.out), _words(captured.err)


def _nothing_ran(toy) -> bool:
    cache = toy / "runs" / "cache"
    return counts(toy / "count.txt") == {} and not any(cache.rglob("_entry.json"))


# ------------------------------------------------------------ a missing source: where it is set


def test_a_missing_source_names_the_recipe_line_of_its_entry(toy, monkeypatch, capsys):
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    missing = toy / "missing.txt"
    recipe, runs = _recipe(toy, DIRECT, missing), toy / "runs"
    problem = f"{recipe}:4: source 'numbers': {missing} does not exist"
    code, out, _ = _plan(capsys, recipe, "--check", runs=runs)
    assert code == 2
    assert f"problem: {problem} (a run would stop here)" in out
    assert _plan(capsys, recipe, runs=runs)[0] == 0          # without --check: a report
    assert rag("run", recipe, "--no-progress", runs=runs) == 2
    err = _words(capsys.readouterr().err)
    assert f"error: {problem}" in err
    assert "hint: fix the path in the recipe or override it on the command line: " \
           "sources.numbers=/path/to/file" in err
    assert _nothing_ran(toy)


def test_a_missing_source_set_by_an_override_names_the_override(toy, capsys):
    missing = toy / "nope.txt"
    recipe, runs = _recipe(toy, DIRECT, toy / "missing.txt"), toy / "runs"
    code, out, _ = _plan(capsys, recipe, f"sources.numbers={missing}", "--check", runs=runs)
    assert code == 2
    assert (f"problem: override 'sources.numbers={missing}': source 'numbers': {missing} does "
            "not exist") in out
    assert rag("run", recipe, f"sources.numbers={missing}", runs=runs) == 2
    assert (f"error: override 'sources.numbers={missing}': source 'numbers': {missing} does not "
            "exist") in _words(capsys.readouterr().err)


def test_a_source_that_refers_to_a_key_names_that_keys_line_or_its_override(toy, capsys):
    missing = toy / "missing.txt"
    recipe, runs = _recipe(toy, REFERENCED, missing), toy / "runs"
    code, out, _ = _plan(capsys, recipe, "--check", runs=runs)
    assert code == 2
    assert f"problem: {recipe}:4 (data.numbers): source 'numbers': {missing} does not exist" in out

    code, out, _ = _plan(capsys, recipe, "data.numbers=nope.txt", "--check", runs=runs)
    assert code == 2
    assert ("problem: override 'data.numbers=nope.txt': source 'numbers': nope.txt does not "
            "exist (looked in the current directory") in out   # the tried places are kept
    assert rag("run", recipe, "data.numbers=nope.txt", runs=runs) == 2
    err = _words(capsys.readouterr().err)
    assert "error: override 'data.numbers=nope.txt': source 'numbers': nope.txt does not" in err
    assert "override it on the command line: data.numbers=/path/to/file" in err


def test_a_sweep_names_the_member_whose_source_is_missing(toy, monkeypatch, capsys):
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    good, missing = toy / "a.txt", toy / "b.txt"
    good.write_text("1\n2\n")
    recipe, runs = _recipe(toy, REFERENCED, good), toy / "runs"
    swept = f"data.numbers={good},{missing}"
    code, out, _ = _plan(capsys, recipe, "-m", swept, "--check", runs=runs)
    assert code == 2
    assert (f"problem: override 'data.numbers={missing}': source 'numbers': {missing} does not "
            "exist") in out
    assert out.count("does not exist") == 1                  # member-0000's file is there

    assert rag("run", recipe, "-m", swept, "--no-progress", runs=runs) == 2
    err = _words(capsys.readouterr().err)
    assert (f"error: member-0001 (data.numbers={missing}): source 'numbers': {missing} does not "
            "exist") in err
    assert "1 of 2 members would stop before their steps run" in err
    assert _nothing_ran(toy) and not list((runs / "recipe").glob("*-sweep"))


# ------------------------------------------------------ a step the executor refuses: up front


def test_a_sweep_member_asking_for_gpus_the_machine_lacks_stops_the_sweep_before_it_starts(
        toy, monkeypatch, capsys):
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")           # no GPU, on any machine
    numbers = toy / "n.txt"
    numbers.write_text("1\n2\n")
    recipe, runs = _recipe(toy, DIRECT, numbers), toy / "runs"
    assert rag("run", recipe, "-m", "steps.map.gpus=0,1", "--no-progress", runs=runs) == 2
    err = _words(capsys.readouterr().err)
    assert ("error: member-0001 (steps.map.gpus=1): steps.map.gpus: 1 GPU(s) per shard asked "
            "for, but no CUDA GPU is visible on this machine; run on CPU with steps.map.gpus=0, "
            "or use a GPU machine") in err
    assert ("hint: 1 of 2 members would stop before their steps run; fix the value (or leave it "
            "out of the sweep), then rerun: nothing ran") in err
    assert "member-0000 (" not in err
    assert _nothing_ran(toy)                                 # member-0000's map did not run
    assert not list((runs / "recipe").glob("*-sweep"))       # no sweep record was started


def test_more_than_five_refused_members_are_counted_not_listed(toy, monkeypatch, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    numbers = toy / "n.txt"
    numbers.write_text("1\n")
    recipe, runs = _recipe(toy, DIRECT, numbers), toy / "runs"
    assert rag("run", recipe, "-m", "steps.map.gpus=1,2", "steps.map.add=1,2,3,4",
               "--no-progress", runs=runs) == 2
    err = _words(capsys.readouterr().err)
    assert err.count("GPU(s) per shard asked for") == 5
    assert "error: and 3 more members" in err and "8 of 8 members would stop" in err
    assert _nothing_ran(toy)


def test_plan_names_a_step_the_executor_would_refuse(toy, monkeypatch, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    numbers = toy / "n.txt"
    numbers.write_text("1\n")
    recipe, runs = _recipe(toy, DIRECT, numbers), toy / "runs"
    code, out, _ = _plan(capsys, recipe, "steps.map.gpus=1", "--check", runs=runs)
    assert code == 2
    assert ("problem: steps.map.gpus: 1 GPU(s) per shard asked for, but no CUDA GPU is visible "
            "on this machine; run on CPU with steps.map.gpus=0, or use a GPU machine (a run "
            "would stop here)") in out
    # a step --until leaves out is not asked for
    assert _plan(capsys, recipe, "steps.map.gpus=1", "--until", "load", "--check",
                 runs=runs)[0] == 0
    code, out, _ = _plan(capsys, recipe, "-m", "steps.map.gpus=0,2", "--check", runs=runs)
    assert code == 2 and out.count("GPU(s) per shard asked for") == 1

    assert rag("run", recipe, "steps.map.gpus=1", "--no-progress", runs=runs) == 2
    assert ("error: steps.map.gpus: 1 GPU(s) per shard asked for, but no CUDA GPU is visible on "
            "this machine") in _words(capsys.readouterr().err)
    assert _nothing_ran(toy)


def test_a_source_set_in_a_config_group_chosen_on_the_command_line_names_its_file(toy, capsys):
    missing = toy / "missing.txt"
    recipe, runs = _recipe(toy, DIRECT, toy / "n.txt"), toy / "runs"
    (toy / "n.txt").write_text("1\n")
    (toy / "variant").mkdir()
    (toy / "variant" / "other.yaml").write_text(f"# @package _global_\nsources:\n  numbers: {missing}\n")
    code, out, _ = _plan(capsys, recipe, "+variant=other", "--check", runs=runs)
    assert code == 2
    assert (f"problem: {toy / 'variant' / 'other.yaml'}:3: source 'numbers': {missing} does not "
            "exist") in out


def test_the_members_of_a_sweep_ask_the_machine_for_its_gpus_once(toy, monkeypatch, capsys):
    """A step the members share is checked once, not once per member (nvidia-smi each time)."""
    from orchestrator.executors import local

    asked = []
    monkeypatch.setattr(local, "visible_gpus", lambda: asked.append(1) or [0])
    (toy / "n.txt").write_text("1\n")
    recipe, runs = _recipe(toy, DIRECT, toy / "n.txt"), toy / "runs"
    code, out, _ = _plan(capsys, recipe, "-m", "steps.map.add=1,2,3,4", "steps.map.gpus=1",
                         "--check", runs=runs)
    assert code == 0 and "problem:" not in out
    assert len(asked) == 1


HW = """\
ragline:
  imports: [tests.toy.stages]
hw:
  gpus: 1
  train_gpus: 2
sources:
  numbers: {path}
steps:
  load:  {{stage: toy_gen, inputs: {{path: numbers}}}}
  map:   {{stage: toy_map, inputs: {{numbers: load}}, add: 1.0, gpus: "${{hw.gpus}}"}}
  train: {{stage: toy_map, inputs: {{numbers: map}}, mul: 2.0, gpus: "${{hw.train_gpus}}"}}
  eval:  {{stage: toy_map, inputs: {{numbers: train}}, add: 0.5, gpus: "${{hw.gpus}}"}}
"""


def test_a_recipe_whose_gpus_are_set_in_one_place_is_refused_once_with_that_place(
        toy, monkeypatch, capsys):
    """A paper recipe sets its GPUs under ``hw:`` and its steps read them through ``${hw.gpus}``;
    on a machine without a GPU it used to be refused one step at a time, each hint naming that
    step's own key: a run, an override and a rerun per step. Now one refusal names them all and
    the keys that set them."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv("TOY_COUNT_FILE", str(toy / "count.txt"))
    numbers = toy / "n.txt"
    numbers.write_text("1\n2\n")
    recipe, runs = _recipe(toy, HW, numbers), toy / "runs"
    fix = "run on CPU with hw.gpus=0 hw.train_gpus=0, or use a GPU machine"
    code, out, _ = _plan(capsys, recipe, "--check", runs=runs)
    assert code == 2
    assert (f"problem: 3 steps ask for GPUs (map, train, eval), but no CUDA GPU is visible on "
            f"this machine; {fix} (a run would stop here)") in out
    assert rag("run", recipe, "--no-progress", runs=runs) == 2
    assert f"hint: {fix}" in _words(capsys.readouterr().err)
    assert _nothing_ran(toy)
    # an override already on the command line is the key to set
    assert rag("run", recipe, "steps.train.gpus=4", "--no-progress", runs=runs) == 2
    assert "run on CPU with hw.gpus=0 steps.train.gpus=0," in _words(capsys.readouterr().err)
    assert rag("run", recipe, "hw.gpus=0", "hw.train_gpus=0", "--no-progress", runs=runs) == 0
    assert set(counts(toy / "count.txt")) == {"map:0", "train:0", "eval:0"}


def test_steps_unrolled_from_a_repeat_block_name_the_key_their_template_reads(
        toy, monkeypatch, capsys):
    """Reinforced-IR's rounds: ``augment_1, augment_2`` come from one template whose ``gpus``
    reads ``${hw.gpus}``; the refusal names that key, not ``steps.augment_1.gpus``."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    numbers = toy / "n.txt"
    numbers.write_text("1\n")
    recipe = _recipe(toy, HW + """\
repeat:
  round:
    times: 2
    first: {{again: train}}
    steps:
      again: {{stage: toy_map, inputs: {{numbers: again@prev}}, gpus: "${{hw.train_gpus}}"}}
""", numbers)
    code, out, _ = _plan(capsys, recipe, "hw.gpus=0", "--check", runs=toy / "runs")
    assert code == 2
    assert ("3 steps ask for GPUs (train, again_1, again_2), but no CUDA GPU is visible on this "
            "machine; run on CPU with hw.train_gpus=0, or use a GPU machine") in out
