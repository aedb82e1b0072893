"""Question readers: the field variants of FlashRAG, DPR, Self-RAG, DynamicRAG, ASQA, BEIR."""

from __future__ import annotations

import json

import pytest

from orchestrator.errors import DataError
from stages.lib.data.files import iter_json_records
from stages.lib.data.questions import normalize_question, read_questions
from tests.stages.lib.data.files_helpers import jsonl, raises, write


def test_flashrag_questions_dataset_from_folder(tmp_path):
    (tmp_path / "nq").mkdir()
    p = jsonl(tmp_path / "nq" / "test.jsonl", [
        {"id": "test_0", "question": "who got the first nobel prize in physics",
         "golden_answers": ["Wilhelm Conrad Röntgen"], "metadata": {}}])
    assert read_questions(p) == [{"id": "test_0", "dataset": "nq",
                                  "question": "who got the first nobel prize in physics",
                                  "answers": ["Wilhelm Conrad Röntgen"], "gold": []}]


def test_question_field_variants(tmp_path):
    p = jsonl(tmp_path / "mixed.jsonl", [
        {"Question": "q1", "answer": "single"},
        {"query": "q2", "answers": ["a", "b", "a", ""], "_id": "hotpotqa_5"},
        {"instruction": "q3", "output": ["x"], "qid": 9, "source": "popqa"},
        {"question": "q4", "answer": [1871, ["nested"]], "dataset": "triviaqa", "gold": "p7"},
    ])
    rows = read_questions(p)
    assert [r["question"] for r in rows] == ["q1", "q2", "q3", "q4"]
    assert [r["id"] for r in rows] == ["1", "hotpotqa_5", "9", "4"]
    assert [r["dataset"] for r in rows] == ["mixed", "hotpotqa", "popqa", "triviaqa"]
    assert [r["answers"] for r in rows] == [["single"], ["a", "b"], ["x"], ["1871", "nested"]]
    assert rows[3]["gold"] == ["p7"]
    assert all("ctxs" not in r for r in rows)


def test_asqa_docs_and_retrieved_ctxs(tmp_path):
    p = jsonl(tmp_path / "asqa_eval_gtr_top100.jsonl", [
        {"question": "Who played X?", "qa_pairs": [{"short_answers": ["Ann", "Bo"]},
                                                   {"short_answers": ["Bo", "Cy"]}],
         "docs": [{"id": "9", "title": "T", "text": "t", "score": "1.5"},
                  {"title": "U", "text": "u"}]},
        {"question": "q", "answers": ["a"], "ctxs": [{"id": 3, "title": "V", "text": "v", "socre": 0.5}]},
        {"question": "q", "answers": ["a"],
         "retrieval_result": [{"id": "4", "contents": '"W"\nw', "score": 2}]},
    ])
    rows = read_questions(p)
    assert rows[0]["answers"] == ["Ann", "Bo", "Cy"]
    # ALCE's metrics need the pairs apart and the long-form reference
    assert rows[0]["qa_pairs"] == [["Ann", "Bo"], ["Bo", "Cy"]]
    assert rows[0]["long_answers"] == [] and "qa_pairs" not in rows[1]
    assert rows[0]["dataset"] == "asqa_eval_gtr_top100"
    assert rows[0]["ctxs"] == [{"id": "9", "title": "T", "text": "t", "score": 1.5},
                               {"id": None, "title": "U", "text": "u", "score": None}]
    assert rows[1]["ctxs"] == [{"id": "3", "title": "V", "text": "v", "score": 0.5}]
    assert rows[2]["ctxs"] == [{"id": "4", "title": "W", "text": "w", "score": 2.0}]


def test_json_array_questions_dynamicrag_json_lines_and_dpr_positive_ctxs(tmp_path):
    arr = write(tmp_path / "split_0.json",
                '[\n  {"id": "nq_1", "question": "a", "answer": ["x"]},\n\n'
                '  {"id": "nq_2",\n   "question": "b", "answer": "y"}\n]\n')
    rows = read_questions(arr)
    assert [(r["id"], r["dataset"], r["answers"]) for r in rows] == [("nq_1", "nq", ["x"]),
                                                                     ("nq_2", "nq", ["y"])]
    assert [n for n, _ in iter_json_records(arr)] == [2, 4]
    # a .json file that is really JSON lines (DynamicRAG's rag_training_data.json)
    lines = jsonl(tmp_path / "rag_training_data.json",
                  [{"id": "fever_3", "question": "c", "answer": "SUPPORTS"}])
    assert read_questions(lines)[0]["dataset"] == "fever"
    dpr = jsonl(tmp_path / "nq-train.jsonl", [
        {"question": "d", "answers": ["z"], "positive_ctxs": [{"title": "t", "text": "x", "passage_id": "77"}]}])
    assert read_questions(dpr)[0]["gold"] == ["77"]


