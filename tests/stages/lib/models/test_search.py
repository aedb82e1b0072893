"""stages.lib.models.search: exact blocked search vs brute force, vs faiss, and sharded merging."""

from __future__ import annotations

import json

import numpy as np
import pytest

from orchestrator.errors import ConfigError, DataError
from stages.lib.models.search import (ShardedIndex, exact_search, faiss_search, load_embeddings,
                                      read_meta, save_embeddings, shard_dirs)

RNG = np.random.default_rng(0)
EMB = RNG.standard_normal((1000, 16)).astype(np.float32)
QUERIES = RNG.standard_normal((7, 16)).astype(np.float32)
IDS = [f"doc{i}" for i in range(len(EMB))]


def brute_force(q, emb, k):
    scores = q @ emb.T
    idx = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, idx, axis=1), idx


@pytest.mark.parametrize("block_rows", [1, 64, 333, 5000])
def test_exact_matches_brute_force(block_rows):
    scores, idx = exact_search(QUERIES, EMB, k=10, block_rows=block_rows, device="cpu")
    ref_s, ref_i = brute_force(QUERIES, EMB, 10)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(scores, ref_s, rtol=1e-5)


def test_exact_small_query_block_and_k_beyond_rows():
    scores, idx = exact_search(QUERIES, EMB[:5], k=50, block_rows=2, query_block=3, device="cpu")
    assert idx.shape == (7, 5)
    np.testing.assert_array_equal(idx, brute_force(QUERIES, EMB[:5], 5)[1])


def test_exact_ties_go_to_lower_row_and_errors():
    emb = np.ones((6, 2), dtype=np.float32)
    _, idx = exact_search(np.ones((1, 2), np.float32), emb, k=3, block_rows=4, device="cpu")
    assert idx.tolist() == [[0, 1, 2]]
    with pytest.raises(ValueError, match="shape"):
        exact_search(np.ones((1, 3), np.float32), emb, k=1)


def test_exact_on_float16_memmap(tmp_path):
    save_embeddings(tmp_path, IDS, EMB, dtype="float16")
    ids, emb = load_embeddings(tmp_path)
    assert isinstance(emb, np.memmap) and emb.dtype == np.float16 and ids == IDS
    _, idx = exact_search(QUERIES, emb, k=5, block_rows=100, device="cpu")
    np.testing.assert_array_equal(idx, brute_force(QUERIES, emb.astype(np.float32), 5)[1])


def test_faiss_flat_agrees_with_exact():
    pytest.importorskip("faiss")
    ex_s, ex_i = exact_search(QUERIES, EMB, k=10, device="cpu")
    fa_s, fa_i = faiss_search(QUERIES, EMB, k=10, factory="Flat")
    np.testing.assert_array_equal(fa_i, ex_i)
    np.testing.assert_allclose(fa_s, ex_s, rtol=1e-4)


def test_faiss_ivf_with_all_lists_probed_is_exact():
    pytest.importorskip("faiss")
    _, fa_i = faiss_search(QUERIES, EMB, k=5, factory="IVF8,Flat", nprobe=8)
    np.testing.assert_array_equal(fa_i, exact_search(QUERIES, EMB, k=5, device="cpu")[1])


def test_faiss_bad_factory_is_a_config_error():
    pytest.importorskip("faiss")
    with pytest.raises(ConfigError, match="factory"):
        faiss_search(QUERIES, EMB, k=5, factory="NoSuchIndex")


def _sharded(tmp_path, bounds=(0, 300, 310, 1000)):
    for n, (a, b) in enumerate(zip(bounds, bounds[1:])):
        d = save_embeddings(tmp_path / f"shard-{n:05d}", IDS[a:b], EMB[a:b], dtype="float32")
        (d / "meta.json").write_text(json.dumps({"pooling": "mean", "num_rows": b - a}))
    return tmp_path


@pytest.mark.parametrize("method", ["exact", "faiss"])
def test_sharded_index_merges_to_the_global_top_k(tmp_path, method):
    if method == "faiss":
        pytest.importorskip("faiss")
    index = ShardedIndex(_sharded(tmp_path))
    assert len(index.shards) == 3 and len(index) == 1000
    scores, hits = index.search(QUERIES, k=20, method=method)
    ref_s, ref_i = brute_force(QUERIES, EMB, 20)
    assert hits == [[IDS[i] for i in row] for row in ref_i]
    np.testing.assert_allclose(scores, ref_s, rtol=1e-4)
    assert index.meta == {"pooling": "mean"}


