"""Windowed reranking over more passages than one prompt holds (SEEDS 1.3 step 14, fixed)."""

import doctest

import pytest

from stages.dynamicrag.windows import select_windowed
from stages.dynamicrag import windows

DOCS = [{"id": f"d{i}", "title": f"T{i}", "text": f"text {i}"} for i in range(1, 11)]


def ids(docs):
    return [d["id"] for d in docs]


def test_doctests():
    assert doctest.testmod(windows).failed == 0


def test_single_window_is_plain_reranking():
    calls = []

    def rerank(batch):
        calls.append([ids(w) for w in batch])
        return [[3, 1]]

    assert ids(select_windowed(DOCS[:4], 5, rerank)) == ["d3", "d1"]
    assert calls == [[["d1", "d2", "d3", "d4"]]]


def test_window_offset_is_applied():
    # windows of 4: [d1..d4] [d5..d8] [d9 d10]; local id 2 in each -> d2, d6, d10
    result = select_windowed(DOCS, 4, lambda batch: [[2] for _ in batch])
    assert ids(result) == ["d2", "d6", "d10"]


def test_reduction_rounds_until_window_fits():
    rounds = []

    def keep_first_two(batch):
        rounds.append([ids(w) for w in batch])
        return [[1, 2] for _ in batch]

    # round 1 (window 3): [d1 d2 d3] [d4 d5 d6] [d7 d8 d9] [d10] -> d1 d2 d4 d5 d7 d8 d10 (7)
    # round 2: [d1 d2 d4] [d5 d7 d8] [d10] -> d1 d2 d5 d7 d10 (5)
    # round 3: [d1 d2 d5] [d7 d10] -> d1 d2 d7 d10 (4); round 4: [d1 d2 d7] [d10] -> d1 d2 d10
    result = select_windowed(DOCS, 3, keep_first_two)
    assert ids(result) == ["d1", "d2", "d10"]
    assert len(rounds) == 4
    assert rounds[1] == [["d1", "d2", "d4"], ["d5", "d7", "d8"], ["d10"]]


def test_duplicates_by_id_and_out_of_range_ids():
    docs = DOCS[:3] + [dict(DOCS[0])]          # d1 appears twice (positions 1 and 4)
    result = select_windowed(docs, 2, lambda batch: [[1, 1, 5], [2, 1, 0]])
    assert ids(result) == ["d1", "d3"]           # second d1 dropped, ids 5 and 0 ignored


def test_docs_without_id_dedup_by_position():
    docs = [{"title": "A", "text": "a"}, {"title": "A", "text": "a"}]
    # window 1: both positions survive round 1 (no id to merge them), round 2 cannot shrink -> 1
    assert len(select_windowed(docs, 1, lambda batch: [[1] for _ in batch])) == 1
    assert len(select_windowed(docs, 2, lambda batch: [[1, 2]])) == 2


def test_terminates_when_a_round_does_not_shrink():
    calls = []

    def keep_all(batch):
        calls.append(len(batch))
        return [list(range(1, len(w) + 1)) for w in batch]

    result = select_windowed(DOCS, 4, keep_all)
    assert ids(result) == ["d1", "d2", "d3", "d4"]
    assert len(calls) == 2


def test_empty_selection_and_empty_docs():
    assert select_windowed(DOCS, 4, lambda batch: [[] for _ in batch]) == []
    assert select_windowed([], 4, lambda batch: pytest.fail("no call for no docs")) == []


def test_bad_arguments():
    with pytest.raises(ValueError, match="window"):
        select_windowed(DOCS, 0, lambda batch: [])
    with pytest.raises(ValueError, match="selections"):
        select_windowed(DOCS, 4, lambda batch: [[1]])