def test_max_questions_and_unanswered_questions(tmp_path):
    p = jsonl(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "what?"}, {"_id": "q2", "text": "why?"}])
    rows = read_questions(p, require_answers=False, max_questions=1, default_dataset="scifact")
    assert rows == [{"id": "q1", "dataset": "scifact", "question": "what?", "answers": [], "gold": []}]


def test_max_questions_zero_reads_none_and_lines_past_the_limit_are_not_read(tmp_path):
    """``max_eval: 0`` is no question (one file gave its first), and a record past the limit,
    even a broken one, is not parsed."""
    p = tmp_path / "q.jsonl"
    p.write_text('{"question": "a", "answers": ["x"]}\n{"question": broken\n')
    assert read_questions(p, max_questions=0) == []
    assert [r["question"] for r in read_questions(p, max_questions=1)] == ["a"]


def test_question_errors_name_file_and_line(tmp_path):
    cases = [
        ('{"question": "a", "answers": ["x"]}\n{"question": "b", "answers": ["y"]\n',
         ["line 2", "invalid JSON"]),
        ('{"question": "a", "answers": ["x"]}\n\n{"answers": ["y"]}\n',
         ["line 3", "missing field 'question'", "question, Question, query",
          "steps.load.question_fields={question: FIELD}"]),
        ('{"question": "a"}\n', ["line 1", "missing answers", "steps.load.require_answers=false"]),
        ('{"question": "a", "answers": ["", " "]}\n', ["line 1", "has no non-empty answer"]),
        ('{"question": 5, "answers": ["x"]}\n', ["line 1", "'question' must be a string, got int"]),
        ('{"question": " ", "answers": ["x"]}\n', ["line 1", "'question' is empty"]),
        ('{"question": "a", "answers": {"span": "x"}}\n',   # SQuAD's and TriviaQA's are read
         ["line 1", "'answers' is an object with keys span, not an answer shape the reader knows"]),
        ('{"question": "a", "answers": [null]}\n', ["line 1", "has no non-empty answer"]),
        ('{"question": "a", "answers": [true]}\n', ["line 1", "'answers' must be a string or a list"]),
        ('{"question": "a", "answers": ["x"], "ctxs": "nope"}\n', ["line 1", "'ctxs' must be a list"]),
        ('{"question": "a", "answers": ["x"], "ctxs": [{"title": "t"}]}\n',
         ["line 1 ctxs[0]", "passage has no text"]),
        ('{"question": "a", "answers": ["x"], "ctxs": [{"text": "t", "score": "hi"}]}\n',
         ["line 1 ctxs[0]", "'score' must be a number"]),
        ('{"question": "a", "qa_pairs": [{"long_answer": "x"}]}\n', ["line 1", "qa_pairs[0]"]),
        ('{"question": "a", "answers": ["x"], "id": [1]}\n', ["line 1", "question id must be"]),
        ('{"id": "1", "question": "a", "answers": ["x"]}\n{"id": "1", "question": "b", "answers": ["y"]}\n',
         ["line 2", "'1' repeats", "first on line 1"]),
        ('["question", "answers"]\n', ["line 1", "expected a JSON object"]),
        ('[{"question": "a", "answers": ["x"]},\n {"question": "b"}\n]', ["line 2", "missing answers"]),
        ('[{"question": "a", "answers": ["x"]}\n {"question": "b"}]', ["line 2", "expected ',' or ']'"]),
        ('[\n{"question": "a", "answers": ["x"]},\n{"question": \n}]', ["line 4", "invalid JSON"]),
        ("", ["line 1", "the file is empty"]),
        ("[]", ["line 1", "the file is empty"]),
    ]
    for i, (text, parts) in enumerate(cases):
        p = write(tmp_path / f"case{i}.jsonl", text)
        raises([f"case{i}.jsonl"] + parts, read_questions, p)


