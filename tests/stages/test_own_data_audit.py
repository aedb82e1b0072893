"""Own data in the documented shapes and their near misses: each file is either loaded right (the
rows are checked) or refused with one line naming the file, the line and what to do.

One test per behaviour fixed in the audit of ``load`` with a researcher's own files.
"""

from __future__ import annotations

import json
import logging

import pytest

from orchestrator.api import ConfigError, DataError, File
from orchestrator.artifacts import Ref
from stages.common.load import LoadConfig, load_data
from stages.lib.data.corpus import read_corpus
from stages.lib.data.question_sets import read_question_sets
from stages.lib.data.questions import read_questions
from stages.schemas import Questions

PASSAGES = [{"id": f"p{i}", "title": f"Title {i}", "text": f"Passage {i} says the answer is A{i}."}
            for i in range(3)]
QUESTIONS = [{"id": f"t{i}", "question": f"What is {i}?", "answers": [f"A{i}"]} for i in range(3)]


def file(path):
    return File(Ref("file", File.type_name(), "hash", [str(path)]))


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path, records):
    return write(path, "".join(json.dumps(r) + "\n" for r in records))


def tsv(path, header, rows):
    lines = ([header] if header else []) + ["\t".join(row) for row in rows]
    return write(path, "".join(line + "\n" for line in lines))


def refused(fn, *args, **kwargs) -> str:
    """The one-line message of the DataError ``fn`` raises."""
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    assert "\n" not in info.value.message, info.value.message
    return info.value.message


def test_jsonl_with_trailing_commas_says_so(tmp_path):
    p = write(tmp_path / "train.jsonl", "".join(json.dumps(q) + ",\n" for q in QUESTIONS))
    msg = refused(read_questions, p)
    assert msg.startswith(f"{p} line 1: a ',' follows the JSON object")
    assert "remove the trailing commas" in msg


def test_json_array_with_a_trailing_comma_names_its_line(tmp_path):
    p = write(tmp_path / "train.json",
              "[\n" + ",\n".join(json.dumps(q) for q in QUESTIONS) + ",\n]\n")
    msg = refused(read_questions, p)
    assert msg.startswith(f"{p} line 4: a ',' after the last record of the array")


def test_tsv_header_with_another_id_name_is_a_header(tmp_path):
    p = tsv(tmp_path / "corpus.tsv", "docid\ttitle\ttext",
            [(r["id"], r["title"], r["text"]) for r in PASSAGES])
    assert read_corpus(p) == PASSAGES   # before: a passage 'docid' with text 'title'
    dup = tsv(tmp_path / "dup.tsv", "_id\ttext", [("a", "x"), ("a", "y")])
    assert refused(read_corpus, dup).startswith(f"{dup} line 3: passage id 'a' repeats "
                                                "(first on line 2)")


def test_tsv_field_with_an_unclosed_quote_is_refused_not_merged(tmp_path):
    p = tsv(tmp_path / "corpus.tsv", "id\ttext\ttitle",
            [("p0", '"Hi, he said. Text zero', "T0"), ("p1", "Text one", "T1"),
             ("p2", 'Text "two" here', "T2"), ("p3", "Text three", "T3")])
    msg = refused(read_corpus, p)   # before: 2 passages, p1 and p2 inside p0's text
    assert msg.startswith(f"{p} line 2: the text of passage 'p0' runs over the next lines")
    assert "never closed" in msg
    ok = tsv(tmp_path / "ok.tsv", "id\ttext\ttitle", [("p0", '"Quoted ""whole"" text"', "T0")])
    assert read_corpus(ok) == [{"id": "p0", "title": "T0", "text": 'Quoted "whole" text'}]


def test_headerless_tsv_with_title_before_text_is_refused(tmp_path):
    p = tsv(tmp_path / "corpus.tsv", None, [(r["id"], r["title"], r["text"]) for r in PASSAGES])
    msg = refused(read_corpus, p)   # before: titles read as texts and texts as titles
    assert msg.startswith(f"{p} line 1: no header, so the columns are read as DPR's id, text, title")
    assert "add a header line" in msg
    dpr = tsv(tmp_path / "dpr.tsv", None, [(r["id"], r["text"], r["title"]) for r in PASSAGES])
    assert read_corpus(dpr) == PASSAGES


