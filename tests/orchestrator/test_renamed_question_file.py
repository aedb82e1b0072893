"""A question file's set name comes from its file name, so the same bytes under another name
are another key for the load step. Before: the cache key hashed the bytes only, so a file
copied to `arc_challenge.jsonl` was served the cached table of its old name (set `eval_mc`, no
options, open-QA scoring) until `--force load`."""

from __future__ import annotations

import json

from tests.conftest import rag

RECIPE = """\
sources:
  eval: %s
steps:
  load: {stage: load_data, inputs: {eval: eval}, num_entities: 4}
"""


def _sets(runs, capsys) -> set[str]:
    capsys.readouterr()
    assert rag("show", "load.eval", "--json", "--runs-dir", str(runs)) == 0
    return {row["dataset"] for row in json.loads(capsys.readouterr().out)["first_rows"]}


def test_the_same_bytes_renamed_are_loaded_again_under_their_name(tmp_path, capsys):
    rows = [{"id": f"q{i}", "question": f"Which year, {i}?", "answers": ["1843"],
             "ctxs": [{"id": "p1", "title": "T", "text": "It was 1843."}]} for i in range(3)]
    first = tmp_path / "eval_mc.jsonl"
    first.write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe, runs = tmp_path / "r.yaml", tmp_path / "runs"
    recipe.write_text(RECIPE % first)
    assert rag("run", str(recipe), "--runs-dir", str(runs)) == 0
    renamed = tmp_path / "arc_challenge.jsonl"
    renamed.write_bytes(first.read_bytes())
    recipe.write_text(RECIPE % renamed)
    capsys.readouterr()
    assert rag("run", str(recipe), "--runs-dir", str(runs)) == 0
    assert "running stage load_data" in capsys.readouterr().err     # before: "cached"
    assert _sets(runs, capsys) == {"arc_challenge"}
