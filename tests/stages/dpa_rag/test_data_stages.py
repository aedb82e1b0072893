"""stages/dpa_rag/reranker_data.py, prealign.py and generator_data.py: the reranker's rows,
the pre-aligned task and the reader's SFT rows, built from hand-made preference knowledge."""

from __future__ import annotations

import doctest

import pytest

import stages.dpa_rag.reranker_data as reranker_data_module
from orchestrator.api import DataError
from stages.dpa_rag.generator_data import GeneratorDataConfig, generator_data
from stages.dpa_rag.prealign import PrealignConfig, prealign
from stages.dpa_rag.reranker_data import RerankerDataConfig, reranker_data
from stages.dpa_rag.schemas import Knowledge
from stages.schemas import Retrieved
from tests.stages.conftest import prompt_file

# an outcome alone: the answer's token F1 before and after as the outcome has it at its
# plainest (a middle outcome: unchanged, so not used for the reranker); or (outcome, before
# F1, after F1)
F1 = {"aligned": (0.0, 1.0), "unaligned": (1.0, 0.0), "both_correct": (1.0, 1.0),
      "both_incorrect": (0.0, 0.0)}
OUTCOMES = [("both_incorrect", 0.5, 0.0), "aligned", "unaligned", "both_correct",
            "both_incorrect", "aligned"]


def knowledge(n_queries=10, outcomes=OUTCOMES):
    rows = []
    for q in range(n_queries):
        for rank, outcome in enumerate(outcomes, 1):
            outcome, before_f1, after_f1 = (outcome, *F1[outcome]) if isinstance(outcome, str) \
                else outcome
            doc = {"id": f"q{q}d{rank}", "title": f"T{rank}", "text": f"text {q} {rank}",
                   "score": 1.0 - rank / 10}
            rows.append({"id": f"q{q}", "dataset": "nq", "question": f"question {q}?",
                         "answers": [f"answer {q}"], "gold": [], "source_id": f"q{q}",
                         "kind": "original", "doc": doc, "rank": rank, "before": "b",
                         "before_em": 0.0, "before_f1": before_f1, "after": "a",
                         "after_em": 0.0, "after_f1": after_f1, "category": outcome})
    return rows


def test_reranker_data_docstrings():
    assert doctest.testmod(reranker_data_module).failed == 0


def test_reranker_rows_rank_positives_before_negatives(model_env):
    art, ctx = model_env
    rows = reranker_data(art(Knowledge, knowledge()), RerankerDataConfig(), ctx("reranker_data"))
    assert len(rows) == 10 and sum(r["split"] == "valid" for r in rows) == 1
    r = rows[0]
    ids = lambda docs: [d["id"][len("q0"):] for d in docs]   # noqa: E731
    assert ids(r["positive"]) == ["d2", "d6"]                 # the two aligned, by rank
    assert ids(r["negative"]) == ["d3", "d1"]                 # unaligned, then F1 lowered
    assert ids(r["rank_list"]) == ["d2", "d6", "d1", "d3"]    # unaligned last (worst)
    labels = {row["cls_label"] for row in rows}
    assert labels == {0, 1}                                   # both classes drawn
    for row in rows:
        want = row["positive"][0] if row["cls_label"] == 1 else row["negative"][0]
        assert row["cls_doc"] == want


def test_middle_outcomes_take_the_side_of_their_f1_change(model_env):
    """The released labelled rows: a both-correct document that lowers the answer's F1 is a
    negative, a both-incorrect one that raises it a positive; one that leaves it is unused."""
    art, ctx = model_env
    outcomes = ["unaligned", ("both_correct", 1.0, 0.4), ("both_incorrect", 0.0, 0.5),
                "aligned", ("both_correct", 0.5, 0.5), "both_incorrect"]
    (row,) = reranker_data(art(Knowledge, knowledge(1, outcomes)),
                           RerankerDataConfig(valid_fraction=0), ctx("reranker_data"))
    ids = lambda docs: [d["id"][len("q0"):] for d in docs]   # noqa: E731
    assert ids(row["positive"]) == ["d4", "d3"]               # aligned, then F1 raised
    assert ids(row["negative"]) == ["d1", "d2"]               # unaligned, then F1 lowered
    assert ids(row["rank_list"]) == ["d4", "d3", "d2", "d1"]  # each group best first
    unchanged = ["aligned", ("both_incorrect", 0.0, 0.5), "unaligned", "both_correct",
                 "both_incorrect"]
    with pytest.raises(DataError, match="none of 1 queries has 2 positive and 2 negative"):
        reranker_data(art(Knowledge, knowledge(1, unchanged)), RerankerDataConfig(),
                      ctx("reranker_data"))


