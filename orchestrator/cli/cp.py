"""``rag cp``: copy a recipe (a shipped one by name) into a folder of one's own, to edit it, as
``tune cp`` does; with ``--with-files``, the files it reads from its ``conf/`` (prompts,
DeepSpeed configs) too, at the relative paths it names them by, so the copy reads those.

The copy composes where it lands: the config groups and ``defaults:`` configs it does not find
next to it come from the shipped ``conf/``, and so do the files it names that are not next to
it (``orchestrator/locate.py``).
"""

from __future__ import annotations

from pathlib import Path

EXAMPLES = """examples:
  rag cp dynamicrag_demo                  # ./dynamicrag_demo.yaml, to edit and run
  rag cp dynamicrag_llama3 mine.yaml      # under a name of one's own
  rag cp dynamicrag_demo --with-files     # and its prompts (./conf/prompts/), which it reads
  rag cp selfrag_llama2 exp/ --with-files --force   # into a folder, over earlier copies

exit codes: 0 ok, 2 no such recipe, or a file to write exists (--force overwrites it)."""


def add_arguments(p) -> None:
    p.add_argument("recipe", help="a shipped recipe's name (dynamicrag_demo) or a recipe path")
    p.add_argument("dest", nargs="?", default=".",
                   help="a .yaml file, or a folder (default: the current directory)")
    p.add_argument("--with-files", action="store_true",
                   help="also copy the files it reads from its conf/ (prompts, DeepSpeed "
                        "configs), to edit them")
    p.add_argument("--force", action="store_true", help="overwrite files that exist")


def read_files(recipe: Path, config) -> list[tuple[str, Path]]:
    """(the path as the recipe writes it, the file) for every relative path in the composed
    ``config`` that names a file under a ``conf/`` folder it composes from (its own, the
    shipped one): its prompts and DeepSpeed configs, not its data. A path with ``..`` in it is
    left out: its copy would land outside the copy's folder."""
    from orchestrator.locate import config_dirs

    confs = [d for d in config_dirs(recipe) if d.name == "conf"]
    found = {}
    for value in _strings(config):
        path = Path(value)
        if path.is_absolute() or ".." in path.parts or not path.suffix:
            continue
        for conf in confs:   # conf/prompts/x.yaml names the file under the project of a conf/
            where = conf.parent / path
            if where.is_file() and where.resolve().is_relative_to(conf):
                found.setdefault(value, where.resolve())
    return sorted(found.items())


def _strings(node) -> list[str]:
    """Every string leaf of a nested dict/list.

    >>> _strings({"a": ["x", {"b": "y"}], "c": 1})
    ['x', 'y']
    """
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def _source(spec: str) -> Path:
    """The recipe to copy: a bare name is the shipped recipe's, even where an earlier copy of
    it lies in the current directory; a path is that file (``find_recipe``)."""
    from orchestrator.locate import shipped_conf
    from orchestrator.recipe import find_recipe

    conf = shipped_conf()
    bare = "/" not in spec and not spec.endswith(".yaml")
    if bare and conf is not None and (conf / f"{spec}.yaml").is_file():
        return conf / f"{spec}.yaml"
    return find_recipe(spec)


HEADER = "# copied from "


def _target(recipe: Path, dest: str) -> Path:
    """The copy's path: ``dest`` itself when it names a .yaml file, else the recipe's file name
    in the folder ``dest``."""
    from orchestrator.errors import ConfigError

    path = Path(dest)
    if path.suffix == ".yaml":
        return path
    if (path.suffix or path.exists()) and not path.is_dir():
        raise ConfigError(f"rag cp: destination '{dest}' is neither a folder nor a .yaml file",
                          hint=f"name the copy {path.with_suffix('.yaml')}, or give a folder")
    return path / recipe.name


def main(args) -> int:
    import shutil

    from orchestrator import __version__
    from orchestrator.errors import ConfigError
    from orchestrator.locate import project_dir, shipped_conf
    from orchestrator.logs import console, escape, report
    from orchestrator.recipe import compose

    recipe = _source(args.recipe)
    target = _target(recipe, args.dest)
    if target.resolve() == recipe:
        raise ConfigError(f"rag cp: {target} is the recipe itself",
                          hint="give another file name or folder")
    files = read_files(recipe, compose(recipe, [])[0].config) if args.with_files else []
    home = project_dir(target.resolve())   # where the copy looks for the relative paths it names
    copies = [(src, home / written) for written, src in files
              if (home / written).resolve() != src]   # not onto itself
    there = [str(dst) for dst in [target, *(dst for _, dst in copies)] if dst.exists()]
    if there and not args.force:
        raise ConfigError(f"rag cp: would overwrite {', '.join(there[:3])}"
                          + (f" and {len(there) - 3} more" if len(there) > 3 else ""),
                          hint="add --force to overwrite them, or copy to another folder")
    text = recipe.read_text()
    if text.startswith(HEADER):   # a copy of a copy: its line names the copy it came from
        text = text.partition("\n")[2]
    try:
        for src, dst in copies:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f"{HEADER}{recipe} by rag cp (ragline {__version__})\n" + text)
    except OSError as e:
        raise ConfigError(f"rag cp: cannot write {e.filename or target}: "
                          f"{e.strerror or e}", hint="copy to a folder you can write") from None

    out = report()
    out.print(f"{escape(str(recipe))} -> {escape(str(target))}", soft_wrap=True, highlight=False)
    for src, dst in copies:
        out.print(f"{escape(str(src))} -> {escape(str(dst))}", soft_wrap=True, highlight=False)
    shipped = shipped_conf()
    if shipped is not None and shipped != target.resolve().parent:
        console().print(f"[yellow]note:[/] config groups and files the copy names that are not "
                        f"next to it are read from the shipped {escape(str(shipped))}"
                        + ("" if args.with_files else "; --with-files copies its prompts to "
                           "edit them"), soft_wrap=True)
    console().print(f"next: rag plan {escape(str(target))}", soft_wrap=True, highlight=False)
    return 0
