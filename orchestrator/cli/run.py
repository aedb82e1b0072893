"""``rag run``: compose, validate, plan, execute; resume by rerunning the same command."""

from __future__ import annotations

import os
from pathlib import Path

EXAMPLES = """examples:
  rag run conf/dynamicrag_demo.yaml                          # CPU demo; a second run is a no-op
  rag run conf/dynamicrag_demo.yaml data.corpus=corpus.jsonl data.train_questions=train.jsonl \\
      data.eval_questions=dev.jsonl                          # your own data
  rag run conf/dynamicrag_llama3.yaml -m steps.dpo.beta=0.05,0.1,0.2   # sweep, shared upstream once
  rag run conf/dynamicrag_llama3.yaml --force rerank         # recompute one step (cut-off downstream)
  rag run conf/dynamicrag_llama3.yaml --from sft             # recompute sft and everything after it
  rag run conf/dynamicrag_llama3.yaml --only evaluate        # one step, upstream must be cached
  rag run conf/dynamicrag_llama3.yaml --until index          # the index and what it needs, no more

After a failure, rerun the same command: finished steps and shards are reused. A step that
failed on bad input (exit 2) fails the same way until the input named in its error is fixed."""

RUNS_DIR_HINT = "point --runs-dir (or ragline.runs_dir in the recipe) at a writable directory"


