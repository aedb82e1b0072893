"""A new user's own stages: the example of docs/writing-stages.md runs as written, and each
mistake in a ``@stage`` definition or in ``ragline.imports`` says where it is and what to write
instead (orchestrator/registry.py)."""

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest
from tests.conftest import REPO

from orchestrator import registry
from orchestrator.api import File, Table, stage
from orchestrator.errors import ConfigError
from orchestrator.registry import StageDefinitionError, load_stages

DOC = REPO / "docs" / "writing-stages.md"


class Rows(Table):
    schema = pa.schema([("id", pa.string())])


def _doc_files() -> dict[str, str]:
    """The files of the doc's own-folder example: a "`path`:" line, then a fenced block."""
    text = DOC.read_text()
    section = text.split("## Your own stages, in your own folder", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): m.group(2) for m in
            re.finditer(r"^`([\w./]+)`:\n\n```\w*\n(.*?)^```", section, re.M | re.S)}


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAGLINE_CACHE": str(cwd / "runs" / "cache")}
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_docs_own_folder_example_runs_as_written(tmp_path):
    files = _doc_files()
    assert set(files) == {"mystages/words.py", "myrecipe.yaml", "corpus.jsonl", "questions.jsonl"}
    (tmp_path / "mystages").mkdir()
    (tmp_path / "mystages" / "__init__.py").write_text("")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    first = _cli(tmp_path, "run", "myrecipe.yaml", "--no-progress")
    assert first.returncode == 0, first.stdout + first.stderr
    again = _cli(tmp_path, "run", "myrecipe.yaml", "--no-progress")
    assert again.returncode == 0
    assert "nothing to do: all 3 steps cached" in again.stdout + again.stderr
    plan = _cli(tmp_path, "plan", "myrecipe.yaml", "steps.filter.min_words=5", "--json")
    steps = json.loads(plan.stdout)["members"][0]["steps"]
    states = {s["step"]: s["state"] for s in steps}
    assert states == {"load": "FRESH", "count": "FRESH", "filter": "STALE"}


def test_the_example_runs_from_another_folder_and_its_shards_find_the_stage_module(tmp_path):
    """``ragline.imports`` modules are looked up in the recipe's project folder too (as its
    sources are), in the ``rag run`` process and in each shard's worker process."""
    project = tmp_path / "myproject"
    (project / "mystages").mkdir(parents=True)
    (project / "mystages" / "__init__.py").write_text("")
    for name, text in _doc_files().items():
        (project / name).write_text(text)
    done = _cli(tmp_path, "run", "myproject/myrecipe.yaml", "--no-progress")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "count" in done.stdout and "failed" not in done.stdout


def test_a_bad_definition_in_a_module_a_package_imports_is_named_at_its_own_line(tmp_path):
    (tmp_path / "pk").mkdir()
    (tmp_path / "pk" / "__init__.py").write_text("from pk import nodefault  # noqa\n")
    (tmp_path / "pk" / "nodefault.py").write_text(
        "from dataclasses import dataclass\nfrom orchestrator.api import stage\n"
        "from stages.schemas import Passages\n\n\n@dataclass\nclass C:\n    k: int\n\n\n"
        "@stage('pk.s')\ndef s(passages: Passages, cfg: C) -> Passages:\n    return []\n")
    (tmp_path / "r.yaml").write_text("ragline:\n  imports: [pk]\nsteps:\n  a: {stage: pk.s}\n")
    out = _cli(tmp_path, "plan", "r.yaml")
    assert out.returncode == 2
    assert (f"error: {tmp_path}/pk/nodefault.py:11: stage 'pk.s' (pk.nodefault.s): config field "
            "'k' of C needs a default") in out.stderr
    assert "hint: fix the @stage definition there (docs/writing-stages.md)" in out.stderr


# ------------------------------------------------------------------ @stage definition mistakes