def test_tsv_row_error_stays_one_line(tmp_path):
    p = write(tmp_path / "corpus.tsv", 'id\ttext\ttitle\np0\t"Hi he said\tT0\np1\tText\tT1\n')
    msg = refused(read_corpus, p)   # before: the row's snippet broke the message over two lines
    assert msg.startswith(f"{p} line 2: expected 3 tab-separated columns")
    assert "\\n" in msg


def test_csv_corpus_is_refused_with_what_to_convert_to(tmp_path):
    p = write(tmp_path / "corpus.csv", "id,title,text\np0,Title 0,Passage zero.\n")
    msg = refused(read_corpus, p)
    assert msg == (f"{p}: comma-separated corpora are not read; convert it to a TSV "
                   "(tab-separated, a header line id, text, title) or to JSON lines "
                   "{id, title, text}")


@pytest.mark.parametrize("key", ["question_id", "query_id", "example_id"])
def test_common_question_id_fields_are_the_ids(tmp_path, key):
    p = jsonl(tmp_path / "train.jsonl",
              [{key: q["id"], "question": q["question"], "answers": q["answers"]} for q in QUESTIONS])
    assert [r["id"] for r in read_questions(p)] == ["t0", "t1", "t2"]   # before: "1", "2", "3"


def test_tevatron_positive_passages_are_gold(tmp_path):
    p = jsonl(tmp_path / "tevatron.jsonl", [{
        "query_id": "t0", "query": "What is 0?", "answers": ["A0"],
        "positive_passages": [{"docid": "p0", "title": "Title 0", "text": "..."}],
        "negative_passages": [{"docid": "p1", "title": "Title 1", "text": "..."}]}])
    assert read_questions(p) == [{"id": "t0", "dataset": "tevatron", "question": "What is 0?",
                                  "answers": ["A0"], "gold": ["p0"]}]


def test_fields_the_reader_does_not_take_are_named(tmp_path, caplog):
    p = jsonl(tmp_path / "train.jsonl", [{**q, "gold_ids": ["p0"]} for q in QUESTIONS])
    with caplog.at_level(logging.WARNING, logger="stages.lib.data.questions"):
        rows = read_questions(p)
    assert all(r["gold"] == [] for r in rows)
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.getMessage().startswith(
        f"{p}: field(s) not read, dropped: gold_ids (in 3 of 3 records); if one holds the ids, "
        "answers or gold passage ids, rename it")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="stages.lib.data.questions"):
        read_questions(jsonl(tmp_path / "plain.jsonl", QUESTIONS))
    assert not caplog.records


def test_squad_and_triviaqa_answer_objects_are_read(tmp_path):
    p = jsonl(tmp_path / "squad.jsonl", [
        {"id": "s1", "question": "Who won?",     # HF squad: the text list, in order, once each
         "answers": {"text": ["Denver Broncos", "Denver", "Denver Broncos"],
                     "answer_start": [177, 177, 177]}},
        {"id": "s2", "question": "Where?",       # the original SQuAD JSON: one object per answer
         "answers": [{"text": "Santa Clara", "answer_start": 403},
                     {"text": "Levi's Stadium", "answer_start": 355}]}])
    assert [r["answers"] for r in read_questions(p)] == [["Denver Broncos", "Denver"],
                                                         ["Santa Clara", "Levi's Stadium"]]
    p = jsonl(tmp_path / "triviaqa.jsonl", [   # HF trivia_qa: value, then aliases; normalized_* not
        {"question_id": "tc_1", "question": "Which city?",
         "answer": {"aliases": ["Paris", "City of Light", "Paris, France"],
                    "normalized_aliases": ["paris", "city of light", "paris france"],
                    "matched_wiki_entity_name": "", "normalized_matched_wiki_entity_name": "",
                    "normalized_value": "paris", "type": "WikipediaEntity", "value": "Paris"}}])
    assert read_questions(p) == [{"id": "tc_1", "dataset": "triviaqa", "question": "Which city?",
                                  "answers": ["Paris", "City of Light", "Paris, France"],
                                  "gold": []}]