def add_arguments(p) -> None:
    from orchestrator.cli.common import add_recipe_arguments, whole_number

    add_recipe_arguments(p)
    p.add_argument("--only", action="append", default=[], metavar="STEP",
                   help="run only this step (repeatable); its inputs must be cached")
    p.add_argument("--until", action="append", default=[], metavar="STEP",
                   help="run this step and every step upstream of it, nothing downstream "
                        "(repeatable)")
    p.add_argument("--from", dest="from_", action="append", default=[], metavar="STEP",
                   help="recompute this step and everything downstream of it")
    p.add_argument("--force", action="append", default=[], metavar="STEP",
                   help="recompute this step even if cached (downstream reruns only if its output changes)")
    p.add_argument("-j", "--jobs", type=whole_number(1, "; leave it out for one worker per CPU "
                                                         "core or GPU slot"), default=0,
                   help="parallel shard workers, 1 or more (default: CPU cores or GPU slots)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="log INFO to the terminal")


# SIGTERM was received: Ray's ray.get turns the handler's Terminated into a plain
# KeyboardInterrupt, which must still end as SIGTERM does (exit 143, not Ctrl-C's 130)
_signalled: list[int] = []


def _terminate(signum, frame):
    from orchestrator.runner import Terminated

    _signalled.append(signum)
    raise Terminated()


def main(args) -> int:
    """Run the recipe; SIGTERM stops it like Ctrl-C (workers stopped, locks released), exit 143."""
    import signal

    from orchestrator.logs import console
    from orchestrator.runner import Terminated

    _signalled.clear()
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (an embedding program): leave its handlers alone
        previous = None
    try:
        return _run(args)
    except KeyboardInterrupt as e:
        if not isinstance(e, Terminated) and not _signalled:
            raise   # Ctrl-C: the CLI's "interrupted", exit 130
        console().print(f"[yellow]terminated[/] (SIGTERM): {resume_words(args)}", soft_wrap=True)
        return 143
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def resume_words(args) -> str:
    """How to resume an interrupted ``rag run``: the same command, or (after ``--force`` or
    ``--from``) the one that does not recompute the forced steps it finished."""
    from orchestrator.logs import escape
    from orchestrator.rundir import shell_command

    again = getattr(args, "resume", None)
    if again is None or again == shell_command(args.argv):
        return "finished steps are cached; rerun the same command to resume"
    return f"finished steps are cached; resume with: {escape(again)}"


def _run(args) -> int:
    from orchestrator.cli.common import (load, recipe_notes, runs_dir, runs_elsewhere,
                                         shipped_note)
    from orchestrator.cli.summary import print_run_summary, print_sweep_summary
    from orchestrator.errors import ConfigError, DataError, RagError
    from orchestrator.logs import console, escape
    from orchestrator.rundir import RunDir, shell_command
    from orchestrator.runner import Options, Runner, check_selection
    from orchestrator.store import Store, check_dir

    elsewhere = runs_elsewhere(args)
    recipe, members, dags = load(args)
    for note in filter(None, [shipped_note(args), *recipe_notes(members)]):
        console().print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    runs = runs_dir(args, dags[0])
    if elsewhere and str(runs) == "runs":   # neither --runs-dir nor ragline.runs_dir moved it
        console().print(f"[yellow]note:[/] {escape(elsewhere)}", soft_wrap=True)
    command = shell_command(args.argv)
    opts = Options(set(args.only), set(args.from_), set(args.force), args.jobs,
                   not args.no_progress, command, until=set(args.until))
    for dag in dags:
        # a misnamed --only/--until/--from/--force is refused before a run record exists: a
        # record of it would become `latest` and count as a run in gc --keep-runs
        check_selection(dag, opts)
    check_dir(runs, "runs directory", RUNS_DIR_HINT)
    store = Store.for_runs(runs)  # checked by the runner, before the plan reads it
    sweep = None
    if args.multirun and not args.overrides:
        raise ConfigError("-m (a sweep) needs at least one override with comma-separated values",
                          hint="e.g. rag run RECIPE -m steps.dpo.beta=0.05,0.1; without -m it is "
                               "one run")
    if args.multirun:   # a sweep, even of one value: its record is where a sweep's is
        refused, estimate = _sweep_refused(members, dags, store, runs, opts)
        if refused:
            return 2
        sweep = _new_sweep(runs, recipe, command, members)
        one = (" (no override lists two or more values, comma-separated: one run, kept as a "
               "sweep)" if len(members) == 1 else "")
        console().print(f"sweep: {len(members)} member{'s' * (len(members) > 1)} -> {sweep}"
                        f"{estimate}{one}", soft_wrap=True)
    results = []
    must_fix = []  # per failed run: every failure was bad input (a rerun as is fails the same)
    with store.lease(runs) as lease:  # gc keeps what a live run uses
        for member, dag in zip(members, dags):
            path = RunDir.new_path(runs, recipe, sweep, member.index)
            run = RunDir(path, recipe, member.overrides, command, runs)
            lease.add_run(run.path)
            run.write_config(member.config, member.text)
            if sweep is not None:
                console().print(f"[bold]member {member.index}[/]: {' '.join(member.overrides)}")
            runner = Runner(dag, store, runs, run, opts)
            try:
                ok = runner.execute()
                bad_input = runner.failed_on_input()
            except RagError as e:   # found before its steps ran (a source, resources)
                if sweep is None:
                    raise
                console().print(f"[red]error:[/] {escape(e.message)}", soft_wrap=True)
                if e.hint:
                    console().print(f"  hint: {escape(e.hint)}", soft_wrap=True)
                ok, bad_input = False, isinstance(e, (ConfigError, DataError))
            except KeyboardInterrupt:
                if sweep is None:   # the closing line: less what --force/--from finished
                    args.resume = run.status.get("resume", opts.command)
                if sweep is not None:
                    console().print(f"sweep stopped in {path.name}: {len(results)} of "
                                    f"{len(members)} members finished; rerunning the same "
                                    "command reuses their steps (in a new sweep directory)",
                                    soft_wrap=True)
                raise
            results.append((member, run, ok))
            if not ok:
                must_fix.append(bad_input)
            if sweep is None:
                print_run_summary(run.status)
    if sweep is not None:
        print_sweep_summary(sweep, results)
        return _end_of_sweep(sweep, results, must_fix, args, dags[0], opts)
    return _end_of_run(results[-1][1], results[-1][2], must_fix, dags[0], opts)


def _sweep_refused(members, dags, store, runs, opts) -> tuple[bool, str]:
    """Before a sweep starts: a misnamed --only/--until/--from/--force (no member would run) is
    an error; a member that would stop before its steps run (a missing source, a step the
    executor refuses: more GPUs than the machine has) is named, with every other such member
    (the first 5 listed), and nothing runs (True). Else (False, how long the sweep's steps took
    when they last ran here, its shared steps counted once: "" when none did)."""
    from orchestrator.estimate import last_seconds, said
    from orchestrator.history import load_history
    from orchestrator.logs import console, escape
    from orchestrator.runner import check_selection, sweep_problems

    for dag in dags:
        check_selection(dag, opts)
    if len(members) == 1:
        return False, ""
    problems, plans = sweep_problems(members, dags, store, runs, opts)
    for problem in problems[:5]:
        console().print(f"[red]error:[/] {escape(problem)}", soft_wrap=True)
    if len(problems) > 5:
        console().print(f"[red]error:[/] and {len(problems) - 5} more members", soft_wrap=True)
    if problems:
        console().print(f"  hint: {len(problems)} of {len(members)} members would stop before "
                        "their steps run; fix the value (or leave it out of the sweep), then "
                        "rerun: nothing ran", soft_wrap=True)
        return True, ""
    estimate = said(*last_seconds(plans, load_history(runs, dags[0].recipe)))
    return False, f"; {estimate}" if estimate else ""


def _end_of_run(run, ok: bool, must_fix: list[bool], dag, opts) -> int:
    """The closing lines of a single run, and its exit code."""
    from orchestrator.logs import console, escape

    if not ok:   # the runner kept it as steps finished: less what --force/--from finished
        again = run.status.get("resume", opts.command)
        same = "the same command" if again == opts.command else "this command"
    if not ok and all(must_fix):
        console().print("[red]the run failed[/] on bad input: fix the input or setting named "
                        f"above, then rerun {same} (with the setting changed, if it is one): "
                        f"finished steps are cached\n  {escape(again)}", soft_wrap=True)
        return 2
    if not ok:
        console().print("[red]the run failed.[/] Finished steps are cached; resume with:\n  "
                        f"{escape(again)}", soft_wrap=True)
        return 1
    console().print(f"run record: {run.path}")
    if opts.until:
        _note_steps_left(dag, opts)
    return 0


def _new_sweep(runs, recipe, command: str, members) -> Path:
    """``runs/<recipe>/<time>-sweep/``, claimed by creating it (two sweeps started in the same
    second get two), with ``sweep.json``: the command and every member's overrides, so that
    ``rag status`` names the members an interrupted sweep never started."""
    import json
    import time

    parent = Path(os.path.abspath(runs)) / recipe.stem   # the sweep's paths read from anywhere
    parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    n = 1
    while True:
        path = parent / (f"{stamp}-sweep" if n == 1 else f"{stamp}-{n}-sweep")
        try:
            path.mkdir()
            break
        except FileExistsError:
            n += 1
    record = {"command": command, "cwd": os.getcwd(), "members": [m.overrides for m in members]}
    (path / "sweep.json").write_text(json.dumps(record, indent=1) + "\n")
    return path


def _end_of_sweep(sweep: Path, results, must_fix: list[bool], args, dag, opts) -> int:
    """The closing lines of a sweep: where its records are; which members failed, the command
    that resumes them all and the one that reruns one alone. The exit code."""
    from orchestrator.cli.summary import swept
    from orchestrator.logs import console, escape

    from orchestrator.cli.common import rag_command, runs_dir

    last = results[-1][1].path.name
    again = rag_command(f"rag status {sweep.name}", runs_dir(args, dag))
    where = (f"sweep record: {sweep}/member-0000" + (f" … {last}" if last != "member-0000" else "")
             + f" (one run record per member); {again} shows this table again")
    failed = [i for i, (_, _, ok) in enumerate(results) if not ok]
    if not failed:
        console().print(escape(where), soft_wrap=True)
        if opts.until:
            _note_steps_left(dag, opts)
        return 0
    keys = swept([m.overrides for m, _, _ in results])
    named = []
    for i in failed[:5]:
        member, run, _ = results[i]
        values = ([f"{k}={v[i]}" for k, v in keys.items()] if keys else member.overrides)
        named.append(f"{run.path.name} ({' '.join(values)})")
    more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
    console().print(f"[red]{len(failed)} of {len(results)} members failed[/]: "
                    f"{escape(', '.join(named) + more)}", soft_wrap=True)
    first = results[failed[0]][0]
    if all(must_fix):
        then = "on bad input: fix the input or setting named above, then rerun"
    else:
        then = "rerun the same command to resume"
    console().print(f"{then} (finished steps of every member are reused):\n  "
                    f"{escape(opts.command)}\nor rerun one failed member alone:\n  "
                    f"{escape(_member_command(args, first.overrides))}\n{escape(where)}",
                    soft_wrap=True)
    return 2 if all(must_fix) else 1


def _member_command(args, overrides: list[str]) -> str:
    """The command line of a sweep without ``-m`` and with one member's ``overrides`` (a plain
    run of that member)."""
    from orchestrator.rundir import shell_command

    words = list(args.argv[1:])
    for word in [*args.overrides, "-m", "--multirun"]:
        if word in words:
            words.remove(word)
    at = words.index(args.recipe) + 1
    return shell_command([args.argv[0], *words[:at], *overrides, *words[at:]])


def _note_steps_left(dag, opts) -> None:
    """After ``--until``: which steps did not run, and the command that runs them (without
    recomputing what this run's ``--force``/``--from`` already recomputed)."""
    from orchestrator.rest import rest_command, still_forced
    from orchestrator.logs import console, escape
    from orchestrator.runner import selection

    ran = selection(dag, opts)
    left = [n for n in dag.steps if n not in ran]
    if left:
        rest = rest_command(opts.command, *still_forced(dag, opts.force, opts.from_, ran), True)
        console().print(f"[yellow]note:[/] --until stopped before {len(left)} step(s): "
                        f"{escape(', '.join(left))}; to run them: {escape(rest)}", soft_wrap=True)
