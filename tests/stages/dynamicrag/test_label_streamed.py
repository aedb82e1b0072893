"""``dynamicrag.label`` takes its outputs' rows from the input table a few rows at a time: the
input is never held as Python rows (150,000 questions with 40 passages each took 11 GB so), the
SFT and DPO rows come in the seeded shuffle's order (as the seed code wrote them, and as
before), and every column of a question reaches its outputs."""

import pytest

from orchestrator.artifacts import Table
from stages.dynamicrag import label as label_module
from stages.dynamicrag.buckets import split_sft_dpo
from stages.dynamicrag.label import LabelConfig, label
from stages.dynamicrag.schemas import BCTargets
from stages.schemas import Reranked
from tests.stages.dynamicrag.rows import question


def questions():
    """12 questions; every third has no relevant passage, the rest one; ``choices`` passes."""
    rows = []
    for n in range(12):
        row = question(f"q{n:02d}", [n % 3 == 1, n % 3 == 2, False, False])
        row["choices"] = [f"option {n}"]
        rows.append(row)
    return rows


def never_as_python(*args, **kwargs):
    raise AssertionError("label read its input as Python rows")


@pytest.mark.parametrize("rows_at_a_time", [2048, 5])
def test_outputs_in_the_seeded_order_with_every_column(env, monkeypatch, rows_at_a_time):
    table, written, ctx = env
    monkeypatch.setattr(label_module, "ROWS_AT_A_TIME", rows_at_a_time)   # pieces of 5 rows
    for name in ("rows", "iter_rows", "iter_batches"):
        monkeypatch.setattr(Table, name, never_as_python)
    cfg = LabelConfig(max_len=3, bucket_cap=2, total_cap=None, n_sft=3, seed=1)
    out = label(table(Reranked, questions()), cfg, ctx("label"))
    monkeypatch.undo()

    bc = written(BCTargets, out.bc)
    # q00 (no relevant) gives L=0, 1, 2 (padded); q01 L=1, 2, which fills them (cap 2);
    # q02 (one relevant) finds L=1, 2 full; q03 (none) takes L=0's second place
    assert [(r["id"], r["sequence_length"]) for r in bc] == [
        ("q00", 0), ("q00", 1), ("q00", 2), ("q01", 1), ("q01", 2), ("q03", 0)]
    assert bc[3]["sequence"] == [1] and bc[4]["sequence"][0] == 1
    assert bc[0]["choices"] == ["option 0"] and len(bc[0]["ctxs"]) == 4
    assert bc[0]["ctxs"][1]["id"] == "q00-d2"

    sft, dpo = written(Reranked, out.sft), written(Reranked, out.dpo)
    ids = [r["id"] for r in sft], [r["id"] for r in dpo]
    assert len(ids[0]) == 3 and len(ids[1]) == 6
    assert sorted(ids[0] + ids[1]) == ["q02"] + [f"q{n:02d}" for n in range(4, 12)]
    normal = ["q02"] + [f"q{n:02d}" for n in range(4, 12)]   # the seeded shuffle's order
    assert ids == tuple(map(list, split_sft_dpo(normal, n_sft=3, seed=1)))
    assert all(r["choices"] == [f"option {int(r['id'][1:])}"] for r in sft + dpo)


def test_same_outputs_whatever_the_piece_size(env, monkeypatch):
    table, written, ctx = env
    cfg = LabelConfig(max_len=4, bucket_cap=3, total_cap=7, n_sft=0.5, seed=4)
    results = []
    for rows_at_a_time in (1, 4, 2048):
        monkeypatch.setattr(label_module, "ROWS_AT_A_TIME", rows_at_a_time)
        out = label(table(Reranked, questions()), cfg, ctx("label"))
        results.append((written(BCTargets, out.bc), written(Reranked, out.sft),
                        written(Reranked, out.dpo)))
    assert results[0] == results[1] == results[2]
    assert len(results[0][0]) == 7


def test_empty_input(env):
    table, written, ctx = env
    out = label(table(Reranked, []), LabelConfig(), ctx("label"))
    assert (written(BCTargets, out.bc), written(Reranked, out.sft),
            written(Reranked, out.dpo)) == ([], [], [])


def test_lists_whose_items_are_named_otherwise(env, monkeypatch):
    """A Parquet file that names list items otherwise (``item``, older writers) has no
    ``ctxs.list.element.relevant``: the labels are read from the whole ``ctxs`` column."""
    table, written, ctx = env
    cfg = LabelConfig(max_len=3, bucket_cap=2, total_cap=None, n_sft=3, seed=1)
    expected = label(table(Reranked, questions()), cfg, ctx("label"))
    monkeypatch.setattr(label_module, "RELEVANT_COLUMN", "ctxs.list.item.relevant")
    got = label(table(Reranked, questions()), cfg, ctx("label"))
    assert written(BCTargets, got.bc) == written(BCTargets, expected.bc)
    assert len(written(BCTargets, got.bc)) == 6


def test_the_bytes_are_those_of_the_rows_built_as_python_values(env, tmp_path):
    """A table taken from Parquet names its lists' items ``element``, one built from rows
    ``item``: the same rows wrote other bytes, another content hash, so a ``label`` computed
    again would have made every step after it run again. The outputs are written as the rows
    built as Python values were (the stage kept its version)."""
    from orchestrator.artifacts import write_artifact

    table, written, ctx = env
    cfg = LabelConfig(max_len=3, bucket_cap=2, total_cap=None, n_sft=3, seed=1)
    out = label(table(Reranked, questions()), cfg, ctx("label"))
    for name, cls, value in (("bc", BCTargets, out.bc), ("sft", Reranked, out.sft),
                             ("dpo", Reranked, out.dpo)):
        rows = written(cls, value)
        as_rows = write_artifact(rows, cls, tmp_path / f"{name}-rows", "label.x", "k")
        as_table = write_artifact(value, cls, tmp_path / f"{name}-table", "label.x", "k")
        assert as_table.content_hash == as_rows.content_hash, name


def test_a_passed_through_struct_with_an_always_null_field(env):
    """pyarrow casts a slice of such a struct into an array that does not validate; label's
    outputs are slices of its input (review 45b, F1): they keep the struct's values."""
    table, written, ctx = env
    rows = [{**row, "meta": {"source": "wiki", "page": None}} for row in questions()]
    cfg = LabelConfig(max_len=3, bucket_cap=2, total_cap=None, n_sft=3, seed=1)
    out = label(table(Reranked, rows), cfg, ctx("label"))
    kept = [r["meta"] for r in written(Reranked, out.sft) + written(Reranked, out.dpo)]
    assert len(kept) == 9 and all(m == {"source": "wiki", "page": None} for m in kept)
