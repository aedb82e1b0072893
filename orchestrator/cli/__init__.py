"""``rag``: the command line. Each subcommand lives in its own module, imported only when used,
so ``rag --help`` stays fast (no torch, no Hydra, no pyarrow)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from orchestrator import __version__

COMMANDS = {
    "run": ("run", "run a recipe (resumes by default; -m sweeps)"),
    "plan": ("plan", "show what a run would do: each step FRESH / STALE / MISSING and why"),
    "status": ("status", "show the steps of a run: state, duration, cache hit/miss"),
    "show": ("show", "show an artifact of a run: type, schema, rows, first rows"),
    "report": ("report", "the metrics of runs or a sweep as one table (terminal, Markdown, CSV, JSON)"),
    "config": ("config", "print the composed recipe, a section, or a step's every setting"),
    "cp": ("cp", "copy a shipped recipe (and its prompts) into a folder of one's own, to edit"),
    "dag": ("dag", "print a recipe's DAG as text, mermaid or dot"),
    "stages": ("stages", "list registered stages with inputs, outputs and config fields"),
    "gc": ("gc", "remove cache entries no recent run references"),
    "verify": ("verify", "re-hash cached artifacts and report (or quarantine) damaged ones"),
    "env": ("env", "versions of the packages ragline needs, its extras, GPUs, cache and space"),
}

EPILOG = """examples:
  rag run conf/dynamicrag_demo.yaml                      # run (or resume) the CPU demo
  rag run conf/dynamicrag_llama3.yaml -m steps.dpo.beta=0.05,0.1,0.2   # sweep; upstream once
  rag plan conf/dynamicrag_llama3.yaml                   # what would run, and why
  rag config conf/dynamicrag_llama3.yaml --step dpo      # a step's every setting, defaults marked
  rag cp dynamicrag_demo mine.yaml --with-files          # a recipe and its prompts, to edit
  rag status                                             # the latest run
  rag show retrieve_eval                                 # first rows of a step's output
  rag report --format markdown                           # the latest run's results, to paste
  rag env                                                # versions, extras, GPUs: for a bug report
  rag <command> --help                                   # examples for each command

