"""BC targets by length bucket (SEEDS 1.3 step 4) and the SFT/DPO split (step 6)."""

import doctest

from stages.dynamicrag.buckets import bc_targets, split_sft_dpo, true_false_ids
from stages.dynamicrag import buckets


def labels(*bits):
    """One item's relevance labels from 0/1 (None stays None: no label)."""
    return [None if b is None else bool(b) for b in bits]


def lengths(split):
    return [(row.item, len(row.sequence)) for row in split.bc]


def test_doctests():
    assert doctest.testmod(buckets).failed == 0


def test_true_false_ids():
    ctxs = [{"relevant": True}, {"relevant": False}, {"relevant": None}]
    assert true_false_ids(ctxs) == ([1], [2, 3])


def test_one_item_all_eligible_lengths():
    # 6 passages, relevant = 2 and 5; max_len 5: L = 2, 3, 4 are eligible (L >= |true| = 2)
    split = bc_targets([labels(0, 1, 0, 0, 1, 0)], max_len=5, seed=1)
    assert lengths(split) == [(0, 2), (0, 3), (0, 4)]
    for row in split.bc:
        seq = row.sequence
        assert sorted(seq[:2]) == [2, 5]                      # true ids first
        assert set(seq[2:]) <= {1, 3, 4, 6} and len(set(seq)) == len(seq)
    assert split.normal == [] and split.true_count_histogram == {2: 1}


def test_zero_true_gives_empty_target_at_length_zero():
    split = bc_targets([labels(0, None)], max_len=3, seed=0)
    assert lengths(split) == [(0, 0), (0, 1), (0, 2)]
    assert split.bc[0].sequence == []


def test_length_never_exceeds_number_of_passages():
    split = bc_targets([labels(1)], max_len=15)
    assert lengths(split) == [(0, 1)]


def test_bucket_caps_route_items_to_normal():
    items = [labels(1, 0, 0), labels(1, 0, 0), labels(1, 1, 0), labels(1, 1, 1)]
    # max_len 3, cap 1: item 0 fills L=1 and L=2; item 1 finds both full -> normal;
    # item 2 (2 true) would need L=2 (full) -> normal; item 3 (3 true) > max L -> normal
    split = bc_targets(items, max_len=3, bucket_cap=1)
    assert lengths(split) == [(0, 1), (0, 2)]
    assert split.normal == [1, 2, 3]
    assert split.true_count_histogram == {1: 2, 2: 1, 3: 1}


def test_total_cap_stops_mid_item_and_rest_is_normal():
    items = [labels(0, 0, 0), labels(0, 0, 0), labels(1, 0, 0)]
    split = bc_targets(items, max_len=3, bucket_cap=10, total_cap=4)
    assert lengths(split) == [(0, 0), (0, 1), (0, 2), (1, 0)]
    assert split.normal == [2]


def test_deterministic_and_seed_dependent():
    items = [labels(i % 2, 0, 1, 0, 0, 0, 0, 0) for i in range(20)]
    one = bc_targets(items, max_len=8, seed=3)
    assert one == bc_targets(items, max_len=8, seed=3)
    other = bc_targets(items, max_len=8, seed=4)
    assert [r.sequence for r in one.bc] != [r.sequence for r in other.bc]


def test_input_not_mutated():
    items = [labels(1, 0)]
    before = repr(items)
    bc_targets(items)
    assert repr(items) == before


def test_split_sft_dpo():
    rows = [{"id": i} for i in range(10)]
    sft, dpo = split_sft_dpo(rows, n_sft=7, seed=5)
    assert len(sft) == 7 and len(dpo) == 3
    assert sorted(r["id"] for r in sft + dpo) == list(range(10))
    assert (sft, dpo) == split_sft_dpo(rows, n_sft=7, seed=5)
    assert [r["id"] for r in rows] == list(range(10))       # input order untouched
    assert split_sft_dpo(rows, n_sft=100)[1] == []
