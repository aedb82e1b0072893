"""``load_data`` called directly.

Inputs are real handles (files, tables written by the orchestrator's writer) and every output is
written back through it, so a row that does not fit the declared schema fails here.
"""

from __future__ import annotations

import json

import pytest

from orchestrator.api import ConfigError, DataError, File
from orchestrator.artifacts import Ref
from stages.common.load import LoadConfig, load_data
from stages.lib.data.synth import make_synthkb, write_synthkb
from stages.schemas import Passages, Questions


def file(path):
    return File(Ref("file", File.type_name(), "hash", [str(path)]))


def test_load_synthetic_by_default(env):
    _, written, ctx = env
    cfg = LoadConfig(seed=1, num_entities=8, passages_per_entity=2, num_train=10, num_eval=4)
    out = load_data(cfg, ctx("load"))
    corpus, train, evals = (written(Passages, out.corpus), written(Questions, out.train),
                            written(Questions, out.eval))
    kb = make_synthkb(1, 8, 2, 10, 4)
    assert corpus == kb.passages and train == kb.train and evals == kb.eval


def test_load_files_with_qrels_and_limits(env, tmp_path):
    _, written, ctx = env
    paths = write_synthkb(tmp_path / "kb", make_synthkb(0, 8, 2, 10, 4), corpus_format="flashrag")
    qrels = tmp_path / "qrels.tsv"
    first_train = json.loads(paths["train"].read_text().splitlines()[0])
    qrels.write_text(f"query-id\tcorpus-id\tscore\n{first_train['id']}\tkb00003\t1\n")
    cfg = LoadConfig(max_passages=10, max_train=3)
    out = load_data(cfg, ctx("load"), corpus=file(paths["corpus"]), train=file(paths["train"]),
                    eval=file(paths["eval"]), qrels=file(qrels))
    corpus, train = written(Passages, out.corpus), written(Questions, out.train)
    assert len(corpus) == 10 and len(train) == 3 and len(written(Questions, out.eval)) == 4
    assert "kb00003" in train[0]["gold"] and train[0]["gold"][0] == first_train["gold"][0]


def test_load_keeps_retrieved_ctxs_and_empty_split(env, tmp_path):
    _, written, ctx = env
    corpus = tmp_path / "psgs_w100.tsv"
    corpus.write_text("id\ttext\ttitle\n1\tParis is the capital.\tParis\n")
    evals = tmp_path / "nq_eval.jsonl"
    evals.write_text(json.dumps({"id": "nq_1", "question": "capital?", "answers": ["Paris"],
                                 "ctxs": [{"id": "1", "title": "Paris", "text": "t", "score": 3}]}) + "\n")
    out = load_data(LoadConfig(), ctx("load"), corpus=file(corpus), eval=file(evals))
    rows = written(Questions, out.eval)
    assert rows[0]["dataset"] == "nq" and rows[0]["ctxs"][0]["score"] == 3.0
    assert written(Questions, out.train) == []


def test_load_refuses_to_mix_files_with_generated_data(env, tmp_path):
    _, _, ctx = env
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "1", "text": "x"}\n')
    with pytest.raises(ConfigError, match="questions must come with their corpus"):
        load_data(LoadConfig(), ctx("load"), corpus=file(corpus))
    with pytest.raises(ConfigError, match="qrels wired without a corpus or questions"):
        load_data(LoadConfig(), ctx("load"), qrels=file(corpus))
    with pytest.raises(ConfigError, match="raise num_entities"):
        load_data(LoadConfig(num_entities=2, num_train=10), ctx("load"))
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"question": "q"}\n')
    with pytest.raises(DataError, match="train.jsonl line 1: missing answers"):
        load_data(LoadConfig(), ctx("load"), corpus=file(corpus), train=file(bad))