def test_reranker_rows_fill_in_with_middle_outcomes_unless_strict(model_env):
    art, ctx = model_env
    few = ["aligned", ("both_correct", 0.5, 1.0), "unaligned", ("both_incorrect", 0.5, 0.0)]
    loose = reranker_data(art(Knowledge, knowledge(4, few)), RerankerDataConfig(valid_fraction=0),
                          ctx("reranker_data"))
    assert len(loose) == 4
    with pytest.raises(DataError, match=r"(?s)reranker_data'.*none of 4 queries has 2 "
                                        r"positive and 2 negative.*set strict: false"):
        reranker_data(art(Knowledge, knowledge(4, few)), RerankerDataConfig(strict=True),
                      ctx("reranker_data"))


def test_augmentations_of_a_validation_query_stay_in_validation(model_env):
    art, ctx = model_env
    rows = knowledge(10)
    rows += [{**r, "id": f"{r['id']}#rephrase", "kind": "rephrase"} for r in knowledge(10)]
    out = reranker_data(art(Knowledge, rows), RerankerDataConfig(valid_fraction=0.3),
                        ctx("reranker_data"))
    split = {r["id"]: r["split"] for r in out}
    assert sum(s == "valid" for s in split.values()) == 6
    assert all(split[f"q{q}"] == split[f"q{q}#rephrase"] for q in range(10))


def test_prealign_shows_each_preference_document_among_random_ones(model_env):
    art, ctx = model_env
    rows = prealign(art(Knowledge, knowledge(3)), prompt_file("prealign", "dpa_rag"),
                    PrealignConfig(k=3), ctx("prealign"))
    assert len(rows) == 9                          # 2 aligned + 1 unaligned per query
    targets = {r["id"]: r["messages"][-1]["content"] for r in rows}
    assert targets["q0@2"] == "Yes" and targets["q0@3"] == "No"
    for row in rows:
        user = row["messages"][0]["content"]
        qid, rank = row["id"].split("@")
        position = int(user.split("Does document [")[1][0])
        blocks = user.split("\n\n")[1].split("\n[")
        assert len(blocks) == 3                    # k documents
        assert f"text {qid[1:]} {rank}" in blocks[position - 1]   # the preference document
    again = prealign(art(Knowledge, knowledge(3)), prompt_file("prealign", "dpa_rag"),
                     PrealignConfig(k=3), ctx("prealign"))
    assert again == rows                           # seeded


def test_prealign_refuses_knowledge_without_preference_documents(model_env):
    art, ctx = model_env
    with pytest.raises(DataError, match=r"prealign'.*no document of 2 queries has an outcome in "
                                        r"labels \['aligned', 'unaligned'\]"):
        prealign(art(Knowledge, knowledge(2, ["both_correct", "both_incorrect"])),
                 prompt_file("prealign", "dpa_rag"), PrealignConfig(), ctx("prealign"))


def test_generator_rows_read_the_first_k_documents_of_original_queries(model_env):
    art, ctx = model_env
    docs = [{"id": f"d{i}", "title": f"T{i}", "text": f"passage {i}", "score": 0.5}
            for i in range(5)]
    rows = [{"id": "q0", "dataset": "nq", "question": "who?", "answers": ["Ann", "Anna"],
             "gold": [], "ctxs": docs, "kind": "original"},
            {"id": "q0#sparql", "dataset": "nq", "question": "SELECT ?x", "answers": ["Ann"],
             "gold": [], "ctxs": docs, "kind": "sparql"}]
    out = generator_data(art(Retrieved, rows), prompt_file("rag", "common"),
                         GeneratorDataConfig(k=3), ctx("generator_data"))
    assert [r["id"] for r in out] == ["q0"]
    user, answer = out[0]["messages"][-2:]
    assert answer == {"role": "assistant", "content": "Ann"}
    assert "passage 2" in user["content"] and "passage 3" not in user["content"]
    # the paper recipe's kinds (the README: "merge your augmentation data"): every query
    out = generator_data(art(Retrieved, rows), prompt_file("rag", "common"),
                         GeneratorDataConfig(k=3, kinds=["original", "sparql"]),
                         ctx("generator_data"))
    assert [r["id"] for r in out] == ["q0", "q0#sparql"]
    assert "SELECT ?x" in out[1]["messages"][-2]["content"]


