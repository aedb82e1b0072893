"""``rag run``: compose, validate, plan, execute; resume by rerunning the same command."""

from __future__ import annotations

import functools
import os

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


def _terminate(signum, frame):
    from orchestrator.runner import Terminated

    raise Terminated()


def main(args) -> int:
    """Run the recipe; SIGTERM stops it like Ctrl-C (workers stopped, locks released), exit 143."""
    import signal

    from orchestrator.logs import console
    from orchestrator.runner import Terminated

    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (an embedding program): leave its handlers alone
        previous = None
    _go_on_without_closed_pipes()
    try:
        return _run(args)
    except Terminated:
        console().print("[yellow]terminated[/] (SIGTERM): finished steps are cached; rerun the "
                        "same command to resume")
        return 143
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _go_on_without_closed_pipes() -> None:
    """``rag run … | head``: once the reader of stdout or stderr is gone, that console goes quiet
    and the run goes on (rich's default is to exit 1 at the next line, leaving the record
    ``running``). The steps' logs and the run record are files, still written."""
    from orchestrator.logs import console, report

    for c in (console(), report()):
        c.on_broken_pipe = functools.partial(_silence, c)


def _silence(c) -> None:
    """Quiet console ``c`` whose pipe is closed; its stream now writes to /dev/null, so the
    bytes still buffered in it do not fail again when Python exits."""
    from orchestrator.logs import console

    c.quiet = True
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, c.file.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError):  # not a real file (a test's capture): nothing is left buffered
        pass
    if c is not console():
        console().print("[yellow]note:[/] stdout is closed (its reader exited); the run goes on, "
                        "`rag status` shows it")


def _run(args) -> int:
    import time
    from pathlib import Path

    from orchestrator.cli.common import load, recipe_notes, runs_dir, runs_elsewhere
    from orchestrator.cli.summary import print_run_summary, print_sweep_summary
    from orchestrator.logs import console, escape
    from orchestrator.rundir import RunDir, shell_command
    from orchestrator.runner import Options, Runner
    from orchestrator.store import Store, check_dir

    elsewhere = runs_elsewhere(args)
    recipe, members, dags = load(args)
    for note in recipe_notes(members):
        console().print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    runs = runs_dir(args, dags[0])
    if elsewhere and str(runs) == "runs":   # neither --runs-dir nor ragline.runs_dir moved it
        console().print(f"[yellow]note:[/] {escape(elsewhere)}", soft_wrap=True)
    check_dir(runs, "runs directory", RUNS_DIR_HINT)
    store = Store.for_runs(runs)  # checked by the runner, before the plan reads it
    command = shell_command(args.argv)
    opts = Options(set(args.only), set(args.from_), set(args.force), args.jobs,
                   not args.no_progress, command, until=set(args.until))
    sweep = None
    if len(members) > 1:
        sweep = Path(runs) / recipe.stem / (time.strftime("%Y%m%d-%H%M%S") + "-sweep")
        console().print(f"sweep: {len(members)} members -> {sweep}")
    results = []
    must_fix = []  # per failed run: every failure was bad input (a rerun as is fails the same)
    with store.lease(runs) as lease:  # gc keeps what a live run uses
        for member, dag in zip(members, dags):
            path = RunDir.new_path(runs, recipe, sweep, member.index)
            run = RunDir(path, recipe, member.overrides, command)
            lease.add_run(run.path)
            run.write_config(member.config, member.text)
            if sweep is not None:
                console().print(f"[bold]member {member.index}[/]: {' '.join(member.overrides)}")
            runner = Runner(dag, store, runs, run, opts)
            ok = runner.execute()
            results.append((member, run, ok))
            if not ok:
                must_fix.append(runner.failed_on_input())
            if len(members) == 1:
                print_run_summary(run.status)
    if sweep is not None:
        print_sweep_summary(results)
    failed = [r for r in results if not r[2]]
    if failed and all(must_fix):
        console().print(f"[red]{len(failed)} run(s) failed[/] on bad input: fix the input named "
                        f"above, then rerun the same command: finished steps are cached\n  "
                        f"{escape(command)}", soft_wrap=True)
        return 2
    if failed:
        console().print(f"[red]{len(failed)} run(s) failed.[/] Finished steps are cached; resume with:\n  {command}",
                        soft_wrap=True)
        return 1
    console().print(f"run record: {results[-1][1].path}")
    if opts.until:
        _note_steps_left(dags[0], opts)
    return 0


def _note_steps_left(dag, opts) -> None:
    """After ``--until``: which steps did not run, and the command that runs them."""
    import re

    from orchestrator.logs import console, escape
    from orchestrator.runner import selection

    left = [n for n in dag.steps if n not in selection(dag, opts)]
    if left:
        rest = re.sub(r" --until(?:=| +)\S+", "", opts.command)
        console().print(f"[yellow]note:[/] --until stopped before {len(left)} downstream step(s): "
                        f"{escape(', '.join(left))}; to run them: {escape(rest)}", soft_wrap=True)