def test_single_directory_index_and_missing_index(tmp_path):
    save_embeddings(tmp_path / "one", IDS[:10], EMB[:10])
    assert shard_dirs(tmp_path / "one") == [tmp_path / "one"]
    _, hits = ShardedIndex(tmp_path / "one").search(QUERIES[:1], k=3)
    assert len(hits[0]) == 3
    with pytest.raises(DataError, match="no emb.npy"):
        ShardedIndex(tmp_path / "empty-not-there")


def test_meta_disagreement_and_bad_files(tmp_path):
    root = _sharded(tmp_path)
    (root / "shard-00001" / "meta.json").write_text(json.dumps({"pooling": "cls"}))
    with pytest.raises(DataError, match="pooling"):
        read_meta(root)
    with pytest.raises(DataError, match="newline"):
        save_embeddings(tmp_path / "x", ["a\nb"], EMB[:1])
    with pytest.raises(ConfigError, match="dtype"):
        save_embeddings(tmp_path / "x", ["a"], EMB[:1], dtype="int8")
    (root / "shard-00000" / "ids.txt").write_text("only-one\n")
    with pytest.raises(DataError, match="ids.txt has 1 ids"):
        load_embeddings(root / "shard-00000")


def test_dimension_mismatch_is_explained(tmp_path):
    save_embeddings(tmp_path, IDS[:4], EMB[:4])
    with pytest.raises(DataError, match="dimension 16"):
        ShardedIndex(tmp_path).search(np.ones((1, 8), np.float32), k=2)


def test_faiss_ivf_on_too_few_vectors_is_a_config_error():
    pytest.importorskip("faiss")
    with pytest.raises(ConfigError, match="could not train"):
        faiss_search(QUERIES, EMB[:10], k=5, factory="IVF64,Flat")


@pytest.mark.parametrize("method", ["exact", "faiss"])
def test_an_empty_shard_is_harmless(tmp_path, method):
    if method == "faiss":
        pytest.importorskip("faiss")
    save_embeddings(tmp_path / "shard-00000", [], EMB[:0])
    save_embeddings(tmp_path / "shard-00001", IDS[:3], EMB[:3])
    scores, hits = ShardedIndex(tmp_path).search(QUERIES[:2], k=5, method=method)
    assert [sorted(h) for h in hits] == [IDS[:3], IDS[:3]]
    assert scores.shape == (2, 3)


def test_exact_without_faiss_uses_numpy(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "faiss", None)       # import faiss raises ImportError
    scores, idx = exact_search(QUERIES, EMB, k=10, block_rows=333, query_block=4, device="cpu")
    np.testing.assert_array_equal(idx, brute_force(QUERIES, EMB, 10)[1])


def test_ids_are_read_as_one_arrow_array_and_rows_are_index_positions(tmp_path):
    from stages.lib.models.search import read_ids

    (tmp_path / "ids.txt").write_bytes(b"a\r\n\nb c\n")
    assert read_ids(tmp_path / "ids.txt").to_pylist() == ["a", "", "b c"]
    index = ShardedIndex(_sharded(tmp_path / "idx"))
    assert index.ids().to_pylist() == IDS
    scores, rows = index.search_rows(QUERIES, k=4)
    np.testing.assert_array_equal(rows, brute_force(QUERIES, EMB, 4)[1])
    small = tmp_path / "small"
    save_embeddings(small, IDS[:2], EMB[:2])
    scores, rows = ShardedIndex(small).search_rows(QUERIES[:1], k=4)
    assert rows.shape == (1, 2) and (rows >= 0).all()
    (small / "ids.txt").write_text("x\n")
    with pytest.raises(DataError, match="ids.txt has 1 ids but emb.npy has 2 rows"):
        ShardedIndex(small).search(QUERIES[:1], k=1)