def test_answers_given_as_an_unknown_object_name_its_keys_and_the_shapes_read(tmp_path):
    p = jsonl(tmp_path / "nq.jsonl", [{"id": "n1", "question": "Who won?",
                                      "answers": {"span": "Denver", "start_token": 3}}])
    msg = refused(read_questions, p)
    assert msg == (f"{p} line 1: 'answers' is an object with keys span, start_token, not an "
                   "answer shape the reader knows (it reads strings, lists of strings, SQuAD's "
                   "{text: [...], answer_start: [...]}, TriviaQA's {value, aliases, "
                   "normalized_aliases, ...} and KILT's {answer, provenance}); write the answer "
                   "texts as a list of strings")
    # a SQuAD key next to one it does not have is not SQuAD's shape
    p = jsonl(tmp_path / "mixed.jsonl", [{"id": "m1", "question": "Who?",
                                         "answer": {"text": ["A"], "value": "A"}}])
    assert refused(read_questions, p).startswith(
        f"{p} line 1: 'answer' is an object with keys text, value, not an answer shape")


def test_missing_question_names_the_fields_the_record_has(tmp_path):
    p = jsonl(tmp_path / "own.jsonl", [{"id": "k1", "prompt": "Who?", "output": ["x"]}])
    msg = refused(read_questions, p)
    assert msg.startswith(f"{p} line 1: missing field 'question'")
    assert "the record has id, prompt, output" in msg


def test_folder_of_sets_names_what_it_skips(tmp_path, caplog):
    folder = tmp_path / "eval_data"
    folder.mkdir()
    jsonl(folder / "nq.jsonl", QUESTIONS[:2])
    jsonl(folder / "tqa.txt", QUESTIONS[2:])
    write(folder / ".hidden.jsonl", "{}\n")
    with caplog.at_level(logging.WARNING, logger="stages.lib.data.question_sets"):
        rows = read_question_sets(folder)
    assert [r["id"] for r in rows] == ["nq/t0", "nq/t1"]
    assert [r.getMessage() for r in caplog.records] == [
        f"{folder}: skipped tqa.txt (not question files: one JSON, CSV or TSV file "
        "(.jsonl/.json/.ndjson/.csv/.tsv, optionally .gz), Parquet file (.parquet/.pq) or saved "
        "dataset folder (save_to_disk) per evaluation set)"]
    nested = tmp_path / "nested"     # sets one folder down, not a dataset's splits
    (nested / "sets").mkdir(parents=True)
    jsonl(nested / "sets" / "nq.jsonl", QUESTIONS)
    msg = refused(read_question_sets, nested)
    assert msg.startswith(f"{nested}: the folder has no question files (it holds: sets/)")


def test_corpus_folder_hint_says_to_point_at_one_file(env, tmp_path):
    _, written, ctx = env
    parts = tmp_path / "corpus"
    parts.mkdir()
    jsonl(parts / "part1.jsonl", PASSAGES)
    train = jsonl(tmp_path / "train.jsonl", QUESTIONS)

    def file(path):
        return File(Ref("file", File.type_name(), "hash", [str(path)]))

    with pytest.raises(ConfigError) as info:
        load_data(LoadConfig(), ctx("load"), corpus=file(parts), train=file(train))
    assert info.value.hint.startswith("point the corpus at one file")
    out = load_data(LoadConfig(), ctx("load"), corpus=file(parts / "part1.jsonl"),
                    train=file(train))
    assert [r["id"] for r in written(Questions, out.train)] == ["t0", "t1", "t2"]