def test_load_a_folder_of_evaluation_sets_in_the_seeds_formats(env, tmp_path):
    """The paper's layout: eval_data/ with one JSONL per set (NQ with ctxs, FEVER, ELI5, ALCE
    ASQA with qa_pairs, docs and a long-form answer), and the 150k training file's shape."""
    _, written, ctx = env
    corpus = tmp_path / "psgs.jsonl"
    corpus.write_text(json.dumps({"id": "1", "title": "Hamlet", "text": "A play."}) + "\n")
    folder = tmp_path / "eval_data"
    folder.mkdir()
    sets = {
        "nq": {"question": "who wrote hamlet", "answers": ["Shakespeare"],
               "ctxs": [{"id": "9", "title": "Hamlet", "text": "By Shakespeare."}]},
        "fever": {"question": "Paris is in Italy.", "answers": ["REFUTES"]},
        "eli5": {"question": "why is the sky blue", "answers": ["Scattering."]},
        "asqa": {"question": "Who was the first president?", "answer": "A long paragraph.",
                 "qa_pairs": [{"short_answers": ["George Washington"]}],
                 "docs": [{"title": "GW", "text": "George Washington ..."}]}}
    for name, record in sets.items():
        (folder / f"{name}.jsonl").write_text(json.dumps(record) + "\n")
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"id": "nq_1", "question": "Q: who wrote hamlet?",
                                 "retrieved_question": "who wrote hamlet",
                                 "answer": ["Shakespeare"]}) + "\n")
    out = load_data(LoadConfig(), ctx("load"), corpus=file(corpus), train=file(train),
                    eval=file(folder))
    evals = {r["id"]: r for r in written(Questions, out.eval)}
    assert sorted(evals) == ["asqa/1", "eli5/1", "fever/1", "nq/1"]
    assert {r["dataset"] for r in evals.values()} == {"asqa", "eli5", "fever", "nq"}
    assert evals["asqa/1"]["answers"] == ["George Washington"]
    assert [c["title"] for c in evals["asqa/1"]["ctxs"]] == ["GW"]
    # fever ships no ctxs: null (retrieve searches for it), not [] (shipped with none)
    assert [c["id"] for c in evals["nq/1"]["ctxs"]] == ["9"] and evals["fever/1"]["ctxs"] is None
    # ASQA's references reach the table (ALCE's str-em / ROUGE-Lsum read them downstream)
    assert evals["asqa/1"]["qa_pairs"] == [["George Washington"]]
    assert evals["asqa/1"]["long_answers"] == ["A long paragraph."]
    (row,) = written(Questions, out.train)
    assert row["retrieved_question"] == "who wrote hamlet"


def test_questions_that_ship_their_passages_need_no_corpus(env, tmp_path):
    """Every question carries ctxs (DynamicRAG's released files): no corpus is read, the corpus
    output is empty; one question without passages is a one-line error naming it."""
    _, written, ctx = env
    shipped = {"answers": ["Paris"], "ctxs": [{"id": "7", "title": "Paris", "text": "capital"}]}
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"id": f"t{i}", "question": "capital?", **shipped}) + "\n"
                             for i in range(3)))
    evals = tmp_path / "eval_data"
    evals.mkdir()
    (evals / "nq.jsonl").write_text(json.dumps({"id": "e1", "question": "capital?", **shipped}) + "\n")
    out = load_data(LoadConfig(), ctx("load"), train=file(train), eval=file(evals))
    assert written(Passages, out.corpus) == []
    assert [r["ctxs"][0]["id"] for r in written(Questions, out.train)] == ["7"] * 3
    assert written(Questions, out.eval)[0]["dataset"] == "nq"
    (evals / "tqa.jsonl").write_text(json.dumps({"id": "e2", "question": "q", "answers": ["a"]}) + "\n")
    with pytest.raises(DataError, match=r"^step 'load': 1 of 2 eval questions ship no passages "
                                        r"\(first: 'tqa/e2'\) and no corpus is wired"):
        load_data(LoadConfig(), ctx("load"), train=file(train), eval=file(evals))


def test_arc_answer_keys_and_choices_load(env, tmp_path):
    """Self-RAG's ARC-Challenge file: the gold is ``answerKey`` (a letter) and the options are
    ``choices: {text, label}``; both reach the table (the task instruction lists the options)."""
    _, written, ctx = env
    folder = tmp_path / "eval_data"
    folder.mkdir()
    (folder / "arc_challenge_processed.jsonl").write_text(json.dumps(
        {"id": "Mercury_1", "question": "Which is warmer?", "answerKey": "B",
         "choices": {"text": ["ice", "fire"], "label": ["A", "B"]},
         "ctxs": [{"id": "1", "title": "Fire", "text": "Fire is hot."}]}) + "\n")
    out = load_data(LoadConfig(), ctx("load"), eval=file(folder))
    (row,) = written(Questions, out.eval)
    assert row["answers"] == ["B"] and row["choices"] == ["ice", "fire"]