def test_generator_rows_of_a_multiple_choice_question_list_its_options(model_env):
    art, ctx = model_env
    rows = [{"id": "q0", "dataset": "arc", "question": "Which is a metal?", "answers": ["B"],
             "gold": [], "choices": ["wood", "iron"], "kind": "original",
             "ctxs": [{"id": "d0", "title": "T", "text": "Iron is a metal.", "score": 0.5}]}]
    (out,) = generator_data(art(Retrieved, rows), prompt_file("rag", "common"),
                            GeneratorDataConfig(k=1), ctx("generator_data"))
    user, answer = out["messages"][-2:]
    assert "Which is a metal?\nA: wood\nB: iron" in user["content"]
    assert answer == {"role": "assistant", "content": "B"}


def test_prealign_caps_the_documents_of_each_outcome_and_takes_any_labelled_outcome(model_env):
    art, ctx = model_env
    cfg = PrealignConfig(labels={"aligned": "Yes", "both_incorrect": "No"}, max_per_outcome=1)
    rows = prealign(art(Knowledge, knowledge(3)), prompt_file("prealign", "dpa_rag"), cfg,
                    ctx("prealign"))
    targets = [r["messages"][-1]["content"] for r in rows]
    assert len(rows) == 6 and targets.count("Yes") == 3 and targets.count("No") == 3


def test_a_set_named_in_k_by_set_gets_its_own_number_of_documents(model_env):
    art, ctx = model_env
    rows = knowledge(2)
    for row in rows:
        row["dataset"] = "webqsp" if row["id"] == "q1" else "nq"
    out = prealign(art(Knowledge, rows), prompt_file("prealign", "dpa_rag"),
                   PrealignConfig(k=3, k_by_set={"webqsp": 2}), ctx("prealign"))
    shown = {r["id"]: len(r["messages"][0]["content"].split("\n\n")[1].split("\n[")) for r in out}
    assert {n for i, n in shown.items() if i.startswith("q0@")} == {3}
    assert {n for i, n in shown.items() if i.startswith("q1@")} == {2}

    docs = [{"id": f"d{i}", "title": f"T{i}", "text": f"passage {i}", "score": 0.5}
            for i in range(5)]
    retrieved = [{"id": f"q{i}", "dataset": name, "question": "who?", "answers": ["Ann"],
                  "gold": [], "ctxs": docs, "kind": "original"}
                 for i, name in enumerate(["nq", "WebQSP_train"])]
    out = generator_data(art(Retrieved, retrieved), prompt_file("rag", "common"),
                         GeneratorDataConfig(k=3, k_by_set={"webqsp": 2}), ctx("generator_data"))
    users = [r["messages"][-2]["content"] for r in out]
    assert "passage 2" in users[0] and "passage 2" not in users[1] and "passage 1" in users[1]


def test_prealign_refuses_a_label_for_an_outcome_that_does_not_exist():
    """A typo'd outcome (``both_incorect``) used to be accepted: its documents were silently
    left out and every row's target was "Yes"."""
    import stages.dpa_rag.prealign as prealign_module
    from orchestrator.api import ConfigError

    with pytest.raises(ConfigError, match=r"labels: unknown outcome 'both_incorect' \(did you "
                                          r"mean 'both_incorrect'\?\)"):
        PrealignConfig(labels={"aligned": "Yes", "both_incorect": "No"})
    with pytest.raises(ConfigError, match="labels: empty"):
        PrealignConfig(labels={})
    assert doctest.testmod(prealign_module).failed == 0


def test_prealign_warns_when_every_target_is_the_same(model_env, caplog):
    art, ctx = model_env
    rows = prealign(art(Knowledge, knowledge(2, ["aligned", "both_correct"])),
                    prompt_file("prealign", "dpa_rag"), PrealignConfig(), ctx("prealign"))
    assert {r["messages"][-1]["content"] for r in rows} == {"Yes"}
    assert "every row's target is 'Yes': no document has the outcome unaligned" in caplog.text


def test_prealign_per_query_keeps_one_preference_document_of_each_query(model_env):
    """The paper's pre-aligned stage: one preference document per query (seeded draw)."""
    art, ctx = model_env
    cfg = PrealignConfig(k=3, per_query=1)
    rows = prealign(art(Knowledge, knowledge(4)), prompt_file("prealign", "dpa_rag"), cfg,
                    ctx("prealign"))
    queries = [r["id"].split("@")[0] for r in rows]
    assert sorted(queries) == ["q0", "q1", "q2", "q3"]
    assert rows == prealign(art(Knowledge, knowledge(4)), prompt_file("prealign", "dpa_rag"),
                            cfg, ctx("prealign"))
    everything = prealign(art(Knowledge, knowledge(4)), prompt_file("prealign", "dpa_rag"),
                          PrealignConfig(k=3), ctx("prealign"))
    assert {r["id"] for r in rows} < {r["id"] for r in everything}
