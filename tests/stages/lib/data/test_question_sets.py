"""A folder of evaluation sets in the seeds' formats (DynamicRAG eval_data/, ALCE ASQA)."""

from __future__ import annotations

import json

import pytest

from orchestrator.api import DataError
from stages.lib.data.question_sets import read_question_sets, set_name

LONG = "The first president was George Washington, inaugurated in 1789 in New York."


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture
def eval_data(tmp_path):
    root = tmp_path / "eval_data"
    root.mkdir()
    write(root / "nq.jsonl", [
        {"id": "0", "question": "who wrote hamlet", "answers": ["Shakespeare"],
         "ctxs": [{"id": "d1", "title": "Hamlet", "text": "Hamlet is a tragedy by Shakespeare."},
                  {"title": "Globe", "text": "The Globe theatre."}]},
        {"id": "1", "question": "capital of france", "answers": ["Paris"],
         "ctxs": [{"id": "d2", "title": "Paris", "text": "Paris is the capital."}]}])
    write(root / "fever.jsonl", [
        {"id": "0", "question": "Paris is in Italy.", "answers": ["REFUTES"], "ctxs": []}])
    write(root / "eli5.jsonl", [
        {"question": "why is the sky blue", "answers": ["Rayleigh scattering of sunlight."],
         "ctxs": [{"title": "Sky", "text": "Blue light scatters more."}]}])
    write(root / "asqa_eval_gtr_top100.jsonl", [
        {"sample_id": "-123", "question": "Who was the first president?", "answer": LONG,
         "qa_pairs": [{"question": "of the US?", "short_answers": ["George Washington"]},
                      {"question": "of France?", "short_answers": ["Louis-Napoleon Bonaparte"]}],
         "docs": [{"id": "g1", "title": "Washington", "text": "George Washington was ..."}]}])
    (root / "README.md").write_text("not a question file")
    (root / ".hidden.jsonl").write_text("{}\n")
    return root


def test_every_set_loads_with_its_golds_and_passages(eval_data):
    rows = read_question_sets(eval_data)
    by_id = {r["id"]: r for r in rows}
    assert [r["id"] for r in rows] == ["asqa_eval_gtr_top100/-123", "eli5/1", "fever/0", "nq/0",
                                       "nq/1"]
    assert {r["dataset"] for r in rows} == {"asqa_eval_gtr_top100", "eli5", "fever", "nq"}
    asqa = by_id["asqa_eval_gtr_top100/-123"]
    assert asqa["answers"] == ["George Washington", "Louis-Napoleon Bonaparte"]   # not LONG
    assert [c["id"] for c in asqa["ctxs"]] == ["g1"]                      # ALCE 'docs'
    assert by_id["fever/0"]["answers"] == ["REFUTES"] and by_id["fever/0"]["ctxs"] == []
    assert by_id["eli5/1"]["answers"] == ["Rayleigh scattering of sunlight."]
    nq = by_id["nq/0"]
    assert [c["title"] for c in nq["ctxs"]] == ["Hamlet", "Globe"] and nq["ctxs"][1]["id"] is None


def test_max_questions_is_per_set(eval_data):
    rows = read_question_sets(eval_data, max_questions=1)
    assert [r["id"] for r in rows] == ["asqa_eval_gtr_top100/-123", "eli5/1", "fever/0", "nq/0"]


def test_a_file_reads_as_before(eval_data):
    rows = read_question_sets(eval_data / "nq.jsonl")
    assert [r["id"] for r in rows] == ["0", "1"] and rows[0]["dataset"] == "nq"


def test_training_records_keep_retrieved_question(tmp_path):
    # the released 150k training file's shape: {id, question, retrieved_question, answer}
    write(tmp_path / "train.jsonl", [
        {"id": "nq_train_1", "question": "Q: who wrote hamlet?", "retrieved_question":
         "who wrote hamlet", "answer": ["Shakespeare"]}])
    (row,) = read_question_sets(tmp_path / "train.jsonl")
    assert row["retrieved_question"] == "who wrote hamlet" and row["dataset"] == "nq"


def test_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: the folder has no question files"):
        read_question_sets(tmp_path / "empty")
    both = tmp_path / "both"
    both.mkdir()
    write(both / "nq.jsonl", [{"question": "q", "answers": ["a"]}])
    write(both / "nq.json", [{"question": "q", "answers": ["a"]}])
    with pytest.raises(DataError, match="several files hold the set 'nq'"):
        read_question_sets(both)