def test_a_sets_own_inputs_reach_the_table(env, tmp_path):
    """RAG-Instruct's evaluation files: PubMedQA's abstract (``context``), ConvFinQA's
    ``instruction`` / ``context`` / ``previous_question`` and OpenBookQA's ``options`` reach the
    eval table (``rag_instruct.eval_inputs`` builds the original's prompts from them); the
    table used to keep a fixed set of columns and dropped them."""
    _, written, ctx = env
    folder = tmp_path / "eval_data"
    folder.mkdir()
    ctxs = [{"id": "1", "title": "T", "text": "x"}]
    (folder / "pubmedqa.jsonl").write_text(json.dumps(
        {"id": "p1", "question": "Does it?", "answers": ["yes"], "context": "An abstract.",
         "ctxs": ctxs}) + "\n")
    (folder / "convfinqa.jsonl").write_text(json.dumps(
        {"id": "c1", "question": "And then?", "answers": ["3"], "context": "a table",
         "instruction": "Compute.", "previous_question": ["Q1? A1"], "ctxs": ctxs}) + "\n")
    (folder / "openbookqa.jsonl").write_text(json.dumps(
        {"id": "o1", "question": "Which?", "answer_idx": "B", "options": {"A": "ice", "B": "fire"},
         "ctxs": ctxs}) + "\n")
    out = load_data(LoadConfig(), ctx("load"), eval=file(folder))
    rows = {r["dataset"]: r for r in written(Questions, out.eval)}
    assert rows["pubmedqa"]["context"] == "An abstract."
    assert (rows["convfinqa"]["instruction"], rows["convfinqa"]["previous_question"]) == (
        "Compute.", ["Q1? A1"])
    assert rows["openbookqa"]["choices"] == ["ice", "fire"]
    assert rows["openbookqa"]["answers"] == ["B"]


def test_a_required_set_without_a_file_names_its_data_key_before_the_corpus_is_read(env, tmp_path):
    """Self-RAG with data.eval_questions left null used to warn here and fail a step later with
    "input 'questions' is empty" naming no data key."""
    _, _, ctx = env
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "1", "text": "x"\n')     # never read: the refusal comes first
    train = tmp_path / "train.jsonl"
    train.write_text('{"id": "q1", "question": "q", "answers": ["a"]}\n')
    with pytest.raises(ConfigError) as info:
        load_data(LoadConfig(required=["train", "eval"]), ctx("load"), corpus=file(corpus),
                  train=file(train))
    msg = info.value.message
    assert "\n" not in msg
    assert msg.startswith("step 'load': no eval questions: data.eval_questions is null")
    assert "steps.load.required: [train, eval]" in msg
    assert "set data.eval_questions=PATH" in msg


def test_a_set_the_recipe_does_not_read_is_no_warning(env, tmp_path, caplog):
    """Reinforced-IR on a BEIR folder wires no train questions (it synthesises its own): that
    is a log line, not a warning; a recipe that does not say what it reads keeps the warning."""
    import logging

    caplog.set_level(logging.INFO)
    _, written, ctx = env
    beir = tmp_path / "scifact"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text('{"_id": "d1", "title": "T", "text": "x"}\n')
    (beir / "queries.jsonl").write_text('{"_id": "q1", "text": "what?"}\n')
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    out = load_data(LoadConfig(require_answers=False, required=["eval"]), ctx("load"),
                    corpus=file(beir))
    assert len(written(Questions, out.eval)) == 1 and written(Questions, out.train) == []
    train_lines = [r for r in caplog.records if r.getMessage().startswith("train:")]
    assert [r.levelname for r in train_lines] == ["INFO"]
    assert "the recipe reads none (required: [eval])" in train_lines[0].getMessage()
    caplog.clear()
    load_data(LoadConfig(require_answers=False), ctx("load"), corpus=file(beir))
    assert [r.levelname for r in caplog.records if r.getMessage().startswith("train:")] == ["WARNING"]


