"""Sources reached through links (data audit of session 43, findings 2 and 3): a linked file
keeps the name the user gave it (a Hugging Face Hub snapshot links each file to a suffix-less
blob, and a set is named after its file); a folder holding a linked folder is hashed with what
the link holds, so an edit there recomputes ``load``; a broken link in a data folder is a plan
problem naming the source, not "internal error: FileNotFoundError"."""

from __future__ import annotations

import json
import os

from tests.conftest import rag

RECIPE = """data: {corpus: null, eval_questions: null}
sources: {corpus: "${data.corpus}", eval_questions: "${data.eval_questions}"}
steps:
  load: {stage: load_data, inputs: {corpus: corpus, eval: eval_questions}}
"""
QUESTION = {"id": "q1", "question": "What is alpha?", "answers": ["one"]}


def _setup(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "r.yaml").write_text(RECIPE)
    (tmp_path / "corpus.jsonl").write_text('{"id": "p1", "title": "A", "text": "Alpha is one."}\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "runs" / "cache"))
    return str(tmp_path / "conf" / "r.yaml")


def _eval_rows(tmp_path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(tmp_path / "runs" / "latest" / "artifacts" / "load.eval").to_pylist()


def test_a_linked_file_keeps_its_own_name(tmp_path, monkeypatch):
    recipe = _setup(tmp_path, monkeypatch)
    blobs, snapshot = tmp_path / "hub" / "blobs", tmp_path / "hub" / "snapshots" / "abc"
    blobs.mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (blobs / ("7f" * 32)).write_text(json.dumps(QUESTION) + "\n")
    os.symlink(blobs / ("7f" * 32), snapshot / "nq.jsonl")
    assert rag("run", recipe, "data.corpus=corpus.jsonl",
               f"data.eval_questions={snapshot / 'nq.jsonl'}", "--no-progress",
               runs=tmp_path / "runs") == 0
    assert [r["dataset"] for r in _eval_rows(tmp_path)] == ["nq"]


def test_an_edit_inside_a_linked_folder_recomputes_load(tmp_path, monkeypatch):
    recipe = _setup(tmp_path, monkeypatch)
    (tmp_path / "raw" / "nq").mkdir(parents=True)
    (tmp_path / "sets").mkdir()
    (tmp_path / "raw" / "nq" / "test.jsonl").write_text(json.dumps(QUESTION) + "\n")
    (tmp_path / "sets" / "tqa.jsonl").write_text(json.dumps({**QUESTION, "id": "t1"}) + "\n")
    os.symlink(tmp_path / "raw" / "nq", tmp_path / "sets" / "nq")
    os.symlink("..", tmp_path / "sets" / "loop")   # a link back up is not walked forever
    args = (recipe, "data.corpus=corpus.jsonl", "data.eval_questions=sets", "--no-progress")
    assert rag("run", *args, runs=tmp_path / "runs") == 0
    (tmp_path / "raw" / "nq" / "test.jsonl").write_text(
        json.dumps({**QUESTION, "answers": ["ONE-EDITED"]}) + "\n")
    assert rag("run", *args, runs=tmp_path / "runs") == 0
    answers = {r["dataset"]: r["answers"] for r in _eval_rows(tmp_path)}
    assert answers["nq"] == ["ONE-EDITED"]


def test_a_broken_link_in_a_data_folder_is_a_problem_naming_the_source(tmp_path, monkeypatch,
                                                                       capsys):
    recipe = _setup(tmp_path, monkeypatch)
    (tmp_path / "sets").mkdir()
    (tmp_path / "sets" / "tqa.jsonl").write_text(json.dumps(QUESTION) + "\n")
    os.symlink(tmp_path / "gone.jsonl", tmp_path / "sets" / "old.jsonl")
    assert rag("plan", recipe, "data.corpus=corpus.jsonl", "data.eval_questions=sets",
               runs=tmp_path / "runs") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert ("source 'eval_questions': " f"{tmp_path / 'sets' / 'old.jsonl'} cannot be read (a "
            "broken link") in out, out


def test_an_unreadable_file_in_a_data_folder_is_a_problem_naming_the_source(tmp_path, monkeypatch,
                                                                            capsys):
    """A file the plan cannot open (no permission) stopped rag plan with "internal error:
    PermissionError"; it is a problem naming the source, as a broken link is."""
    from orchestrator import hashing

    recipe = _setup(tmp_path, monkeypatch)
    (tmp_path / "sets").mkdir()
    (tmp_path / "sets" / "tqa.jsonl").write_text(json.dumps(QUESTION) + "\n")

    def refused(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(hashing, "hash_file", refused)   # root reads a chmod 000 file anyway
    assert rag("plan", recipe, "data.corpus=corpus.jsonl", "data.eval_questions=sets",
               runs=tmp_path / "runs") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"{tmp_path / 'sets' / 'tqa.jsonl'} cannot be read (Permission denied)" in out, out


def test_a_parent_of_a_linked_folder_is_its_targets_parent(tmp_path, monkeypatch):
    """Review 43, finding 1: ``link/../corpus.jsonl`` was made absolute by text (the link and
    its ``..`` dropped), so the stage read ``./corpus.jsonl`` or found no file, while the plan
    had hashed the file the system resolves: the target's parent's."""
    recipe = _setup(tmp_path, monkeypatch)
    (tmp_path / "corpus.jsonl").unlink()   # no file at the path the text suggests
    (tmp_path / "disk" / "sub").mkdir(parents=True)
    (tmp_path / "disk" / "corpus.jsonl").write_text(
        '{"id": "p1", "title": "A", "text": "Alpha is one."}\n')
    (tmp_path / "disk" / "nq.jsonl").write_text(json.dumps(QUESTION) + "\n")
    os.symlink(tmp_path / "disk" / "sub", tmp_path / "link")
    assert rag("run", recipe, "data.corpus=link/../corpus.jsonl",
               "data.eval_questions=link/../nq.jsonl", "--no-progress",
               runs=tmp_path / "runs") == 0
    assert [r["dataset"] for r in _eval_rows(tmp_path)] == ["nq"]