def test_a_folder_of_one_datasets_splits_is_one_set_read_from_one_split(tmp_path, caplog):
    """FlashRAG's nq/{train,dev,test}.jsonl (and the Hub's validation-00000-of-00001.parquet)
    are splits of one dataset: read as sets they put the training questions into the
    evaluation, and its average. Before session 28: three sets, train, dev and test; then a
    refusal naming the split files. Now the evaluation split is read (test, else validation,
    dev, ...), or the one asked for, and the log names it."""
    flashrag = tmp_path / "nq"
    flashrag.mkdir()
    for split in ("train", "dev", "test"):
        jsonl(flashrag / f"{split}.jsonl", [{"id": f"{split}_0", "question": "q",
                                             "golden_answers": ["a"]}])
    with caplog.at_level(logging.INFO, logger="stages.lib.data.question_sets"):
        rows = read_question_sets(flashrag)
    assert [(r["id"], r["dataset"]) for r in rows] == [("nq/test_0", "nq")]
    assert f"{flashrag}: reading the test split (the folder also holds dev, train)" in caplog.text
    rows = read_question_sets(flashrag, splits=["train"])
    assert [(r["id"], r["dataset"]) for r in rows] == [("nq/train_0", "nq")]
    hub = tmp_path / "nq_open"
    hub.mkdir()
    for split in ("train", "validation"):
        jsonl(hub / f"{split}-00000-of-00001.jsonl", QUESTIONS[:1])
    rows = read_question_sets(hub)
    assert [(r["id"], r["dataset"]) for r in rows] == [("nq_open/t0", "nq_open")]
    assert refused(read_question_sets, hub, splits=["test"]) == (
        f"{hub}: no test split (the dataset's splits: train, validation); name the split to "
        "read with the load step's eval_split or train_split, or leave the dataset out of the "
        "input folder, or point the input at one split's file")
    (flashrag / "train.jsonl").unlink()
    (flashrag / "dev.jsonl").unlink()
    rows = read_question_sets(flashrag)      # one split: the set is named after its folder
    assert [(r["id"], r["dataset"]) for r in rows] == [("nq/test_0", "nq")]


def test_flashrag_root_folder_is_a_folder_of_sets(env, tmp_path, caplog):
    """FlashRAG's datasets folder holds one folder of splits per dataset (and the corpus in its
    own folder): each dataset is a set, read from its test split where it has one, else its
    dev split (HotpotQA ships none with answers); training reads each train split;
    ``eval_split`` forces one. Before: "the folder has no question files (it holds: hotpotqa/,
    nq/, retrieval-corpus/)"."""
    _, written, ctx = env
    root = tmp_path / "FlashRAG_datasets"
    splits = {"nq": ("train", "dev", "test"), "hotpotqa": ("train", "dev"), "popqa": ("test",)}
    for name, held in splits.items():
        (root / name).mkdir(parents=True)
        for split in held:
            jsonl(root / name / f"{split}.jsonl", [
                {"id": f"{split}_{i}", "question": f"{name} {split} {i}?",
                 "golden_answers": ["a"], "metadata": {}} for i in range(2)])
    (root / "retrieval-corpus").mkdir()
    corpus = file(jsonl(root / "retrieval-corpus" / "wiki18_100w.jsonl",
                        [{"id": "1", "contents": "Title\nText"}]))

    with caplog.at_level(logging.WARNING, logger="stages.lib.data"):
        out = load_data(LoadConfig(max_eval=1), ctx("load"), corpus=corpus, eval=file(root))
    assert [(r["id"], r["dataset"]) for r in written(Questions, out.eval)] == [
        ("hotpotqa/dev_0", "hotpotqa"), ("nq/test_0", "nq"), ("popqa/test_0", "popqa")]
    # FlashRAG's metadata field is named once for the folder, not once per set
    (dropped,) = [r.getMessage() for r in caplog.records if "not read" in r.getMessage()]
    assert dropped.startswith(f"{root} (sets hotpotqa, nq, popqa): field(s) not read, dropped: "
                              "metadata (in 3 of 3 records)")
    dev = load_data(LoadConfig(eval_split="dev"), ctx("load"), corpus=corpus,
                    eval=file(root / "nq"))
    assert [r["id"] for r in written(Questions, dev.eval)] == ["nq/dev_0", "nq/dev_1"]
    (root / "popqa" / "train.jsonl").write_text((root / "popqa" / "test.jsonl").read_text())
    out = load_data(LoadConfig(), ctx("load"), corpus=corpus, train=file(root))
    assert [r["id"] for r in written(Questions, out.train)] == [
        f"{name}/test_{i}" if name == "popqa" else f"{name}/train_{i}"
        for name in ("hotpotqa", "nq", "popqa") for i in range(2)]
    (root / "popqa" / "train.jsonl").unlink()
    with pytest.raises(DataError) as info:
        load_data(LoadConfig(), ctx("load"), corpus=corpus, train=file(root))
    assert info.value.message == (
        f"{root / 'popqa'}: no train split (the dataset's splits: test); name the split to read "
        "with the load step's eval_split or train_split, or leave the dataset out of the input "
        "folder, or point the input at one split's file")