def test_normalize_question_direct():
    row = normalize_question({"question": "q", "answers": "a"}, where="x", default_id="7",
                             default_dataset="d")
    assert row == {"id": "7", "dataset": "d", "question": "q", "answers": ["a"], "gold": []}
    with pytest.raises(DataError, match="^rec 3: expected a JSON object"):
        normalize_question("q", where="rec 3")


def test_doctests():
    import doctest

    from stages.lib.data import questions

    assert doctest.testmod(questions).failed == 0


def test_asqa_long_answers_from_annotations_else_answer():
    rec = {"question": "q", "answer": "Ann did, in 1990.", "qa_pairs": [{"short_answers": ["Ann"]}]}
    assert normalize_question(rec, where="w")["long_answers"] == ["Ann did, in 1990."]
    rec["annotations"] = [{"long_answer": "A"}, {"long_answer": ""}, {"long_answer": "B"}]
    row = normalize_question(rec, where="w")
    assert row["long_answers"] == ["A", "B"] and row["answers"] == ["Ann"]


def test_rag_instruct_golds_and_answer_idx_are_read(tmp_path):
    """RAG-Instruct's evaluation files: its scorer reads ``golds``; MedQA / OpenBookQA carry the
    option's text in ``answer`` and its letter in ``answer_idx``, which is the gold."""
    p = jsonl(tmp_path / "eval.jsonl", [
        {"id": "w1", "question": "Who?", "golds": ["Ann", "Ann B."]},
        {"id": "m1", "question": "Which drug?", "answer": "aspirin", "answer_idx": "B",
         "options": {"A": "heparin", "B": "aspirin", "C": "warfarin"}},
        {"id": "m2", "question": "Which?", "answer_idx": "A"},
        {"id": "n1", "question": "Where?", "answers": ["Oslo"], "golds": ["Bergen"]},
    ])
    rows = {r["id"]: r for r in read_questions(p)}
    assert rows["w1"]["answers"] == ["Ann", "Ann B."]
    assert rows["m1"]["answers"] == ["B"]
    assert rows["m1"]["choices"] == ["heparin", "aspirin", "warfarin"]
    assert rows["m2"]["answers"] == ["A"]
    assert rows["n1"]["answers"] == ["Oslo"]        # the existing keys still come first


def test_options_by_letter_become_choices_and_a_gap_is_refused(tmp_path):
    p = jsonl(tmp_path / "openbookqa.jsonl", [
        {"question": "Q?", "answer_idx": "D",
         "options": {"D": "four", "B": "two", "A": "one", "C": "three"}}])
    assert read_questions(p)[0]["choices"] == ["one", "two", "three", "four"]
    bad = jsonl(tmp_path / "medqa.jsonl", [
        {"question": "Q?", "answer_idx": "A", "options": {"A": "one", "C": "three"}}])
    raises(["line 1", "'options'", "A, C"], read_questions, bad)


def test_set_inputs_kept_and_other_shapes_named_as_dropped(tmp_path, caplog):
    """ConvFinQA's instruction, context and previous questions and PubMedQA's context stay on
    the row; HotpotQA's list-shaped ``context`` does not, and the warning names it."""
    p = jsonl(tmp_path / "sets.jsonl", [
        {"id": "c1", "question": "And 2009?", "answers": ["12"], "instruction": "Use the table.",
         "context": "year | revenue", "previous_question": ["What in 2008? 10"]},
        {"id": "h1", "question": "Who?", "answers": ["Ann"], "context": [["T", ["s."]]]},
        {"id": "i1", "instruction": "Name the capital of Norway.", "answers": ["Oslo"]},
    ])
    rows = {r["id"]: r for r in read_questions(p)}
    assert {k: rows["c1"][k] for k in ("instruction", "context", "previous_question")} == {
        "instruction": "Use the table.", "context": "year | revenue",
        "previous_question": ["What in 2008? 10"]}
    assert "context" not in rows["h1"]
    assert rows["i1"]["question"] == "Name the capital of Norway."
    assert "instruction" not in rows["i1"]
    assert "context (in 1 of 3 records)" in caplog.text


