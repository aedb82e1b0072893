"""The synthetic knowledge base: deterministic, answerable only from its gold passages."""

from __future__ import annotations

import pytest

from stages.lib.data.corpus import read_corpus
from stages.lib.data.questions import read_questions
from stages.lib.data.synth import make_synthkb, write_synthkb


def test_deterministic_by_seed():
    a = make_synthkb(seed=3, num_entities=20, num_train=30, num_eval=10)
    b = make_synthkb(seed=3, num_entities=20, num_train=30, num_eval=10)
    c = make_synthkb(seed=4, num_entities=20, num_train=30, num_eval=10)
    assert (a.passages, a.train, a.eval) == (b.passages, b.train, b.eval)
    assert a.passages != c.passages


@pytest.mark.parametrize("per_entity", [1, 2, 3, 6])
def test_sizes_and_passage_shape(per_entity):
    kb = make_synthkb(seed=0, num_entities=18, passages_per_entity=per_entity, num_train=40, num_eval=12)
    assert len(kb.passages) == 18 * per_entity
    assert len(kb.train) == 40 and len(kb.eval) == 12
    assert len({p["id"] for p in kb.passages}) == len(kb.passages)
    for p in kb.passages:
        assert set(p) == {"id", "title", "text"}
        assert 40 <= len(p["text"].split()) <= 80, p
        assert p["title"] in p["text"]
    kinds = {e["kind"] for e in kb.entities}
    assert kinds == {"person", "organisation", "city", "river"}


def test_answers_verbatim_in_gold_and_question_names_entity():
    kb = make_synthkb(seed=1, num_entities=40, passages_per_entity=3, num_train=100, num_eval=60)
    by_id = {p["id"]: p for p in kb.passages}
    for q in kb.train + kb.eval:
        assert set(q) == {"id", "dataset", "question", "answers", "gold"}
        assert q["dataset"] == "synthkb"
        assert len(q["gold"]) == 1
        gold = by_id[q["gold"][0]]
        assert q["answers"][0] in gold["text"], (q, gold)
        assert gold["title"] in q["question"]


def test_similar_entities_exist_as_distractors():
    kb = make_synthkb(seed=0, num_entities=16, num_train=1, num_eval=1)
    people = [e["name"] for e in kb.entities if e["kind"] == "person"]
    surnames = [n.split()[-1] for n in people]
    assert len(set(surnames)) < len(surnames)  # siblings share a surname
    rivers = [e["name"] for e in kb.entities if e["kind"] == "river"]
    assert any(a != b and a in b for a in rivers for b in rivers)  # "X River" / "Upper X River"
    assert len({e["name"] for e in kb.entities}) == len(kb.entities)


def test_train_eval_do_not_overlap():
    kb = make_synthkb(seed=2, num_entities=30, num_train=80, num_eval=40)
    assert not {q["id"] for q in kb.train} & {q["id"] for q in kb.eval}
    assert not {q["question"] for q in kb.train} & {q["question"] for q in kb.eval}
    # all available facts can be used
    full = make_synthkb(seed=2, num_entities=5, num_train=15, num_eval=5)
    assert len({q["question"] for q in full.train + full.eval}) == 20


def test_too_many_questions_is_explained():
    with pytest.raises(ValueError, match="raise num_entities to at least 8"):
        make_synthkb(num_entities=5, num_train=25, num_eval=5)


@pytest.mark.parametrize("fmt", ["jsonl", "flashrag"])
def test_written_files_round_trip_through_loaders(tmp_path, fmt):
    kb = make_synthkb(seed=5, num_entities=12, num_train=20, num_eval=8)
    paths = write_synthkb(tmp_path / "kb", kb, corpus_format=fmt)
    assert sorted(p.name for p in paths.values()) == ["corpus.jsonl", "eval.jsonl", "train.jsonl"]
    assert read_corpus(paths["corpus"]) == kb.passages
    assert read_questions(paths["train"]) == kb.train
    assert read_questions(paths["eval"]) == kb.eval