def test_autorag_parquet_files_load_as_they_are(env, tmp_path):
    """AutoRAG's ``corpus.parquet`` (doc_id, contents, metadata) and ``qa.parquet`` (qid a uuid4,
    query, retrieval_gt: lists of doc ids, generation_gt): before, a question file could not be
    Parquet, ``generation_gt`` was no answer field and a uuid's first group became the dataset."""
    import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    _, written, ctx = env
    when = datetime.datetime(2024, 1, 1)
    pq.write_table(pa.Table.from_pylist([
        {"doc_id": "d-1", "contents": "Paris is the capital of France.",
         "metadata": {"last_modified_datetime": when}},
        {"doc_id": "d-2", "contents": "Berlin is the capital\nof Germany.",
         "metadata": {"last_modified_datetime": when}}]), tmp_path / "corpus.parquet")
    qid = "d0f2a6b8-1c3e-4f5a-9b7c-2e4d6f8a0b1c"
    pq.write_table(pa.Table.from_pylist([
        {"qid": qid, "query": "capital of france?", "retrieval_gt": [["d-1"]],
         "generation_gt": ["Paris"]}]), tmp_path / "qa.parquet")
    out = load_data(LoadConfig(), ctx("load"), corpus=file(tmp_path / "corpus.parquet"),
                    eval=file(tmp_path / "qa.parquet"))
    assert [(p["id"], p["title"], p["text"]) for p in written(Passages, out.corpus)] == [
        ("d-1", "", "Paris is the capital of France."),
        ("d-2", "", "Berlin is the capital\nof Germany.")]   # a chunk's first line is no title
    (row,) = written(Questions, out.eval)
    assert (row["id"], row["dataset"], row["question"], row["answers"], row["gold"]) == (
        qid, "qa", "capital of france?", ["Paris"], ["d-1"])