exit codes: 0 ok, 1 a step failed (or a record or cached file is damaged), 2 a recipe, usage or
input error (fix it, then rerun).
set RAGLINE_FULL_ERROR=1 to see tracebacks."""


class OneLineErrors(argparse.ArgumentParser):
    """A usage error is one line that names the help to read, not the usage block first, and
    the option or subcommand meant when one was mistyped."""

    def error(self, message: str):
        meant = did_you_mean(message, list(self._option_string_actions))
        self.exit(2, f"{self.prog}: error: {message} ({meant}`{self.prog} --help` shows the "
                     "usage)\n")


def did_you_mean(message: str, options: list[str]) -> str:
    """``"did you mean X? "`` for argparse's error ``message`` when it names an unknown option
    close to one of ``options``, or an invalid choice (a subcommand) close to a valid one;
    else "".

    >>> did_you_mean("unrecognized arguments: --runs /r --onyl a", ["--runs-dir", "--only"])
    'did you mean --runs-dir and --only? '
    >>> did_you_mean("unrecognized arguments: --dryrun=1 x", ["--dry-run", "-n"])
    'did you mean --dry-run? '
    >>> did_you_mean("unrecognized arguments: --runs", ["--run", "--runs-dir", "--json"])
    'did you mean --run or --runs-dir? '
    >>> did_you_mean("argument COMMAND: invalid choice: 'stat' (choose from 'run', 'status')", [])
    'did you mean status? '
    >>> did_you_mean("unrecognized arguments: --zzz", ["--only"])
    ''
    """
    import difflib
    import re

    if message.startswith("unrecognized arguments: "):
        words = message.removeprefix("unrecognized arguments: ").split()
        typed = [w.partition("=")[0] for w in words if w.startswith("-") and len(w) > 2]
        choices = [o for o in options if o.startswith("--")]
    else:
        invalid = re.search(r"invalid choice: '?([^' ]*)'? \(choose from (.*)\)$", message)
        if invalid is None:
            return ""
        typed = [invalid.group(1)]
        choices = [c.strip(" '") for c in invalid.group(2).split(",")]
    meant = []
    for word in typed:   # the closest, and the one it abbreviates (--runs: --run, --runs-dir)
        close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
        close += [c for c in choices if c.startswith(word) and c not in close]
        if close:
            meant.append(" or ".join(close[:2]))
    return f"did you mean {' and '.join(dict.fromkeys(meant))}? " if meant else ""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``rag`` parser; ``only``: with just that subcommand (a command line that names one
    does not pay for building the others)."""
    parser = OneLineErrors(
        prog="rag", description="ragline: RAG training recipes as typed, cached, resumable DAGs.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"ragline {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineErrors)
    parser.subparsers = {}
    for name, (module, help_text) in COMMANDS.items():
        if only is not None and name != only:
            continue
        mod = importlib.import_module(f"orchestrator.cli.{module}")
        # no abbreviations: `rag status --run X` would be read as --runs-dir X, and `--forc`
        # would pass, then be written into the commands our hints print
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=mod.EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
        mod.add_arguments(p)
        p.set_defaults(func=mod.main, command=name)
        parser.subparsers[name] = p
    return parser


def main(argv: list[str] | None = None) -> int:
    from orchestrator.errors import RagError, disk_full

    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    if not argv:
        parser.print_help()
        return 0
    try:
        if argv[0] in parser.subparsers:  # overrides and flags may be mixed: a=1 --only x b=2
            args = parser.subparsers[argv[0]].parse_intermixed_args(argv[1:])
        else:
            args = parser.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code not in (0, None) else 0
    if getattr(args, "command", None) is None:
        parser.print_help()
        return 0
    args.argv = ["rag", *argv]
    from rich.markup import escape

    from orchestrator.logs import console, quiet_stream, quiet_when_closed, setup_cli_logging

    # Library progress bars (weights loading, shard writing) would drown the step lines; stages
    # show their own progress through ctx.progress. Set HF_HUB_DISABLE_PROGRESS_BARS=0 to see them.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

    setup_cli_logging(getattr(args, "verbose", False))
    quiet_when_closed("stdout is closed (its reader exited); the run goes on, `rag status` shows "
                      "it" if args.command == "run" else None)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # what is printed without rich (JSON): its reader stopped early
        quiet_stream(sys.stdout)
        return 0
    except RagError as e:
        if os.environ.get("RAGLINE_FULL_ERROR") == "1":
            raise
        from orchestrator.secrets import scrubbed

        said = getattr(args, "overrides", None) or []   # a pasted key is not echoed back
        console().print(f"[red]error:[/] {escape(scrubbed(e.message, said))}", soft_wrap=True)
        if e.hint:
            console().print(f"  hint: {escape(scrubbed(e.hint, said))}", soft_wrap=True)
        return e.exit_code
    except KeyboardInterrupt:
        if args.command == "run":
            from orchestrator.cli.run import resume_words

            console().print(f"[yellow]interrupted[/]: {resume_words(args)}", soft_wrap=True)
        else:   # plan, status, show, gc, verify run no step: there is nothing to resume
            console().print(f"[yellow]interrupted[/]: rag {args.command} stopped")
        return 130
    except Exception as e:  # noqa: BLE001 - an internal error: one line unless asked
        if os.environ.get("RAGLINE_FULL_ERROR") == "1":
            raise
        full = disk_full(e, *_folders(args))  # the run record or a log: not a bug of ours
        if full:
            console().print(f"[red]error:[/] {escape(full)}", soft_wrap=True)
            return 1
        console().print(f"[red]internal error:[/] {type(e).__name__}: {escape(str(e))}", soft_wrap=True)
        console().print("  set RAGLINE_FULL_ERROR=1 for the traceback")
        return 1


def _folders(args) -> tuple[str, str]:
    """(cache directory, runs directory) as the command line and the environment give them,
    for a full disk's line (a recipe's ragline.runs_dir is not read again here)."""
    from orchestrator.cli.common import runs_dir
    from orchestrator.locate import cache_root

    runs = runs_dir(args).absolute()
    return str(cache_root(runs)), str(runs)


if __name__ == "__main__":
    sys.exit(main())
