"""``rag plan``: what a run would do, step by step, and why; nothing is executed."""

from __future__ import annotations

import json
import logging
import sys

EXAMPLES = """examples:
  rag plan conf/dynamicrag_demo.yaml
  rag plan conf/dynamicrag_llama3.yaml retrieval.k=100   # what a change would recompute
  rag plan conf/dynamicrag_llama3.yaml -m steps.dpo.beta=0.05,0.1,0.2   # shared steps counted once
  rag plan conf/dynamicrag_demo.yaml --json | jq '.members[0].steps'
  rag plan conf/dynamicrag_llama3.yaml --check   # in CI: exit 2 if a run would stop (missing data)
  rag plan conf/dynamicrag_llama3.yaml --until index   # just the index and what it needs
  rag plan conf/dynamicrag_demo.yaml --only dpo   # just dpo, if what it reads is cached

exit codes: 0 planned (a problem a run would stop at, such as a missing source or a step asking
for more GPUs than this machine has, is printed as "problem:"; with --check it exits 2); 2 a
recipe error."""


def add_arguments(p) -> None:
    from orchestrator.cli.common import add_recipe_arguments

    add_recipe_arguments(p, "plan")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--check", action="store_true",
                   help="exit 2 when a run would stop at a problem (a missing source, more GPUs "
                        "than the machine has): for CI")
    p.add_argument("--force", action="append", default=[], metavar="STEP", help="as in rag run")
    p.add_argument("--from", dest="from_", action="append", default=[], metavar="STEP", help="as in rag run")
    p.add_argument("--until", action="append", default=[], metavar="STEP",
                   help="as in rag run: only this step and the steps upstream of it")
    p.add_argument("--only", action="append", default=[], metavar="STEP",
                   help="as in rag run: just this step, its upstream steps read from the cache "
                        "(a problem names those that are not cached)")


def main(args) -> int:
    from orchestrator.cli.common import (load, recipe_notes, runs_dir, runs_elsewhere,
                                         shipped_note)
    from orchestrator.estimate import last_seconds, said, to_run as runs_task
    from orchestrator.history import load_history
    from orchestrator.logs import console, escape, report
    from orchestrator.store import Store

    elsewhere = runs_elsewhere(args)
    recipe, members, dags = load(args)
    runs = runs_dir(args, dags[0])
    if runs.exists() and not runs.is_dir():   # as rag run refuses it (not two "damaged" warnings)
        from orchestrator.cli.run import RUNS_DIR_HINT
        from orchestrator.errors import ConfigError

        raise ConfigError(f"runs directory {runs.absolute()} is a file, not a directory",
                          hint=RUNS_DIR_HINT)
    store = Store.for_runs(runs)
    store.remember_lookups()
    history = load_history(runs, recipe)
    plans = _plans(args, members, dags, store, history)
    if args.check:   # the cache a run would write to (checked only here: a plan writes nothing)
        problem = _cache_problem(store, runs)
        if problem:
            plans[0].problems.append(problem)

    unique: dict[str, bool] = {}  # task key -> will it run
    total = 0
    for p in plans:
        for s in p.steps.values():
            for k in s.keys:
                total += 1
                unique.setdefault(k, runs_task(s, p, k))
    to_run = sum(unique.values())
    seconds, never = last_seconds(plans, history)
    if args.json:
        out = {"recipe": str(recipe), "members": [
            {"overrides": m.overrides, "problems": p.problems, "notes": m.notes + p.notes,
             "steps": [{**s.to_json(), "notes": d.steps[s.step].notes} for s in p.steps.values()]}
            for m, p, d in zip(members, plans, dags)],
            "tasks": total, "unique_tasks": len(unique), "tasks_to_run": to_run,
            "last_seconds": round(seconds, 1), "never_ran_here": never}
        sys.stdout.write(json.dumps(out, indent=1) + "\n")
        return 2 if args.check and any(p.problems for p in plans) else 0
    from rich.table import Table

    colors = {"FRESH": "green", "STALE": "yellow", "MISSING": "red"}
    for m, p, dag in zip(members, plans, dags):
        if len(plans) > 20 and m.index >= 3:
            break
        title = escape(f"{recipe.name}" + (f" [{' '.join(m.overrides)}]" if m.overrides else ""))
        table = Table(title=title)
        for col in ("step", "stage", "state", "shards", "why"):
            table.add_column(col)
        for s in p.steps.values():
            shards = f"{s.cached_shards}/{s.shards}" if s.shards > 1 else ""
            table.add_row(s.step, s.stage, f"[{colors[s.state]}]{s.state}[/]", shards,
                          escape(s.cause))
            for note in dag.steps[s.step].notes:  # the step config's plan_notes(resources)
                table.add_row("", "", "", "", f"[dim]note: {escape(note)}[/]")
        report().print(table)
        for note in p.notes:
            report().print(f"[dim]note: {escape(note)}[/]", soft_wrap=True)
        for problem in p.problems:
            report().print(f"[red]problem:[/] {escape(problem)} (a run would stop here)", soft_wrap=True)
    if len(plans) > 20:
        report().print(f"... {len(plans) - 3} more members")
    for note in filter(None, [shipped_note(args), *recipe_notes(members)]):
        report().print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    estimate = said(seconds, never) if to_run else ""
    report().print(f"{len(plans)} member(s), {total} tasks, {len(unique)} distinct "
                   f"(shared steps counted once), {to_run} to run"
                   + (f"; {estimate}" if estimate else ""))
    if elsewhere and str(runs) == "runs":   # neither --runs-dir nor ragline.runs_dir moved it
        console().print(f"[yellow]note:[/] {escape(elsewhere)}", soft_wrap=True)
    if args.check and any(p.problems for p in plans):   # as rag run would stop: a CI check
        return 2
    return 0