def test_a_beir_folder_as_the_hub_serves_it_and_one_without_test_qrels(env, tmp_path):
    """The Hub's BeIR repositories ship ``corpus.jsonl.gz`` and ``queries.jsonl.gz``, which a
    BEIR folder did not accept; MS MARCO's qrels/ holds dev.tsv only, and a qrels file wired
    beside the folder still required its test.tsv."""
    import gzip

    _, written, ctx = env
    beir = tmp_path / "msmarco"
    (beir / "qrels").mkdir(parents=True)
    with gzip.open(beir / "corpus.jsonl.gz", "wt") as f:
        f.write('{"_id": "d1", "title": "T", "text": "x"}\n'
                '{"_id": "d2", "title": "U", "text": "y"}\n')
    with gzip.open(beir / "queries.jsonl.gz", "wt") as f:
        f.write('{"_id": "q1", "text": "what?"}\n')
    (beir / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\n")
    with pytest.raises(ConfigError) as err:
        load_data(LoadConfig(require_answers=False), ctx("load"), corpus=file(beir))
    assert str(err.value.message) == (f"step 'load': the BEIR folder {beir} has no qrels/test.tsv "
                                      "(qrels/ holds: dev.tsv)")
    assert err.value.hint == (f"set data.qrels={beir}/qrels/dev.tsv (the step's inputs.qrels) to "
                              "evaluate on that split")
    out = load_data(LoadConfig(require_answers=False), ctx("load"), corpus=file(beir),
                    qrels=file(beir / "qrels" / "dev.tsv"))
    assert [p["id"] for p in written(Passages, out.corpus)] == ["d1", "d2"]
    assert [(q["id"], q["gold"]) for q in written(Questions, out.eval)] == [("q1", ["d2"])]


def test_a_saved_dataset_corpus_is_no_beir_folder(env, tmp_path):
    """A corpus folder written by ``save_to_disk`` loads as a corpus; before: "the corpus … is a
    folder but not a BEIR folder: …/corpus.jsonl is missing"."""
    import datasets

    _, written, ctx = env
    datasets.Dataset.from_list([{"id": "d1", "title": "T", "text": "x"}]).save_to_disk(
        str(tmp_path / "corpus"))
    (tmp_path / "q.jsonl").write_text(json.dumps({"question": "q", "answers": ["x"],
                                                  "gold": ["d1"]}) + "\n")
    out = load_data(LoadConfig(), ctx("load"), corpus=file(tmp_path / "corpus"),
                    eval=file(tmp_path / "q.jsonl"))
    assert written(Passages, out.corpus) == [{"id": "d1", "title": "T", "text": "x"}]


BERGEN_QUESTIONS = [{"id": "q1", "content": "capital of france?", "label": ["Paris"],
                     "question": "a field the mapping overrides"},
                    {"id": "q2", "content": "capital of germany?", "label": ["Berlin"]}]
BERGEN_PASSAGES = [{"id": "d1", "content": "Paris is the capital of France.", "text": "stale"},
                   {"id": "d2", "content": "Berlin is the capital of Germany.", "text": "stale"}]


@pytest.mark.parametrize("kind", ["jsonl", "parquet", "dataset"])
def test_fields_under_other_names_load_through_the_recipes_mapping(env, tmp_path, kind):
    """BERGEN's files (question in ``content``, answers in ``label``; passage text in
    ``content``) were refused ("missing field 'question'"), and the only way was a conversion
    script. The load step's ``question_fields`` / ``passage_fields`` map them, as LLaMA-Factory's
    ``columns`` do; the mapped field wins over one the file has under the reader's name."""
    _, written, ctx = env
    if kind == "jsonl":
        corpus, questions = tmp_path / "corpus.jsonl", tmp_path / "dev.jsonl"
        corpus.write_text("".join(json.dumps(p) + "\n" for p in BERGEN_PASSAGES))
        questions.write_text("".join(json.dumps(q) + "\n" for q in BERGEN_QUESTIONS))
    elif kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        corpus, questions = tmp_path / "corpus.parquet", tmp_path / "dev.parquet"
        pq.write_table(pa.Table.from_pylist(BERGEN_PASSAGES), corpus)
        pq.write_table(pa.Table.from_pylist(BERGEN_QUESTIONS), questions)
    else:
        import datasets

        corpus, questions = tmp_path / "corpus", tmp_path / "dev"
        datasets.Dataset.from_list(BERGEN_PASSAGES).save_to_disk(str(corpus))
        datasets.Dataset.from_list(BERGEN_QUESTIONS).save_to_disk(str(questions))
    cfg = LoadConfig(question_fields={"question": "content", "answers": "label"},
                     passage_fields={"text": "content"})
    out = load_data(cfg, ctx("load"), corpus=file(corpus), eval=file(questions))
    assert [(p["id"], p["text"]) for p in written(Passages, out.corpus)] == [
        ("d1", "Paris is the capital of France."), ("d2", "Berlin is the capital of Germany.")]
    assert [(q["id"], q["question"], q["answers"]) for q in written(Questions, out.eval)] == [
        ("q1", "capital of france?", ["Paris"]), ("q2", "capital of germany?", ["Berlin"])]
    with pytest.raises(DataError, match="missing answers.*"
                                        r"steps\.load\.question_fields=\{answers: FIELD\}"):
        load_data(LoadConfig(), ctx("load"), corpus=file(corpus), eval=file(questions))


def test_a_mapping_to_a_field_the_file_lacks_names_the_mapping(env, tmp_path):
    _, written, ctx = env
    corpus, questions = tmp_path / "corpus.jsonl", tmp_path / "dev.jsonl"
    corpus.write_text("".join(json.dumps(p) + "\n" for p in BERGEN_PASSAGES))
    questions.write_text("".join(json.dumps(q) + "\n" for q in BERGEN_QUESTIONS))
    with pytest.raises(DataError) as err:
        load_data(LoadConfig(question_fields={"question": "contents"}), ctx("load"),
                  corpus=file(corpus), eval=file(questions))
    assert err.value.message == (
        f"{questions} line 1: no field 'contents', which the load step's question_fields maps "
        "question to (the record has id, content, label, question); fix the mapping or the record")
    with pytest.raises(DataError, match=r"corpus\.jsonl line 1: no field 'body', which the load "
                                        "step's passage_fields maps text to"):
        load_data(LoadConfig(passage_fields={"text": "body"}), ctx("load"), corpus=file(corpus),
                  eval=file(questions))
    tsv = tmp_path / "psgs_w100.tsv"
    tsv.write_text("id\ttext\ttitle\n1\tParis is the capital.\tParis\n")
    with pytest.raises(ConfigError, match="passage_fields do not apply to a DPR TSV corpus"):
        load_data(LoadConfig(passage_fields={"text": "content"}), ctx("load"), corpus=file(tsv),
                  eval=file(questions))


def test_the_field_mappings_are_checked_and_leave_old_cache_keys_alone():
    """A misspelt name is refused with the names a mapping may use; unset, the two settings
    stay out of the cache key, so a load cached before they existed is still a hit."""
    from orchestrator.stage_config import check_step_config, neutral_paths

    with pytest.raises(ConfigError) as err:
        check_step_config(LoadConfig, {"question_fields": {"qestion": "content"}}, "steps.load")
    assert err.value.message.startswith("steps.load.question_fields.qestion: expected one of "
                                        "['id', 'question', 'answers'")
    assert "(did you mean 'question'?)" in err.value.message
    config, _ = check_step_config(LoadConfig, {}, "steps.load")
    assert {("question_fields",), ("passage_fields",)} <= set(neutral_paths(LoadConfig, config))


def test_train_and_eval_overlap_is_the_same_id_and_question(env, tmp_path, caplog):
    """Two files without ids share the ids 1, 2, ...: that warned "N question ids are in both
    train and eval ... evaluation results will be optimistic" for any two such files. A question
    counts as in both now when its id and its text are."""
    import logging

    _, _, ctx = env
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "d1", "text": "x"}\n')
    train, evals = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    train.write_text("".join(json.dumps({"question": f"train {i}?", "answers": ["a"]}) + "\n"
                             for i in range(3)))
    evals.write_text("".join(json.dumps({"question": q, "answers": ["a"]}) + "\n"
                             for q in ("eval 0?", "train 1?")))
    caplog.set_level(logging.INFO)
    load_data(LoadConfig(), ctx("load"), corpus=file(corpus), train=file(train), eval=file(evals))
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == ["1 questions are in both train and eval, with the same id and question "
                      "(first: '2'); evaluation results will be optimistic"]
    caplog.clear()
    evals.write_text(json.dumps({"question": "eval 0?", "answers": ["a"]}) + "\n")
    load_data(LoadConfig(), ctx("load"), corpus=file(corpus), train=file(train), eval=file(evals))
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []


