"""An input that reads one file, given a folder (data audit of session 43, finding 12): ``rag
plan`` names the step's input, the folder and what it holds; before, the plan was silent and the
step failed only when it ran."""

from __future__ import annotations

from tests.conftest import rag

RECIPE = """data: {corpus: null, eval_questions: null, qrels: null}
sources: {corpus: "${data.corpus}", eval_questions: "${data.eval_questions}",
          qrels: "${data.qrels}"}
steps:
  load: {stage: load_data, inputs: {corpus: corpus, eval: eval_questions, qrels: qrels}}
"""


def test_a_qrels_folder_is_refused_by_the_plan(tmp_path, monkeypatch, capsys):
    (tmp_path / "r.yaml").write_text(RECIPE)
    (tmp_path / "corpus.jsonl").write_text('{"id": "p1", "title": "A", "text": "Alpha."}\n')
    (tmp_path / "q.jsonl").write_text('{"id": "q1", "question": "Alpha?", "answers": ["a"]}\n')
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tp1\t1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "cache"))
    args = ("r.yaml", "data.corpus=corpus.jsonl", "data.eval_questions=q.jsonl")
    assert rag("plan", *args, "data.qrels=qrels", "--check", runs=tmp_path / "runs") == 2
    out = " ".join(capsys.readouterr().out.split())
    assert (f"steps.load.inputs.qrels (source 'qrels'): {tmp_path / 'qrels'} is a folder, "
            "expected one file (it holds test.tsv); point the source at the file itself") in out
    assert rag("plan", *args, "data.qrels=qrels/test.tsv", "--check",
               runs=tmp_path / "runs") == 0


IMPORT = """sources: {vectors: vec.npy, ids: idsdir}
steps:
  load: {stage: load_data, num_entities: 5, num_train: 2, num_eval: 2}
  imp: {stage: import_embeddings, inputs: {vectors: vectors, ids: ids, corpus: load.corpus}}
"""


def test_an_ids_folder_is_refused_by_the_plan(tmp_path, monkeypatch, capsys):
    """import_embeddings' ids given a folder failed in the stage with a bare IsADirectoryError,
    and the run was not marked as bad input."""
    import numpy as np

    (tmp_path / "r.yaml").write_text(IMPORT)
    np.save(tmp_path / "vec.npy", np.zeros((3, 4), np.float32))
    (tmp_path / "idsdir").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGLINE_CACHE", str(tmp_path / "cache"))
    assert rag("plan", "r.yaml", "--check", runs=tmp_path / "runs") == 2
    out = " ".join(capsys.readouterr().out.split())
    assert (f"steps.imp.inputs.ids (source 'ids'): {tmp_path / 'idsdir'} is a folder, expected "
            "one file (an empty one); point the source at the file itself") in out
