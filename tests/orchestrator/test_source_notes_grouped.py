"""Sources read from the recipe's project directory get one note between them, naming each:
``rag plan dynamicrag_demo`` from a folder of one's own printed four lines that each said the
same (CLI audit of session 42, item 12f). One such source keeps its own line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import rag

RECIPE = """ragline: {imports: [tests.toy.stages]}
sources:
  numbers: data/n.txt
  more: data/m.txt
steps:
  load: {stage: toy_gen, inputs: {path: numbers}}
  load_more: {stage: toy_gen, inputs: {path: more}}
"""


def test_sources_read_from_the_project_directory_share_one_note(tmp_path, monkeypatch, capsys):
    proj = tmp_path / "proj"
    (proj / "conf").mkdir(parents=True)
    (proj / "data").mkdir()
    (proj / "conf" / "r.yaml").write_text(RECIPE)
    for name in ("n.txt", "m.txt"):
        (proj / "data" / name).write_text("3\n4\n")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "cache"))
    assert rag("plan", str(proj / "conf" / "r.yaml"), "--json", runs=tmp_path / "runs") == 0
    notes = json.loads(capsys.readouterr().out)["members"][0]["notes"]
    assert notes == [f"2 sources not in the current directory ({Path.cwd()}), read from the "
                     f"recipe's project directory {proj.resolve()}: 'numbers', 'more'"]