def test_qrels_that_judge_none_of_the_questions_warn(env, tmp_path, caplog):
    """qrels for other ids than the questions' (here: a file without ids, numbered 1, 2, ...)
    gave no gold in silence: an INFO line "0 of 52 questions have a relevant passage", then
    Reinforced-IR's "none of the 52 evaluation queries has a gold passage id". Now a warning
    names both sides' ids; qrels that judge some of a BEIR folder's queries do not warn."""
    import logging

    _, written, ctx = env
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "d1", "text": "x"}\n{"id": "d2", "text": "y"}\n')
    evals = tmp_path / "eval.jsonl"
    evals.write_text("".join(json.dumps({"question": f"q {i}?", "answers": ["a"]}) + "\n"
                             for i in range(4)))
    qrels = tmp_path / "test.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    caplog.set_level(logging.INFO)
    cfg = LoadConfig(required=["eval"])       # no train set: no warning for it
    out = load_data(cfg, ctx("load"), corpus=file(corpus), eval=file(evals), qrels=file(qrels))
    assert all(not r["gold"] for r in written(Questions, out.eval))
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"
              and r.getMessage().startswith("qrels")]
    assert warned == [f"qrels {qrels}: none of the 2 query ids of the qrels is the id of one of "
                      "the 4 questions (qrels: 'q1', ...; questions: '1', ...): no question gets "
                      "a gold passage id from them; give the questions the qrels' query ids "
                      "(field id, _id, qid, ...), or give qrels for the questions' ids"]
    caplog.clear()
    evals.write_text("".join(json.dumps({"id": f"q{i}", "question": f"q {i}?", "answers": ["a"]})
                             + "\n" for i in range(4)))   # q1 and q2 judged, q0 and q3 not
    out = load_data(cfg, ctx("load"), corpus=file(corpus), eval=file(evals), qrels=file(qrels))
    assert [r["gold"] for r in written(Questions, out.eval)] == [[], ["d1"], ["d2"], []]
    assert [r for r in caplog.records if r.levelname == "WARNING"] == []