def _define(kind: str):
    if kind == "no_return":
        @stage("nu.no_return")
        def f(rows: Rows): ...
    elif kind == "list_param":
        @stage("nu.list_param")
        def f(rows: list[dict]) -> Rows: ...
    elif kind == "pyarrow_return":
        @stage("nu.pyarrow_return")
        def f(rows: Rows) -> pa.Table: ...
    elif kind == "not_dataclass":
        class Plain:
            n: int = 1

        @stage("nu.not_dataclass")
        def f(rows: Rows, cfg: Plain) -> Rows: ...
    elif kind == "no_default":
        @dataclass
        class NoDefault:
            k: int

        @stage("nu.no_default")
        def f(rows: Rows, cfg: NoDefault) -> Rows: ...
    elif kind == "shard_typo":
        @stage("nu.shard_typo", shard_by="row")
        def f(rows: Rows) -> Rows: ...
    elif kind == "shard_file":
        @stage("nu.shard_file", shard_by="path")
        def f(rows: Rows, path: File) -> Rows: ...
    elif kind == "kwargs":
        @stage("nu.kwargs")
        def f(rows: Rows, **kw) -> Rows: ...
    elif kind == "no_schema":
        class NoSchema(Table):
            pass

        @stage("nu.no_schema")
        def f(rows: Rows) -> NoSchema: ...
    elif kind == "list_schema":
        class ListSchema(Table):
            schema = [("id", pa.string())]

        @stage("nu.list_schema")
        def f(rows: Rows) -> ListSchema: ...
    elif kind == "bare_table":
        @stage("nu.bare_table")
        def f(rows: Rows) -> Table: ...


@pytest.mark.parametrize("kind, says", [
    ("no_return", "the return annotation must be an artifact type or a NamedTuple of artifact "
                  "types, and there is none; add one to the def: -> Passages"),
    ("list_param", "parameter 'rows: list[dict]' is neither an artifact type, a config dataclass "
                   "nor StageContext; declare a Table subclass with a pyarrow schema"),
    ("pyarrow_return", "got pyarrow.Table; declare a Table subclass with a pyarrow schema"),
    ("not_dataclass", "a config class must be a dataclass: add @dataclass above class Plain"),
    ("no_default", "config field 'k' of NoDefault needs a default (k: int = ...; or = MISSING, "
                   "from omegaconf import MISSING"),
    ("shard_typo", "shard_by='row' must name a Table input; the function has no parameter 'row' "
                   "(did you mean 'rows'?); its Table inputs are: rows"),
    ("shard_file", "shard_by='path' must name a Table input; 'path' is a File, not a Table"),
    ("kwargs", "'**kw': a stage takes named parameters only"),
    ("no_schema", "the output NoSchema declares no schema; add schema = pa.schema("),
    ("list_schema", "the output ListSchema.schema is a list, not a pyarrow.Schema"),
    ("bare_table", "the output is the base class Table, which has no schema; declare a subclass"),
])
def test_a_definition_mistake_says_what_to_write(kind, says):
    with pytest.raises(StageDefinitionError) as e:
        _define(kind)
    assert says in str(e.value)
    assert f"stage 'nu.{kind}' (" in str(e.value)   # names the stage and its function
    assert f"nu.{kind}" not in registry.REGISTRY
    assert isinstance(e.value, TypeError)            # what callers caught before
    assert e.value.file == __file__ and e.value.line > 0   # for a file:line prefix
    assert Path(__file__).read_text().splitlines()[e.value.line - 1].strip().startswith(
        f'@stage("nu.{kind}"')                     # the decorator's line


def test_a_second_function_under_a_taken_name_is_refused_even_with_the_same_name(monkeypatch):
    monkeypatch.setattr(registry, "REGISTRY", {})

    def run(rows: Rows) -> Rows: ...

    def same_name_elsewhere(rows: Rows) -> Rows: ...

    run.__module__, run.__qualname__ = "project_a.stages", "run"
    same_name_elsewhere.__module__, same_name_elsewhere.__qualname__ = "project_b.stages", "run"
    stage("nu.run")(run)
    stage("nu.run")(run)  # the same function again (a module imported twice): fine
    with pytest.raises(StageDefinitionError, match=r"the name 'nu.run' is already registered by "
                                                   r"project_a.stages.run; give one of them"):
        stage("nu.run")(same_name_elsewhere)