def test_set_names():
    from pathlib import Path

    assert set_name(Path("a/TriviaQA.test.jsonl")) == "triviaqa"


def test_a_set_saved_as_parquet_is_one_of_the_folder(eval_data):
    """Before: ``triviaqa.parquet`` was skipped as "not a question file"."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"question": "q", "answer": ["Ann"], "id": "7"}]),
                   eval_data / "triviaqa.parquet")
    rows = read_question_sets(eval_data)
    assert [(r["id"], r["dataset"], r["answers"]) for r in rows if r["dataset"] == "triviaqa"] \
        == [("triviaqa/7", "triviaqa", ["Ann"])]


def test_saved_hugging_face_datasets(tmp_path, eval_data):
    """A question input may be a dataset saved with ``save_to_disk`` (one split), and a folder of
    sets may hold such folders; a DatasetDict folder is one set, read from its evaluation split
    (or the split asked for). Before: "the folder has no question files (it holds:
    data-00000-of-00001.arrow, ...)"; then, until the split choice, a refusal naming the
    splits."""
    import datasets

    nq = datasets.DatasetDict({
        "validation": datasets.Dataset.from_list([{"id": "1", "question": "who?", "answer": ["Ann"]},
                                                  {"id": "2", "question": "when?",
                                                   "answer": ["1871"]}]),
        "train": datasets.Dataset.from_list([{"question": "q", "answer": ["a"]}])})
    nq.save_to_disk(str(tmp_path / "nq_open"))
    rows = read_question_sets(tmp_path / "nq_open")
    assert [(r["id"], r["dataset"]) for r in rows] == [("nq_open/1", "nq_open"),
                                                        ("nq_open/2", "nq_open")]
    rows = read_question_sets(tmp_path / "nq_open", splits=["train"])
    assert [(r["id"], r["question"]) for r in rows] == [("nq_open/1", "q")]   # line 1 of train
    rows = read_question_sets(tmp_path / "nq_open" / "validation")
    assert [(r["id"], r["dataset"], r["answers"]) for r in rows] == [
        ("1", "nq_open", ["Ann"]), ("2", "nq_open", ["1871"])]   # the split's folder names no set

    nq["validation"].save_to_disk(str(eval_data / "triviaqa"))
    rows = read_question_sets(eval_data)
    assert [(r["id"], r["dataset"]) for r in rows if r["dataset"] == "triviaqa"] == [
        ("triviaqa/1", "triviaqa"), ("triviaqa/2", "triviaqa")]

    (eval_data / "triviaqa" / "data-00000-of-00001.arrow").unlink()
    with pytest.raises(DataError) as err:
        read_question_sets(eval_data)
    assert err.value.message == (f"{eval_data / 'triviaqa'}: data-00000-of-00001.arrow is listed in "
                                 "state.json but missing; copy the whole folder, or save the "
                                 "dataset again with save_to_disk")

    (eval_data / "triviaqa" / "state.json").write_text("{}")
    with pytest.raises(DataError) as err:
        read_question_sets(eval_data)
    assert err.value.message == (f"{eval_data / 'triviaqa' / 'state.json'}: not the state file of "
                                 "a saved dataset (expected a _data_files list); save the dataset "
                                 "again with save_to_disk")


def test_an_unreadable_saved_dataset_is_a_one_line_error(tmp_path, monkeypatch):
    """Before: Python's PermissionError from reading state.json (tests run as root, where a mode
    of 000 does not stop a read: the read is made to fail instead)."""
    import pathlib

    import datasets

    datasets.Dataset.from_list([{"question": "q", "answer": ["a"]}]).save_to_disk(
        str(tmp_path / "nq"))
    state = tmp_path / "nq" / "state.json"
    read_text = pathlib.Path.read_text

    def denied(self, *args, **kwargs):
        if self == state:
            raise PermissionError(13, "Permission denied", str(self))
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "read_text", denied)
    with pytest.raises(DataError) as err:
        read_question_sets(tmp_path / "nq")
    assert err.value.message == (f"{state}: cannot read it (Permission denied); make the saved "
                                 "dataset's folder readable")


def test_a_split_in_several_files_is_read_whole(tmp_path):
    """The Hub's larger splits come in numbered files (train-00000-of-00002, ...): the split read
    is all of them, in order, ids prefixed with the file's number (line numbers repeat across
    files), and ``max_questions`` counts across them."""
    hub = tmp_path / "nq_open"
    hub.mkdir()
    for n in range(2):
        write(hub / f"train-0000{n}-of-00002.jsonl",
              [{"question": f"q{n}{i}", "answer": ["a"]} for i in range(2)])
    write(hub / "validation-00000-of-00001.jsonl", [{"question": "v", "answer": ["a"]}])
    rows = read_question_sets(hub, splits=["train"])
    assert [(r["id"], r["question"]) for r in rows] == [
        ("nq_open/0-1", "q00"), ("nq_open/0-2", "q01"), ("nq_open/1-1", "q10"),
        ("nq_open/1-2", "q11")]
    assert [r["id"] for r in read_question_sets(hub, splits=["train"], max_questions=3)] == [
        "nq_open/0-1", "nq_open/0-2", "nq_open/1-1"]
    assert [r["id"] for r in read_question_sets(hub)] == ["nq_open/1"]   # validation


def test_a_set_file_and_a_dataset_folder_of_one_name_are_refused(tmp_path):
    root = tmp_path / "eval_data"
    (root / "nq").mkdir(parents=True)
    write(root / "nq.jsonl", [{"question": "q", "answers": ["a"]}])
    write(root / "nq" / "test.jsonl", [{"question": "q", "answers": ["a"]}])
    with pytest.raises(DataError) as err:
        read_question_sets(root)
    assert err.value.message == (f"{root}: several files hold the set 'nq' (nq.jsonl, "
                                 "nq/test.jsonl); keep one file per evaluation set")


def test_a_set_named_like_training_data_is_named_in_a_warning(tmp_path, caplog):
    """A training split alone in an evaluation folder (DPR's nq-train.qa.csv, its test file
    elsewhere) is scored as a set and averaged in: it is read, and named in a warning."""
    import logging

    root = tmp_path / "qas"
    root.mkdir()
    for name in ("nq-train", "webq-test"):
        (root / f"{name}.qa.csv").write_text(f"{name} question?\t['a']\n")
    with caplog.at_level(logging.WARNING, logger="stages.lib.data.question_sets"):
        rows = read_question_sets(root)
    assert [r["dataset"] for r in rows] == ["nq-train", "webq-test"]
    assert [r.getMessage() for r in caplog.records] == [
        f"{root}: nq-train is named like training data, yet evaluated as a set of its own and "
        "averaged in; move it out of the folder if it is a training split"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="stages.lib.data.question_sets"):
        read_question_sets(root, splits=["train"])   # and an evaluation split read for training
    assert [r.getMessage() for r in caplog.records] == [
        f"{root}: webq-test is named like evaluation data, yet read as training questions; move "
        "it out of the folder if it is a test or dev split"]


def test_one_split_of_each_dataset_is_read_from_a_folder_of_split_named_files(tmp_path, caplog):
    """DPR's qas folder keeps every dataset's splits side by side (nq-train, nq-dev, nq-test,
    trivia-dev, trivia-test, webq-test): evaluation reads one split of each dataset, the test
    split where there is one, not dev and test averaged in as two sets (and train as a third)."""
    import logging

    root = tmp_path / "qas"
    root.mkdir()
    names = ("nq-train", "nq-dev", "nq-test", "trivia_dev", "trivia_validation", "webq-test",
             "fever_dev")
    for name in names:
        (root / f"{name}.qa.csv").write_text(f"{name} question?\t['a']\n")
    with caplog.at_level(logging.WARNING, logger="stages.lib.data.question_sets"):
        rows = read_question_sets(root)
    assert [r["dataset"] for r in rows] == ["fever_dev", "nq-test", "trivia_validation",
                                            "webq-test"]
    assert [r.getMessage() for r in caplog.records] == [
        f"{root}: left out nq-dev, nq-train, trivia_dev, other splits of the datasets of "
        "nq-test, trivia_validation (one split per dataset is read, the first held of test / "
        "validation / dev / val / valid / eval; the load step's eval_split or train_split names "
        "another)"]
    assert [r["dataset"] for r in read_question_sets(root, splits=["dev"])] == [
        "fever_dev", "nq-dev", "trivia_dev", "webq-test"]
    with pytest.raises(DataError) as err:
        read_question_sets(root, splits=["train"])
    assert err.value.message == (
        f"{root}: no train split of trivia (its files: trivia_dev, trivia_validation); name the "
        "split to read with the load step's eval_split or train_split, or leave the dataset's "
        "files out of the input folder")
    (root / "trivia_dev.qa.csv").unlink()
    (root / "trivia_validation.qa.csv").unlink()
    assert [r["dataset"] for r in read_question_sets(root, splits=["train"])] == [
        "fever_dev", "nq-train", "webq-test"]