@pytest.mark.parametrize("chunk_bytes", [1, 2, 5, 64, 1 << 20])
def test_ids_at_reads_only_the_asked_lines_in_chunks(tmp_path, chunk_bytes):
    from stages.lib.models.search import read_ids_at

    names = ["a", "", "bb c", "déjà", "x" * 9, "last"]
    path = tmp_path / "ids.txt"
    path.write_bytes("\r\n".join(names[:3]).encode() + b"\n" + "\n".join(names[3:]).encode())
    for rows in ([], [0], [5], [1, 2], [0, 3, 4, 5], list(range(6))):
        got = read_ids_at(path, rows, chunk_bytes=chunk_bytes)
        assert got.to_pylist() == [names[r] for r in rows]
    with pytest.raises(DataError, match="has 6 ids, asked for line 6"):
        read_ids_at(path, [2, 6], chunk_bytes=chunk_bytes)
    (tmp_path / "bad.txt").write_bytes(b"ok\n\xff\xfe\n")
    with pytest.raises(DataError, match="bad.txt: an id is not valid UTF-8"):
        read_ids_at(tmp_path / "bad.txt", [0, 1], chunk_bytes=chunk_bytes)
    index = ShardedIndex(_sharded(tmp_path / "idx"))              # shards of 300, 10, 690 rows
    rows = [0, 299, 300, 309, 310, 999]
    expected = [IDS[r] for r in rows]
    assert index.ids_at(rows).to_pylist() == expected == index.ids().take(rows).to_pylist()
    assert index.ids_at([]).to_pylist() == []


def test_exact_search_releases_memory_mapped_pages(tmp_path, monkeypatch):
    import stages.lib.models.search as search

    save_embeddings(tmp_path, IDS, EMB, dtype="float32")
    _, emb = load_embeddings(tmp_path)
    real, released = search.release_pages, []
    real(emb), real(EMB)                    # a memory map, a plain array (nothing to do)
    monkeypatch.setattr(search, "release_pages", lambda e: released.append(e is emb))
    exact_search(QUERIES, emb, k=3, block_rows=250, device="cpu")
    assert released == [True] * 4          # after each of the 4 blocks


def test_float32_memory_map_is_searched_in_one_scan_per_query_batch(tmp_path, monkeypatch):
    """A float32 index is read by faiss.knn whole (no block heaps restarted), SCAN_QUERIES
    queries per call, while pages_released drops its pages; its answer is the blocks' answer."""
    import stages.lib.models.search as search

    pytest.importorskip("faiss")
    save_embeddings(tmp_path, IDS, EMB, dtype="float32")
    _, emb = load_embeddings(tmp_path)
    tied = np.concatenate([QUERIES, np.zeros((1, 16), np.float32)])     # every score 0: ties
    blocks = exact_search(tied, emb, k=10, block_rows=128, device="cpu")
    monkeypatch.setattr(search, "SCAN_QUERIES", 3)                      # 3 calls for 8 queries
    calls = []
    real_knn = search._knn_one_scan
    monkeypatch.setattr(search, "_knn_one_scan", lambda *a: calls.append(1) or real_knn(*a))
    scores, rows = exact_search(tied, emb, k=10, device="cpu")
    assert calls == [1]
    np.testing.assert_array_equal(rows, blocks[1])
    np.testing.assert_allclose(scores, blocks[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(rows[:-1], brute_force(QUERIES, EMB, 10)[1])
    assert rows[-1].tolist() == list(range(10))                         # ties: lower rows first
    # float16, or more query batches than the page cache could serve: blocks, as before
    monkeypatch.setattr(search, "_page_cache_holds", lambda nbytes: False)
    exact_search(tied, emb, k=10, device="cpu")
    exact_search(tied[:3], emb.astype(np.float16), k=10, device="cpu")
    assert calls == [1]
    exact_search(tied[:3], emb, k=10, device="cpu")                     # one batch: one scan
    assert calls == [1, 1]


def test_pages_released_drops_pages_while_the_body_runs_and_once_after(tmp_path, monkeypatch):
    import time

    import stages.lib.models.search as search

    save_embeddings(tmp_path, IDS, EMB, dtype="float32")
    _, emb = load_embeddings(tmp_path)
    released = []
    monkeypatch.setattr(search, "release_pages", lambda e: released.append(e is emb))
    with search.pages_released(emb, every=0.01):
        time.sleep(0.2)
    during = len(released)
    assert during >= 5 and all(released)                 # about 20 in 0.2 s, the last at exit
    time.sleep(0.05)
    assert len(released) == during                       # the thread has stopped
    with search.pages_released(EMB, every=0.01):         # not a memory map: no thread
        time.sleep(0.05)
    assert len(released) == during