# ------------------------------------------------------------------ ragline.imports mistakes


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A user's folder with package ``nu_pkg`` (module ``words`` defining 'nu.count'), as cwd."""
    pkg = tmp_path / "nu_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "words.py").write_text(
        "from orchestrator.api import stage\nfrom tests.orchestrator.test_new_user_stage_errors "
        "import Rows\n\n\n@stage(\"nu.count\")\ndef count(rows: Rows) -> Rows:\n    return []\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_loaded", set())
    yield tmp_path
    for name in [m for m in sys.modules if m == "nu_pkg" or m.startswith("nu_pkg.")]:
        del sys.modules[name]
    registry.REGISTRY.pop("nu.count", None)


@pytest.mark.parametrize("module, says, hint", [
    ("nu_pkg.wrods", "cannot import stage module 'nu_pkg.wrods': nu_pkg has no module 'wrods' "
                     "(did you mean 'nu_pkg.words'?)", "its modules are: nu_pkg.words"),
    ("nu_pkg/words.py", "write the module's dotted name, 'nu_pkg.words', not a file name",
     "ragline.imports: [nu_pkg.words]"),
    ("nu_pkg.words.py", "write the module's dotted name, 'nu_pkg.words'", None),
    ("nu_pgk.words", "No module named 'nu_pgk' (did you mean 'nu_pkg'?)",
     "put nu_pgk/ there, or pip install it"),
])
def test_an_import_mistake_names_the_recipe_key_and_the_fix(project, module, says, hint):
    with pytest.raises(ConfigError) as e:
        load_stages([module], names=["nu.count"])
    assert says in e.value.message
    assert e.value.key == "ragline.imports"   # the DAG builder puts the recipe's file:line first
    if hint:
        assert hint in e.value.hint


def test_a_package_that_registers_nothing_names_the_module_to_list(project):
    load_stages(["nu_pkg"], names=[])
    with pytest.raises(ConfigError) as e:
        registry.get_stage("nu.count", "steps.count.stage")
    assert "unknown stage 'nu.count'" in e.value.message
    assert ("ragline.imports: 'nu_pkg' registers no stage" in e.value.hint
            and "list nu_pkg.words, which defines 'nu.count'" in e.value.hint)


def test_a_stage_defined_nearby_but_not_imported_names_its_module(project):
    load_stages([], names=[])
    with pytest.raises(ConfigError) as e:
        registry.get_stage("nu.count", "steps.count.stage")
    assert e.value.hint == ("nu_pkg/words.py defines it: add its module to the recipe, "
                            "ragline: {imports: [nu_pkg.words]}")


def test_a_stage_of_ones_own_may_not_take_a_shipped_name(project, monkeypatch):
    monkeypatch.setattr(registry, "REGISTRY", {})
    (project / "nu_pkg" / "load.py").write_text(
        "from orchestrator.api import stage\nfrom tests.orchestrator.test_new_user_stage_errors "
        "import Rows\n\n\n@stage(\"load_data\")\n"
        "def load_data(rows: Rows) -> Rows:\n    return []\n")
    with pytest.raises(ConfigError) as e:
        load_stages(["nu_pkg.load"], names=["load_data"])
    assert e.value.message == ("stage 'load_data' of nu_pkg.load has the name of the shipped stage "
                               "in stages/common/load.py; rename yours, e.g. "
                               "@stage(\"my.load_data\")")
    assert e.value.key == "ragline.imports"


def test_the_cli_puts_the_recipe_line_first(project):
    (project / "r.yaml").write_text("ragline:\n  imports: [nu_pkg.wrods]\nsteps:\n"
                                    "  c: {stage: nu.count}\n")
    out = _cli(project, "plan", "r.yaml", "--runs-dir", str(project / "runs"))
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: {project / 'r.yaml'}:2: cannot import stage module "
                                 "'nu_pkg.wrods': nu_pkg has no module 'wrods' (did you mean "
                                 "'nu_pkg.words'?)"), out.stderr
