"""Shared by the subcommands: compose a recipe into DAGs, find runs."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from orchestrator.errors import ConfigError, DataError


SWEEP_HELP = {   # what -m does, by the subcommand that takes it
    "run": "sweep: run every combination of comma-separated override values",
    "plan": "sweep: plan every combination of comma-separated override values (shared steps "
            "counted once)",
    "config": "sweep: print the recipe of every combination of comma-separated override values",
    "dag": "sweep: compose every combination of comma-separated override values, draw the "
           "first",
}


def add_recipe_arguments(p, command: str = "run") -> None:
    p.add_argument("recipe", help="recipe path (conf/x.yaml) or a name in ./conf or the shipped conf/")
    p.add_argument("overrides", nargs="*", default=[],   # a default: argparse calls it optional
                   help="Hydra overrides: key=value, +key=value, ~key")
    p.add_argument("-m", "--multirun", action="store_true", help=SWEEP_HELP[command])
    p.add_argument("--runs-dir", default=None, help="where runs and the cache live (default: ./runs)")


def whole_number(minimum: int, hint: str = ""):
    """An argparse ``type`` for a whole number >= ``minimum``; ``hint`` follows the refusal.

    >>> whole_number(1)("3"), whole_number(0)("0")
    (3, 0)
    """
    def parse(text: str) -> int:
        import argparse

        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}{hint}")
        return value

    return parse


def load(args):
    """(recipe path, members, dags) for the recipe and overrides on the command line."""
    from orchestrator import remember
    from orchestrator.recipe import find_recipe

    recipe = find_recipe(args.recipe)
    # composed configs are remembered (RUNS/.state/remembered/) by `rag run` always, by `rag plan`
    # and `rag dag` only where the runs directory exists; `rag plan` saves the hashes of the
    # sources it read in the cache (RUNS/cache/sources.json, or $RAGLINE_CACHE) only where that
    # exists: a plan in a fresh directory writes nothing
    keep = getattr(args, "command", None) == "run" or runs_dir(args).is_dir()
    state = runs_dir(args) / ".state" / "remembered" if keep else None
    members, dags = remember.load(recipe, list(args.overrides), args.multirun, state)
    return recipe, members, dags


def recipe_notes(members) -> list[str]:
    """The composition's notes (a key of a free section that nothing reads), each once: the
    members of a sweep share most of them."""
    return list(dict.fromkeys(note for m in members for note in m.notes))


def shipped_note(args) -> str | None:
    """A note when the recipe named is not in the current directory and the shipped one of
    that name is used (``rag run dynamicrag_demo`` from a folder of one's own data)."""
    from orchestrator.recipe import shipped_recipe

    found = shipped_recipe(args.recipe)
    if found is None:
        return None
    return (f"no recipe {args.recipe} in {Path.cwd()}: using the shipped {found.resolve()} "
            f"(rag cp {found.stem} copies it here, to edit)")


def runs_elsewhere(args) -> str | None:
    """A note when ``./runs`` holds no run of the recipe but the recipe's project directory
    does (and so, usually, its cache): the command would start from an empty cache."""
    from orchestrator.locate import project_dir
    from orchestrator.recipe import find_recipe

    if getattr(args, "runs_dir", None):
        return None
    try:
        recipe = find_recipe(args.recipe).resolve()
    except ConfigError:
        return None
    theirs = project_dir(recipe) / "runs"
    if (theirs.parent == Path.cwd().resolve() or (Path("runs") / recipe.stem).is_dir()
            or not (theirs / recipe.stem).is_dir()):
        return None
    return (f"./runs has no run of this recipe, but {theirs} has: add --runs-dir {theirs} to "
            "use them and their cache (otherwise ./runs starts empty)")


def rag_command(words: str, runs: Path) -> str:
    """A ``rag …`` command to suggest, as the user can run it: with ``--runs-dir`` when the runs
    are not in ./runs (a hint without it fails with "not found under runs/").

    >>> rag_command("rag status 1-sweep", Path("runs")), rag_command("rag status x", Path("my r"))
    ('rag status 1-sweep', "rag status x --runs-dir 'my r'")
    >>> rag_command("rag run a.yaml --runs-dir R", Path("R"))     # a recorded command has it
    'rag run a.yaml --runs-dir R'
    """
    if Path(runs) == Path("runs") or " --runs-dir" in f" {words}":
        return words
    return f"{words} --runs-dir {shlex.quote(str(runs))}"


def from_here(command: str, started_in: str | None, here: str) -> str:
    """A recorded ``command`` as it runs from the folder ``here``: after ``cd`` to the folder
    it was started in (``started_in``, None for a record that does not say) when that is
    another, so that its recipe, ``--runs-dir`` and data paths mean what they meant.

    >>> from_here("rag run r.yaml --runs-dir R", "/tmp/proj", "/tmp/proj")
    'rag run r.yaml --runs-dir R'
    >>> from_here("rag run r.yaml", "/tmp/my proj", "/"), from_here("rag run r.yaml", None, "/")
    ("cd '/tmp/my proj' && rag run r.yaml", 'rag run r.yaml')
    """
    import os.path

    if not started_in or os.path.realpath(started_in) == os.path.realpath(here):
        return command
    return f"cd {shlex.quote(started_in)} && {command}"


def sweep_of(run: Path) -> Path | None:
    """The sweep directory that ``run`` is a member of, or None.

    >>> sweep_of(Path("runs/chain/20261207-090354-sweep/member-0002"))
    PosixPath('runs/chain/20261207-090354-sweep')
    >>> sweep_of(Path("runs/chain/20261207-090354")) is None
    True
    """
    if run.name.startswith("member-") and run.parent.name.endswith("-sweep"):
        return run.parent
    return None


def runs_dir(args, dag=None) -> Path:
    """The runs directory: ``--runs-dir``, else the recipe's ``ragline.runs_dir`` (of ``dag``),
    else ``runs``. A ``~`` is the home folder, as in a source's path: the shell leaves it as is
    after ``--runs-dir=`` and YAML never expands it.

    >>> from types import SimpleNamespace as N
    >>> runs_dir(N(runs_dir=None)), runs_dir(N(runs_dir="~/r")) == Path.home() / "r"
    (PosixPath('runs'), True)
    >>> runs_dir(N(), N(settings={"runs_dir": "~/rd"})) == Path.home() / "rd"
    True
    """
    if getattr(args, "runs_dir", None):
        return Path(args.runs_dir).expanduser()
    if dag is not None:
        return Path(dag.settings.get("runs_dir") or "runs").expanduser()
    return Path("runs")


def run_order(name: str) -> tuple:
    """A run or sweep folder's name as a key that sorts in the order they were started: the
    second of a second (``<time>-2``, ``<time>-2-sweep``) after the first, which plain name
    order puts the other way round ("-2" before "-s").

    >>> sorted(["20261207-120000-2-sweep", "20261207-120000-sweep", "20261207-115959"],
    ...        key=run_order)
    ['20261207-115959', '20261207-120000-sweep', '20261207-120000-2-sweep']
    """
    import re

    found = re.fullmatch(r"(\d{8}-\d{6})(?:-(\d+))?(-sweep)?", name)
    if found is None:
        return (name, 0)
    return (found.group(1), int(found.group(2) or 1))


def find_sweep(runs: Path, spec: str | None) -> Path | None:
    """A sweep's directory (``…-sweep/`` holding ``member-0000/``…) from a path or a name."""
    if not spec:
        return None
    hits = [Path(spec)] + sorted(runs.glob(f"*/{spec}"))
    return next((h for h in reversed(hits) if h.is_dir() and any(h.glob("member-*/status.json"))),
                None)


def find_run(runs: Path, spec: str | None) -> Path:
    """A run directory from a path, a run name under runs/<recipe>/, or the latest run."""
    if spec:
        for p in (Path(spec), runs / spec):   # a path, or <recipe>/<time> under the runs dir
            if (p / "status.json").is_file():
                return p
        hits = sorted(runs.glob(f"*/{spec}")) + sorted(runs.glob(f"*/*/{spec}"))
        hits = [h for h in hits if (h / "status.json").is_file()]
        if len(hits) > 1:   # member-0000 of several sweeps: which one is not ours to guess
            names = [h.relative_to(runs).as_posix() for h in hits]
            raise ConfigError(f"'{spec}' names {len(hits)} runs under {runs}/: "
                              f"{', '.join(names[-3:])}" + (" …" if len(hits) > 3 else ""),
                              hint=f"name one by its path below {runs}/, e.g. {names[-1]}")
        if hits:
            return hits[0]
        head, _, member = spec.rpartition("/")
        sweep = find_sweep(runs, head) if head and member.startswith("member-") else None
        if sweep is not None:   # SWEEP/member-0005 of a sweep that has fewer members
            members = sorted(p.parent.name for p in sweep.glob("member-*/status.json"))
            raise ConfigError(f"sweep {sweep.name} has no run {member}; its members: "
                              + (f"{members[0]} … {members[-1]}" if len(members) > 1
                                 else ", ".join(members) or "none started"),
                              hint=f"{rag_command(f'rag status {sweep.name}', runs)} lists "
                                   "them with their values")
        sweep = find_sweep(runs, spec)
        if sweep is not None:   # `rag show X --run SWEEP`, `rag verify SWEEP`: which member?
            members = sorted(p.parent.name for p in sweep.glob("member-*/status.json"))
            raise ConfigError(f"'{spec}' is a sweep of {len(members)} run(s), not one run: name "
                              f"one of its members ({sweep.name}/{members[0]}"
                              + (f" … {members[-1]}" if len(members) > 1 else "") + ")",
                              hint=f"{rag_command(f'rag status {spec}', runs)} lists the "
                                   "members and their values")
        newest = sorted((p for p in runs.glob("*/*") if p.is_dir() and (
            (p / "status.json").is_file() or p.name.endswith("-sweep"))),
            key=lambda p: run_order(p.name))[-3:]
        known = f"; the newest: {', '.join(f'{p.parent.name}/{p.name}' for p in newest)}" if newest else ""
        elsewhere = ("; runs are read from ./runs unless --runs-dir is given: pass the one "
                     "rag run used" if runs == Path("runs") else "")
        raise ConfigError(f"run '{spec}' not found under {runs}/",
                          hint="`rag status` shows the latest run; name one as <time>, <time>-sweep, "
                               "<recipe>/<time> or its path (runs live in runs/<recipe>/<time>)"
                               + known + elsewhere)
    if runs.exists() and not runs.is_dir():
        raise ConfigError(f"runs directory {runs} is a file, not a directory",
                          hint="pass the --runs-dir that rag run used")
    if not runs.is_dir():
        raise ConfigError(f"no runs directory {runs}/ (looked from {Path.cwd()})",
                          hint="runs are read from ./runs unless --runs-dir is given: pass the "
                               "--runs-dir (or the recipe's ragline.runs_dir) that rag run used, "
                               "or start a run: rag run RECIPE")
    latest = runs / "latest"
    if (latest / "status.json").is_file():
        return latest.resolve()
    records = list(runs.glob("*/*/status.json")) + list(runs.glob("*/*/member-*/status.json"))
    if records:   # no `latest` link (a copied runs dir): the run whose record changed last
        return max(records, key=lambda s: s.stat().st_mtime_ns).parent
    raise ConfigError(f"no run found under {runs}/",
                      hint="start one: " + rag_command("rag run conf/dynamicrag_demo.yaml", runs))


def newest_run_with(runs: Path, has) -> str | None:
    """The newest run under ``runs`` (sweep members too) for which ``has(run_dir)`` is true, as
    ``rag status`` names it (``<recipe>/<time>``), or None. For a hint when the latest run lacks
    what a command reads: a run refused before its first step is the latest one too."""
    records = list(runs.glob("*/*/status.json")) + list(runs.glob("*/*/member-*/status.json"))
    for record in sorted(records, key=lambda s: s.stat().st_mtime_ns, reverse=True):
        if has(record.parent):
            return record.parent.relative_to(runs).as_posix()
    return None


def read_status(run: Path) -> dict:
    """The run's ``status.json``; a damaged one is a one-line error naming it, not a crash."""
    path = run / "status.json"
    try:
        status = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is damaged ({type(e).__name__}: {e}); this run's record cannot "
                        "be read", hint="another run: rag status NAME; the cache itself is "
                                        "checked by rag verify") from None
    if not isinstance(status, dict) or not isinstance(status.get("steps"), dict):
        raise DataError(f"{path} is damaged (not a run record)",
                        hint="another run: rag status NAME; the cache itself is checked by "
                             "rag verify")
    return status