def _cache_problem(store, runs) -> str | None:
    """Why a run could not write to the cache (as ``rag run`` would refuse it), or None; what the
    probe had to create is removed again."""
    from orchestrator.errors import ConfigError

    root = store.root.absolute()
    made = [p for p in [root, *root.parents] if not p.exists()]   # the deepest first
    try:
        store.check_usable(runs)
    except ConfigError as e:
        return f"{e.message}; {e.hint}" if e.hint else e.message
    finally:
        for path in made:
            try:
                path.rmdir()
            except OSError:
                break
    return None


def _plans(args, members, dags, store, history: dict) -> list:
    """Each member's plan, with the problems a run would stop at: its missing sources (named
    where their paths are set) and unset variables, and the steps the executor refuses before
    they start (more GPUs than the machine has: the check ``rag run`` makes; a Ray cluster is
    not attached to for a plan)."""
    from orchestrator.hashing import SourceMemo
    from orchestrator.plan import plan
    from orchestrator.runner import Admission, Options, check_selection, computed, selection

    memo = SourceMemo(store.root / "sources.json")
    admission = Admission(store, connect=False)
    plans = []
    forcing: dict[str, str] = {}   # task key -> the member that --force/--from recompute it in
    for member, dag in zip(members, dags):
        opts = Options(force=set(args.force), from_=set(args.from_), until=set(args.until),
                       only=set(args.only))
        check_selection(dag, opts)
        force = set(args.force) | dag.downstream(set(args.from_))
        planned = plan(dag, store, memo, history, force, member.overrides)
        uncached = _uncached_upstream(planned, dag, opts.only)
        planned = _only(planned, dag, selection(dag, opts))
        planned.problems = uncached + planned.problems
        if args.multirun:
            _forced_once(planned, forcing, f"member-{member.index:04d}")
        planned.problems = (admission.problems(dag, computed(dag, planned, opts), member.overrides)
                            + planned.problems)
        plans.append(planned)
    if not store.root.is_dir():   # a plan in a fresh directory leaves nothing behind (no ./runs)
        return plans
    try:
        memo.save()
    except OSError as e:  # a read-only or misplaced cache: the source-hash memo is a speed-up
        logging.getLogger("ragline").warning("could not save the source-hash memo under %s (%s)",
                                             store.root, e.strerror or e)
    return plans


def _forced_once(planned, forcing: dict[str, str], member: str) -> None:
    """A sweep recomputes a forced step that its members share once, in the first member that
    reaches it (as ``rag run -m`` does): in a later member it is not forced, and its cause
    names that member. ``forcing``: task key -> member, updated with ``planned``'s.

    >>> from types import SimpleNamespace as N
    >>> def one():
    ...     return N(steps={"gen": N(state="STALE", cause="forced (--force/--from)", forced=True,
    ...                              final=True, keys=["k1"])})
    >>> forcing = {}
    >>> first, second = one(), one()
    >>> _forced_once(first, forcing, "member-0000"); _forced_once(second, forcing, "member-0001")
    >>> first.steps["gen"].forced, second.steps["gen"].forced, second.steps["gen"].cause
    (True, False, 'forced: recomputed once in this sweep, by member-0000')
    """
    for s in planned.steps.values():
        if not (s.forced and s.final):
            continue
        if all(k in forcing for k in s.keys):
            s.forced = False
            s.cause = f"forced: recomputed once in this sweep, by {forcing[s.keys[0]]}"
        else:
            forcing.update((k, member) for k in s.keys if k not in forcing)


def _uncached_upstream(planned, dag, only: set[str]) -> list[str]:
    """``--only``: the problem a run would stop at when a step upstream of the selected ones is
    not cached (``rag run --only`` reads them from the cache), or none."""
    needed = set().union(*(dag.upstream(n) for n in only)) - only
    missing = [n for n in dag.steps if n in needed and planned.steps[n].state != "FRESH"]
    if not missing:
        return []
    which = (f"upstream step '{missing[0]}' is" if len(missing) == 1
             else f"upstream steps {', '.join(missing)} are")
    until = " ".join(f"--until {n}" for n in sorted(only))
    return [f"--only {', '.join(sorted(only))}: {which} not cached (--only runs just the "
            f"selected steps); run them first with {until}"]


def _only(planned, dag, chosen: set[str] | None):
    """The plan of the steps ``--until`` selects (all when None), with the problems a run of
    just those steps would stop at."""
    from orchestrator.runner import problems_of

    if chosen is not None:
        planned.steps = {n: s for n, s in planned.steps.items() if n in chosen}
        planned.problems = problems_of(planned.problems, dag, chosen)
    return planned