def test_parquet_questions_read_as_their_json_lines(tmp_path):
    """Before: a question set saved as Parquet (a Hugging Face dataset's ``to_parquet``, the
    format the hub serves) failed at line 1 with "invalid JSON", and a folder of sets skipped it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = [
        {"id": "nq_1", "question": "who?", "answer": ["Ann", "Ann B."], "gold": None,
         "ctxs": [{"id": "3", "title": "T", "text": "t", "score": 1.5}]},
        {"id": "nq_2", "question": "when?", "answer": ["1871"], "gold": "p7",
         "ctxs": [{"id": "4", "title": "U", "text": "u", "score": 0.5}]},
    ]
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "nq.parquet", row_group_size=1)
    # the JSON lines have no "gold" where Parquet has a null
    as_json = jsonl(tmp_path / "nq.jsonl", [{k: v for k, v in r.items() if v is not None}
                                            for r in records])
    rows = read_questions(tmp_path / "nq.parquet")
    assert rows == read_questions(as_json)
    assert rows[0]["answers"] == ["Ann", "Ann B."] and rows[1]["gold"] == ["p7"]
    assert rows[1]["ctxs"] == [{"id": "4", "title": "U", "text": "u", "score": 0.5}]

    pq.write_table(pa.Table.from_pylist([{"question": "a", "answer": ["x"]},
                                         {"question": "b", "answer": None}]),
                   tmp_path / "bad.parquet")
    raises([f"{tmp_path / 'bad.parquet'} row 2: "], read_questions, tmp_path / "bad.parquet")
    pq.write_table(pa.table({"question": pa.array([], pa.string())}), tmp_path / "empty.parquet")
    raises([f"{tmp_path / 'empty.parquet'}: the Parquet file has no rows (expected questions)"],
           read_questions, tmp_path / "empty.parquet")
    write(tmp_path / "fake.parquet", '{"question": "a"}\n')
    raises([f"{tmp_path / 'fake.parquet'}: cannot read as Parquet ("],
           read_questions, tmp_path / "fake.parquet")


def test_kilt_records(tmp_path):
    """KILT (``nq-dev-kilt.jsonl``, ``fever-dev-kilt.jsonl``; BERGEN's kilt_* sets): the question
    is ``input`` and the answers the ``answer`` of each ``output`` entry; an entry with
    provenance only adds none. Before: "missing field 'question'"."""
    p = jsonl(tmp_path / "nq-dev-kilt.jsonl", [
        {"id": "-2020245128281318765", "input": "who sings does he love me with reba",
         "output": [{"answer": "Linda Davis",
                     "provenance": [{"wikipedia_id": "8484486", "title": "Does He Love You",
                                     "start_paragraph_id": 1, "end_paragraph_id": 1}]},
                    {"answer": "Linda Davis"},
                    {"provenance": [{"wikipedia_id": "8484486", "title": "Does He Love You"}]}],
         "meta": {}},
        {"id": "3", "input": "Nikolaj Coster-Waldau worked with the Fox Broadcasting Company.",
         "output": [{"answer": "SUPPORTS"}]}])
    rows = read_questions(p)
    assert [(r["id"], r["dataset"], r["question"][:9], r["answers"], r["gold"]) for r in rows] == [
        ("-2020245128281318765", "nq-dev-kilt", "who sings", ["Linda Davis"], []),
        ("3", "nq-dev-kilt", "Nikolaj C", ["SUPPORTS"], [])]


def test_a_file_is_one_set_whatever_prefixes_its_ids_have(tmp_path):
    """A file's set was its ids' prefix: ARC's real ids made sets mercury, mcas, ..., TriviaQA's
    tc / qb / sfq ..., WebQSP's webqtest. A prefix now names a set only when it is a known set's
    name, as in DynamicRAG's training file (``nq_…``, ``hotpotqa_…``)."""
    arc = jsonl(tmp_path / "arc_challenge.jsonl", [
        {"id": i, "question": "Which?", "answerKey": "A", "choices": ["x", "y"]}
        for i in ("Mercury_SC_41570", "MCAS_2009_5_651", "NYSEDREGENTS_2015_8_12")])
    tqa = jsonl(tmp_path / "triviaqa-dev.jsonl", [
        {"question_id": i, "question": f"Who {i}?", "answer": {"value": "A", "aliases": ["A"]}}
        for i in ("tc_0", "qb_1", "sfq_2", "odql_3")])
    webq = jsonl(tmp_path / "webqsp.jsonl", [{"id": "WebQTest-0", "question": "q", "answers": "a"}])
    dyn = jsonl(tmp_path / "rag_training_data.json", [
        {"id": i, "question": "q", "answer": "a"} for i in ("nq_1", "hotpotqa_2", "fever_3",
                                                            "2wikimultihopqa_4", "eli5-5")])
    assert {r["dataset"] for r in read_questions(arc)} == {"arc_challenge"}
    assert {r["dataset"] for r in read_questions(tqa)} == {"triviaqa-dev"}
    assert [r["dataset"] for r in read_questions(webq)] == ["webqsp"]
    assert [r["dataset"] for r in read_questions(dyn)] == ["nq", "hotpotqa", "fever",
                                                           "2wikimultihopqa", "eli5"]


def test_an_option_letter_is_the_gold_before_the_options_text(tmp_path):
    """A multiple-choice record with the option's text in ``answers`` and its letter in
    ``answerKey`` was scored against the text (``answers`` comes first in ANSWER_KEYS); only
    MedQA's ``answer_idx`` was taken first. With options, the letter key now wins; without,
    the keys' order stands."""
    p = jsonl(tmp_path / "arc.jsonl", [
        {"id": "a1", "question": "Who?", "choices": ["Ann", "Bo"], "answerKey": "B",
         "answers": ["Bo"]},
        {"id": "a2", "question": "Who?", "options": {"A": "Ann", "B": "Bo"}, "answer_idx": "A",
         "answers": "Ann"},
        {"id": "a3", "question": "Who?", "choices": ["Ann", "Bo"], "answerKey": "",
         "answers": ["Bo"]},             # an empty letter: the text, an option's: its letter
        {"id": "a4", "question": "Who?", "answerKey": "B", "answers": ["Bo"]}])
    assert [r["answers"] for r in read_questions(p)] == [["B"], ["A"], ["B"], ["Bo"]]


def test_arc_numbered_labels_become_the_letters_the_prompts_show(tmp_path):
    """Some ARC items label their options "1".."4" (the seed's arc.py remaps them); the gold
    stayed "2" while every prompt and scorer shows the options as A-D, so the right answer
    could never score. A key that is none of the labels is refused, naming the record."""
    p = jsonl(tmp_path / "arc_challenge.jsonl", [
        {"id": "n1", "question": "Which?", "answerKey": "2",
         "choices": {"text": ["wood", "iron"], "label": ["1", "2"]}},
        {"id": "n2", "question": "Which?", "answerKey": "A",
         "choices": {"text": ["wood", "iron"], "label": ["A", "B"]}}])
    assert [r["answers"] for r in read_questions(p)] == [["B"], ["A"]]
    bad = jsonl(tmp_path / "bad.jsonl", [{"id": "n3", "question": "Which?", "answerKey": "3",
                                          "choices": {"text": ["a", "b"], "label": ["1", "2"]}}])
    with pytest.raises(DataError) as e:
        list(read_questions(bad))
    assert "line 1" in e.value.message and ("'answerKey' is '3', which is none of the options' "
                                            "labels (1, 2); fix the record") in e.value.message


def test_letter_golds_of_unlabelled_options_are_checked(tmp_path):
    """Options as a list or as {A: text, ...}: the letter gold passed unchecked, so "b", an
    index (0- or 1-based?) or a letter past the options made a gold no answer could match. A
    letter is upper-cased now; a number or a letter past the options is refused, naming the
    record; ARC's labels still name their options."""
    p = jsonl(tmp_path / "obqa.jsonl", [
        {"id": "l1", "question": "Which?", "options": ["wood", "iron"], "answerKey": "b"},
        {"id": "l2", "question": "Which?", "options": {"A": "wood", "B": "iron"},
         "answer_idx": " a "},
        {"id": "l3", "question": "Which?", "answerKey": "2",
         "choices": {"text": ["wood", "iron"], "label": ["1", "2"]}}])
    assert [r["answers"] for r in read_questions(p)] == [["B"], ["A"], ["B"]]
    cases = [
        ({"options": {"A": "wood", "B": "iron"}, "answer_idx": 1},
         ["'answer_idx' is '1', a number, not an option's letter",
          "write the right option's letter (A to B) in 'answer_idx'"]),
        ({"choices": ["wood", "iron", "salt"], "answerKey": "0"},
         ["'answerKey' is '0', a number", "(A to C)"]),
        ({"options": ["wood", "iron"], "answerKey": "F"},
         ["'answerKey' is 'F', not the letter of one of the 2 options in 'options' (A to B)",
          "write the right option's letter in 'answerKey', or fix the options"]),
        ({"choices": ["wood", "iron"], "answerKey": "iron"}, ["'answerKey' is 'iron'"]),
    ]
    for i, (fields, parts) in enumerate(cases):
        bad = jsonl(tmp_path / f"bad{i}.jsonl", [{"id": "ok", "question": "Q?", "answers": "x"},
                                                 {"id": "b", "question": "Which?", **fields}])
        raises([f"bad{i}.jsonl line 2: "] + parts, read_questions, bad)


def test_a_text_gold_that_is_an_option_becomes_its_letter(tmp_path):
    """A record with options and its gold as the option's text (no letter key) kept the text,
    so a scorer that reads the option letter could never count it right. A gold that is an
    option's text (after strip, in any case) is now that option's letter; one that is no
    option's text stays as it is, as does a record without options."""
    p = jsonl(tmp_path / "mc.jsonl", [
        {"id": "t1", "question": "Which?", "choices": ["wood", "iron", "salt"],
         "answers": ["iron"]},
        {"id": "t2", "question": "Which?", "options": {"A": "Wood", "B": "Iron"},
         "answer": " wood ", "golds": ["B"]},
        {"id": "t3", "question": "Which?", "choices": ["wood", "iron"], "answers": ["steel"]},
        {"id": "t4", "question": "Which?", "answers": ["iron"]},
        {"id": "t5", "question": "Which?", "choices": ["wood", "iron"],
         "answers": ["Fe", "iron"]}])
    assert [r["answers"] for r in read_questions(p)] == [["B"], ["A"], ["steel"], ["iron"],
                                                        ["B"]]


def test_popqa_possible_answers_a_json_string_is_its_list(tmp_path, caplog):
    """PopQA's Hugging Face release writes ``possible_answers`` as a JSON list in a string: the
    file was refused (missing answers), and mapping the field as the message advised gave one
    gold with the brackets, which no answer matches. The string is now read as its list, and
    ``possible_answers`` is an answers field (after the others, which still win)."""
    rec = {"id": 4222362, "question": "What is George Rankin's occupation?",
           "possible_answers": '["politician", "political leader"]', "obj": "politician"}
    p = jsonl(tmp_path / "popqa.jsonl", [rec])
    want = ["politician", "political leader"]
    assert read_questions(p)[0]["answers"] == want
    assert "dropped: obj (in 1 of 1 records);" in caplog.text      # possible_answers is read
    assert read_questions(p, fields={"answers": "possible_answers"})[0]["answers"] == want
    q = jsonl(tmp_path / "popqa_longtail.jsonl", [
        {**rec, "id": "1", "answers": ["politician"]},             # another key still wins
        {"id": "2", "question": "Q?", "answers": "['a', 'b']"},    # pandas' list, too
        {"id": "3", "question": "Q?", "answers": "[citation needed]"},
        {"id": "4", "question": "Q?", "answers": "[1, 2]"}])       # not strings: the text
    assert [r["answers"] for r in read_questions(q)] == [
        ["politician"], ["a", "b"], ["[citation needed]"], ["[1, 2]"]]


def test_a_json_array_without_ids_numbers_its_elements(tmp_path):
    """A one-line JSON array without ids failed with "question id '1' repeats": an element
    without an id was numbered by the line it starts on. It is numbered by its index now, in a
    pretty-printed array too; JSON lines keep their line numbers, and errors still name the
    line, and in an array its element too."""
    recs = [{"question": q, "answers": ["x"]} for q in ("a", "b", "c")]
    compact = write(tmp_path / "compact.json", json.dumps(recs))
    pretty = write(tmp_path / "pretty.json", json.dumps(recs, indent=1))
    lines = write(tmp_path / "lines.jsonl",
                  "\n".join(json.dumps(r) for r in recs[:2]) + "\n\n" + json.dumps(recs[2]))
    assert [r["id"] for r in read_questions(compact)] == ["1", "2", "3"]
    assert [r["id"] for r in read_questions(pretty)] == ["1", "2", "3"]
    assert [r["id"] for r in read_questions(lines)] == ["1", "2", "4"]
    twice = write(tmp_path / "twice.json",
                  json.dumps([{"id": "q", **recs[0]}, {"id": "q", **recs[1]}]))
    assert raises(["repeats"], read_questions, twice) == (
        f"{twice} line 1, element 2: question id 'q' repeats (first on line 1, element 1); "
        "expected unique ids; de-duplicate the file")
    bad = write(tmp_path / "bad.json", '[{"question": "a", "answers": ["x"]}, {"question": "b"}]')
    raises([f"{bad} line 1, element 2: missing answers"], read_questions, bad)
