"""A JSON file holding one object of sets (RAG-Instruct's ``eval_data.json``:
``{source: [items]}``) is read as the sets it holds; it was refused with "missing field
'question' (... the record has popqa_longtail_w_gs, health_claims_processed)"."""

from __future__ import annotations

import json

import pytest

from orchestrator.api import DataError
from stages.lib.data.questions import read_questions


def test_an_object_of_sets_reads_each_set_under_its_name(tmp_path):
    path = tmp_path / "eval_data.json"
    path.write_text(json.dumps({
        "popqa_longtail_w_gs": [{"question": "Who is X?", "golds": ["Y"],
                                 "ctxs": [{"id": "1", "title": "t", "text": "Y is X"}]},
                                {"question": "Who is Z?", "golds": ["W"]}],
        "health_claims_processed": [{"question": "Cats fly.", "golds": ["false"],
                                     "source": "pubhealth"}]}, indent=1))
    rows = read_questions(path)
    assert [(r["id"], r["dataset"]) for r in rows] == [
        ("popqa_longtail_w_gs_1", "popqa_longtail_w_gs"),
        ("popqa_longtail_w_gs_2", "popqa_longtail_w_gs"),
        ("health_claims_processed_1", "health_claims_processed")]   # the key, as the seed
    assert rows[0]["ctxs"][0]["text"] == "Y is X" and rows[1]["answers"] == ["W"]


def test_a_bad_record_in_a_set_is_named_by_set_and_element(tmp_path):
    path = tmp_path / "eval_data.json"
    path.write_text(json.dumps({"arc": [{"question": "a", "golds": ["A"]}, {"golds": ["B"]}]}))
    with pytest.raises(DataError, match=r"eval_data.json set 'arc' element 2: missing field "
                                        r"'question'"):
        read_questions(path)


def test_one_json_object_that_is_a_question_is_still_a_question(tmp_path):
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"question": "q", "answers": ["a"], "tags": ["x"]}) + "\n")
    assert [r["question"] for r in read_questions(path)] == ["q"]


def test_self_rag_training_records_name_their_set_as_dataset_name(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"instruction": "Is it?", "output": "yes", "id": "x_1",
                                "dataset_name": "fever"}) + "\n")
    assert read_questions(path)[0]["dataset"] == "fever"


def test_an_alpaca_records_input_joins_its_instruction(tmp_path):
    """``{instruction, input, output}`` (Alpaca, Tulu): the input was dropped without a word."""
    path = tmp_path / "alpaca.jsonl"
    recs = [{"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
            {"instruction": "Name a colour.", "input": "", "output": "red"},
            {"instruction": "Write the past tense of the verb given.", "input": "give",
             "output": "gave"},          # an input inside the instruction's words is still read
            {"instruction": "Is it true?\n\n## Input:\n\nCats fly.", "input": "Cats fly.",
             "output": "no"},            # the instruction's last line already: once
            {"instruction": "Convert this binary number to base 10", "input": "10",
             "output": "2"}]             # an input the instruction ends with by chance
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert [r["question"] for r in read_questions(path)] == [
        "Translate to French.\nGood morning", "Name a colour.",
        "Write the past tense of the verb given.\ngive", "Is it true?\n\n## Input:\n\nCats fly.",
        "Convert this binary number to base 10\n10"]


def test_other_readers_still_refuse_a_file_of_one_json_object(tmp_path):
    from stages.lib.data.files import iter_json_records

    path = tmp_path / "corpus.json"
    path.write_text(json.dumps({"data": [{"id": "1", "text": "t"}]}, indent=1))
    with pytest.raises(DataError, match="the file is a single JSON object \\(keys: data\\)"):
        list(iter_json_records(path))
