"""BC targets by length bucket (SEEDS 1.3 step 4) and the SFT/DPO split (step 6)."""

import doctest

from stages.dynamicrag.buckets import bc_targets, split_sft_dpo, true_false_ids
from stages.dynamicrag import buckets


def item(qid, labels):
    return {"id": qid, "question": f"question {qid}",
            "ctxs": [{"id": f"{qid}-{i}", "relevant": r} for i, r in enumerate(labels, start=1)]}


def test_doctests():
    assert doctest.testmod(buckets).failed == 0


def test_true_false_ids():
    ctxs = [{"relevant": True}, {"relevant": False}, {"relevant": None}]
    assert true_false_ids(ctxs) == ([1], [2, 3])


def test_one_item_all_eligible_lengths():
    # 6 passages, relevant = 2 and 5; max_len 5: L = 2, 3, 4 are eligible (L >= |true| = 2)
    split = bc_targets([item("a", [0, 1, 0, 0, 1, 0])], max_len=5, seed=1)
    assert [r["sequence_length"] for r in split.bc] == [2, 3, 4]
    for row in split.bc:
        seq = row["sequence"]
        assert len(seq) == row["sequence_length"]
        assert sorted(seq[:2]) == [2, 5]                      # true ids first
        assert set(seq[2:]) <= {1, 3, 4, 6} and len(set(seq)) == len(seq)
        assert row["id"] == "a" and row["ctxs"][1]["relevant"]   # the item is copied
    assert split.normal == [] and split.true_count_histogram == {2: 1}


def test_zero_true_gives_empty_target_at_length_zero():
    split = bc_targets([item("a", [0, 0])], max_len=3, seed=0)
    lengths = [(r["sequence_length"], len(r["sequence"])) for r in split.bc]
    assert lengths == [(0, 0), (1, 1), (2, 2)]


def test_length_never_exceeds_number_of_passages():
    split = bc_targets([item("a", [1])], max_len=15)
    assert [r["sequence_length"] for r in split.bc] == [1]


def test_bucket_caps_route_items_to_normal():
    rows = [item("a", [1, 0, 0]), item("b", [1, 0, 0]), item("c", [1, 1, 0]), item("d", [1, 1, 1])]
    # max_len 3, cap 1: a fills L=1 and L=2; b finds both full -> normal;
    # c (2 true) would need L=2 (full) -> normal; d (3 true) > max L -> normal
    split = bc_targets(rows, max_len=3, bucket_cap=1)
    assert [(r["id"], r["sequence_length"]) for r in split.bc] == [("a", 1), ("a", 2)]
    assert [r["id"] for r in split.normal] == ["b", "c", "d"]
    assert split.true_count_histogram == {1: 2, 2: 1, 3: 1}


def test_total_cap_stops_mid_item_and_rest_is_normal():
    rows = [item("a", [0, 0, 0]), item("b", [0, 0, 0]), item("c", [1, 0, 0])]
    split = bc_targets(rows, max_len=3, bucket_cap=10, total_cap=4)
    assert [(r["id"], r["sequence_length"]) for r in split.bc] == [("a", 0), ("a", 1), ("a", 2),
                                                                   ("b", 0)]
    assert [r["id"] for r in split.normal] == ["c"]


def test_deterministic_and_seed_dependent():
    rows = [item(str(i), [i % 2, 0, 1, 0, 0, 0, 0, 0]) for i in range(20)]
    one = bc_targets(rows, max_len=8, seed=3)
    assert one == bc_targets(rows, max_len=8, seed=3)
    other = bc_targets(rows, max_len=8, seed=4)
    assert [r["sequence"] for r in one.bc] != [r["sequence"] for r in other.bc]


def test_input_rows_not_mutated():
    rows = [item("a", [1, 0])]
    before = repr(rows)
    bc_targets(rows)
    assert repr(rows) == before


def test_split_sft_dpo():
    rows = [{"id": i} for i in range(10)]
    sft, dpo = split_sft_dpo(rows, n_sft=7, seed=5)
    assert len(sft) == 7 and len(dpo) == 3
    assert sorted(r["id"] for r in sft + dpo) == list(range(10))
    assert (sft, dpo) == split_sft_dpo(rows, n_sft=7, seed=5)
    assert [r["id"] for r in rows] == list(range(10))       # input order untouched
    assert split_sft_dpo(rows, n_sft=100)[1] == []
