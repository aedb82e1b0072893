"""Dense top-k search over saved embeddings: exact inner product (one scan or blocks), or faiss.

On disk an index shard is a directory with ``emb.npy`` (float16 or float32, one row per
passage) and ``ids.txt`` (one passage id per line, row-aligned). A sharded index step gathers its
shards as ``shard-00000/``, ``shard-00001/`` ... inside one directory; :class:`ShardedIndex`
searches each shard and merges the per-shard top-k.

Exact search never loads the memory-mapped matrix whole, so a 21M x 768 float16 index (32 GB)
is searched in a worker that holds about one block of it. A float32 index is searched in one
faiss scan while a thread drops the pages already read; float16 (converted block by block), CUDA
(blocks multiplied with torch) and an index the page cache cannot hold are read in row blocks.

    >>> q = np.array([[1.0, 0.0]], dtype=np.float32)
    >>> emb = np.array([[0.1, 0.0], [0.9, 0.1], [0.5, 0.5]], dtype=np.float32)
    >>> exact_search(q, emb, k=2, block_rows=2, device="cpu")
    (array([[0.9, 0.5]], dtype=float32), array([[1, 2]]))
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from orchestrator.api import ConfigError, DataError

log = logging.getLogger(__name__)

EMB_FILE, IDS_FILE, META_FILE = "emb.npy", "ids.txt", "meta.json"
DTYPES = ("float16", "float32")


# ----------------------------------------------------------------------------- storage

def save_embeddings(directory: str | Path, ids: Sequence[str], emb: np.ndarray,
                    dtype: str = "float16") -> Path:
    """Write ``emb.npy`` (as ``dtype``) and ``ids.txt`` into ``directory``; returns it."""
    if dtype not in DTYPES:
        raise ConfigError(f"embedding dtype must be one of {DTYPES}, got {dtype!r}")
    if emb.ndim != 2 or emb.shape[0] != len(ids):
        raise ValueError(f"{len(ids)} ids for an embedding matrix of shape {emb.shape}")
    bad = next((i for i in ids if "\n" in str(i) or "\r" in str(i)), None)
    if bad is not None:
        raise DataError(f"passage id {bad!r} contains a newline (ids.txt holds one id per line)")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    np.save(d / EMB_FILE, np.ascontiguousarray(emb, dtype=dtype))
    (d / IDS_FILE).write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    return d


def load_embeddings(directory: str | Path, mmap: bool = True) -> tuple[list[str], np.ndarray]:
    """``(ids, emb)`` of one shard directory; ``emb`` is memory-mapped read-only by default."""
    d = Path(directory)
    if not (d / EMB_FILE).is_file() or not (d / IDS_FILE).is_file():
        raise DataError(f"{d}: not an embeddings directory (expected {EMB_FILE} and {IDS_FILE})")
    emb = np.load(d / EMB_FILE, mmap_mode="r" if mmap else None)
    ids = (d / IDS_FILE).read_text(encoding="utf-8").splitlines()
    if emb.ndim != 2 or len(ids) != emb.shape[0]:
        raise DataError(f"{d}: {IDS_FILE} has {len(ids)} ids but {EMB_FILE} has shape "
                        f"{emb.shape}")
    return ids, emb


def read_ids(path: str | Path, written_by_hand: bool = False):
    """The ids of an ``ids.txt`` as a ``pyarrow.LargeStringArray``, built from the file's bytes.

    No Python string per id: 21M ids cost their bytes plus 8 bytes each, not about 60. With
    ``written_by_hand`` (a file the user gives, as ``import_embeddings``' ids), a UTF-8
    byte-order mark is dropped (it is no part of the first id), empty lines at the end are not
    ids and an empty line before an id is a ``DataError`` naming it
    (:func:`_without_blank_lines`); an index's own ``ids.txt`` is read as written, as
    :func:`read_ids_at` reads it.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "ids.txt"
    >>> _ = p.write_text("a\\nbc\\n")
    >>> read_ids(p).to_pylist()
    ['a', 'bc']
    >>> _ = p.write_bytes("\\ufeffa\\r\\nbc\\r\\n\\r\\n".encode())
    >>> read_ids(p, written_by_hand=True).to_pylist()
    ['a', 'bc']
    """
    import pyarrow as pa

    data = np.fromfile(path, dtype=np.uint8)
    if written_by_hand and data[:3].tobytes() == b"\xef\xbb\xbf":
        data = data[3:]
    if (data == 13).any():                            # "\\r\\n" line ends
        data = data[data != 13]
    if written_by_hand:
        data = _without_blank_lines(data, path)
    if len(data) == 0:
        return pa.array([], pa.large_string())
    if data[-1] != 10:
        data = np.append(data, np.uint8(10))          # no final newline
    ends = np.flatnonzero(data == 10)                 # one "\\n" after each id
    starts = np.concatenate([[0], ends[:-1] + 1])
    offsets = np.append(starts - np.arange(len(ends)), len(data) - len(ends)).astype(np.int64)
    return pa.LargeStringArray.from_buffers(len(ends), pa.py_buffer(offsets),
                                            pa.py_buffer(data[data != 10]))


def _without_blank_lines(data: np.ndarray, path: str | Path) -> np.ndarray:
    """The bytes of a hand-written id file (``\\r`` removed) less its trailing empty lines, which
    an editor may leave and which hold no id; an empty line before the last id is refused,
    naming it, since every later id would pair with the row before its own.

    >>> ids = np.frombuffer(b"a\\nb\\n\\n\\n", dtype=np.uint8)
    >>> _without_blank_lines(ids, "ids.txt").tobytes()
    b'a\\nb\\n'
    >>> _without_blank_lines(np.frombuffer(b"a\\n\\nb\\n", dtype=np.uint8), "ids.txt")
    Traceback (most recent call last):
    orchestrator.errors.DataError: ids.txt line 2: an empty line, expected one passage id per ...
    """
    # memory: boolean temporaries of the file's size and the newlines' positions, never an
    # index of every byte (21M ids: 740 MB more)
    last = len(data) - int(np.argmax(data[::-1] != 10)) if (data != 10).any() else 0
    if last == 0:
        return data[:0]
    data = data[:last + 1]                            # up to the last id's "\\n", if it has one
    ends = np.flatnonzero(data == 10)
    blank = ends[np.diff(ends, prepend=-1) == 1]      # a "\\n" right after another, or first
    if len(blank):
        line = int(np.searchsorted(ends, blank[0])) + 1
        raise DataError(f"{path} line {line}: an empty line, expected one passage id per line, "
                        "row-aligned with the vectors; remove it, or write the id of that row")
    return data


def read_ids_at(path: str | Path, rows, chunk_bytes: int = 4 * 2**20):
    """The ids on lines ``rows`` (sorted, unique, 0-based) of an ``ids.txt``, read in chunks, as
    a ``pyarrow.LargeStringArray``.

    Memory is one chunk plus the ids asked for, whatever the file's size: a retrieve shard
    that needs the ids of its hits no longer holds the whole id column (21M ids of psgs_w100:
    about 380 MB in every shard). The lines are cut out with numpy, without a Python string per
    id (500,000 of 2,000,000 ids: 0.1 s and 28 MiB, where a list of strings took 0.5 s and
    57 MiB that the process kept).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "ids.txt"
    >>> _ = p.write_bytes(b"a\\r\\nbc\\nd")
    >>> read_ids_at(p, [0, 2], chunk_bytes=3).to_pylist()
    ['a', 'd']
    """
    import pyarrow as pa

    rows = np.asarray(rows, dtype=np.int64)
    pieces: list = []
    line, tail, at = 0, b"", 0
    with open(path, "rb") as f:
        while at < len(rows):
            block = f.read(chunk_bytes)
            data = tail + block if tail else block
            if not block:                              # last line without a newline
                data += b"\n"
            buf = np.frombuffer(data, dtype=np.uint8)
            ends = np.flatnonzero(buf == 10)
            stop = int(np.searchsorted(rows, line + len(ends)))
            if at < stop:
                pieces.append(_lines_at(buf, ends, rows[at:stop] - line))
            at, line = stop, line + len(ends)
            tail = data[int(ends[-1]) + 1:] if len(ends) else data
            if not block:
                break
    if at < len(rows):
        raise DataError(f"{path}: has {line} ids, asked for line {int(rows[at])}")
    out = pa.concat_arrays(pieces) if pieces else pa.array([], pa.large_string())
    try:
        out.validate(full=True)
    except pa.ArrowInvalid as exc:
        raise DataError(f"{path}: an id is not valid UTF-8 ({exc})") from exc
    return out


def _lines_at(buf: np.ndarray, ends: np.ndarray, lines: np.ndarray):
    """Lines ``lines`` of the bytes ``buf``, whose newlines are at ``ends``, as one
    ``pyarrow.LargeStringArray`` (a line's final "\\r" dropped)."""
    import pyarrow as pa

    stop = ends[lines]
    start = np.where(lines > 0, ends[np.maximum(lines - 1, 0)] + 1, 0)
    stop = stop - ((stop > start) & (buf[np.maximum(stop - 1, 0)] == 13))
    offsets = np.zeros(len(lines) + 1, dtype=np.int64)
    np.cumsum(stop - start, out=offsets[1:])
    gather = np.repeat(start - offsets[:-1], stop - start) + np.arange(offsets[-1])
    return pa.LargeStringArray.from_buffers(len(lines), pa.py_buffer(offsets),
                                            pa.py_buffer(buf[gather]))


def shard_dirs(root: str | Path) -> list[Path]:
    """The shard directories of an index: ``root`` itself, or its sorted ``shard-*`` children."""
    root = Path(root)
    if (root / EMB_FILE).is_file():
        return [root]
    shards = sorted(p for p in root.glob("shard-*") if (p / EMB_FILE).is_file())
    if not shards:
        raise DataError(f"{root}: no {EMB_FILE} and no shard-*/{EMB_FILE} inside "
                        f"(is this an index step's output?)")
    return shards


def read_meta(root: str | Path) -> dict:
    """The index's ``meta.json``: at the root, or the shards' (which must all agree)."""
    root = Path(root)
    if (root / META_FILE).is_file():
        return json.loads((root / META_FILE).read_text())
    metas = [json.loads((d / META_FILE).read_text())
             for d in shard_dirs(root) if (d / META_FILE).is_file()]
    if not metas:
        return {}
    keys = set().union(*metas) - {"num_rows", "shard_index", "num_shards", "seconds"}
    for key in sorted(keys):
        values = {json.dumps(m.get(key), sort_keys=True) for m in metas}
        if len(values) > 1:
            raise DataError(f"{root}: shards disagree on meta.json '{key}': {sorted(values)}")
    return {k: metas[0].get(k) for k in sorted(keys)}


# ----------------------------------------------------------------------------- exact search

def _auto_device(device: str | None) -> str:
    if device is not None:
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def _topk_columns(scores: np.ndarray, indices: np.ndarray, k: int) -> np.ndarray:
    """Column positions of the top-k per row (score descending, then index ascending)."""
    cols = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    if scores.shape[1] > k:
        cols = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    s = np.take_along_axis(scores, cols, axis=1)
    i = np.take_along_axis(indices, cols, axis=1)
    order = np.lexsort((i, -s), axis=1)
    return np.take_along_axis(cols, order, axis=1)


def _merge_topk(scores: np.ndarray, indices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k per row of ``scores`` and their ``indices``, sorted best first."""
    cols = _topk_columns(scores, indices, k)
    return np.take_along_axis(scores, cols, axis=1), np.take_along_axis(indices, cols, axis=1)


BLOCK_BYTES = 128 * 2**20   # float32 bytes of one block of index rows (exact search)


def block_rows_for(dim: int, block_bytes: int = BLOCK_BYTES) -> int:
    """Index rows per exact-search block: ``block_bytes`` of float32 rows, at least 1024.

    Why 128 MiB and not less: faiss starts each block with empty top-k heaps, so a block of B
    rows costs about k * (1 + ln(B / k)) heap insertions per query, and the whole scan that many
    per block. At 2M x 384-d rows, k = 50, 10k queries, 32 MiB blocks (92 of them) cost 4-9%
    more CPU than one faiss search over the whole index, and 128 MiB blocks (24) about 3% on a
    faster machine (bench/README.md), which is why a float32 index is scanned at once
    (:func:`exact_search`). Memory: one block, released after it is searched.

    >>> block_rows_for(384)
    87381
    """
    return max(1024, block_bytes // (4 * dim))


def release_pages(emb: np.ndarray) -> None:
    """Drop a memory map's resident pages from this process (they stay in the page cache).

    A scan over a memory-mapped index otherwise leaves every page it touched in the process'
    resident set, so a worker would show the whole index as its memory; after this it holds one
    block. No-op for arrays that are not memory maps.
    """
    import mmap

    mm = getattr(emb, "_mmap", None)
    if mm is not None and hasattr(mm, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mm.madvise(mmap.MADV_DONTNEED)


RELEASE_EVERY_S = 0.05   # how often pages_released drops the pages a scan has read


@contextmanager
def pages_released(emb: np.ndarray, every: float = RELEASE_EVERY_S) -> Iterator[None]:
    """While the body runs, a thread calls :func:`release_pages` on ``emb`` every ``every``
    seconds, and once more at the end.

    For one long native call that reads a whole memory map (``faiss.knn`` releases the GIL while
    it searches): the process then holds the pages read in the last ``every`` seconds, not the
    whole index (2M x 384 float32, 2.9 GiB: a peak of 110 MiB for the whole search). Dropping a
    page the call still reads is safe: the map is read-only and backed by the file, so the page
    is mapped again from the page cache. No thread for an array that is not a memory map.
    """
    if getattr(emb, "_mmap", None) is None:
        yield
        return
    done = threading.Event()

    def release_until_done() -> None:
        while not done.wait(every):
            release_pages(emb)

    thread = threading.Thread(target=release_until_done, name="release-pages", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        release_pages(emb)


def _page_cache_holds(nbytes: int) -> bool:
    """Whether ``nbytes`` fit in this machine's available memory (``MemAvailable``), so that a
    file of that size read more than once is read from the page cache, not from the disk."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return nbytes <= int(line.split()[1]) * 1024
    except OSError:
        pass
    return False


SCAN_QUERIES = 4096   # faiss' own query block (distance_compute_blas_query_bs): one scan each


def _knn_one_scan(q: np.ndarray, emb: np.ndarray, k: int, faiss, progress: Callable | None):
    """Top-``k`` of the whole float32 ``emb`` per query with ``faiss.knn``, ``SCAN_QUERIES``
    queries per call (each call reads ``emb`` once, as faiss' own loop would), while
    :func:`pages_released` keeps the memory map's resident pages few."""
    s_parts, i_parts = [], []
    starts = range(0, len(q), SCAN_QUERIES)
    with pages_released(emb):
        for lo in (progress(starts) if progress is not None else starts):
            s, i = faiss.knn(q[lo:lo + SCAN_QUERIES], emb, k, metric=faiss.METRIC_INNER_PRODUCT)
            s_parts.append(s)
            i_parts.append(i)
    return _merge_topk(np.concatenate(s_parts), np.concatenate(i_parts), k)


def _faiss_or_none():
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def _knn_numpy(q: np.ndarray, block: np.ndarray, k: int, query_block: int):
    """Top-``k`` of one float32 block per query (unsorted), with numpy."""
    s_parts, i_parts = [], []
    for qs in range(0, len(q), query_block):
        sc = q[qs:qs + query_block] @ block.T
        if k < sc.shape[1]:
            part = np.argpartition(-sc, k - 1, axis=1)[:, :k]
        else:
            part = np.broadcast_to(np.arange(sc.shape[1]), sc.shape).copy()
        s_parts.append(np.take_along_axis(sc, part, axis=1))
        i_parts.append(part.astype(np.int64))
    return np.concatenate(s_parts), np.concatenate(i_parts)


def _knn_torch(q_dev, block: np.ndarray, k: int, query_block: int):
    """Top-``k`` of one float32 block per query, with torch on the device of the queries
    ``q_dev``: ``query_block`` queries at a time, so the device holds one ``query_block`` x
    block score matrix (150k queries x a 128 MiB block would be 26 GB)."""
    import torch

    b = torch.from_numpy(block).to(q_dev.device)
    s_parts, i_parts = [], []
    for qs in range(0, len(q_dev), query_block):
        s, i = torch.topk(q_dev[qs:qs + query_block] @ b.T, k, dim=1)
        s_parts.append(s.cpu().numpy())
        i_parts.append(i.cpu().numpy().astype(np.int64))
    return np.concatenate(s_parts), np.concatenate(i_parts)


def exact_search(query_emb: np.ndarray, emb: np.ndarray, k: int, block_rows: int | None = None,
                 query_block: int = 1024, device: str | None = None,
                 progress: Callable | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` rows of ``emb`` by inner product with each query.

    Returns ``(scores, indices)``, both ``(num_queries, min(k, len(emb)))``, best first. Among
    rows tied at the k-th score, faiss's one scan keeps the lower rows; the blocked searches
    and the numpy and torch paths may keep others (deterministic for one path and block size,
    not across them). Memory stays at about one block of ``emb`` whatever its size, when it is
    a memory map:

    - On CPU with faiss installed, a float32 ``emb`` is searched by ``faiss.knn`` over all its
      rows at once (:func:`_knn_one_scan`; as fast as a faiss ``IndexFlatIP`` holding it) while
      a thread drops the pages already read (:func:`pages_released`). Where there are more
      than ``SCAN_QUERIES`` queries, each batch reads ``emb`` once, so this needs the page cache
      to hold ``emb``; where it cannot, ``emb`` is read in blocks as below.
    - Otherwise ``emb`` is read ``block_rows`` rows at a time (each block once; None: 128 MiB
      of float32 rows), converted to float32, and its pages are released after each block. A
      block is searched with ``faiss.knn`` and merged into one ``faiss.ResultHeap``; without
      faiss, with numpy; with ``device`` "cuda" (None picks CUDA if present), with torch. On
      CUDA, and with numpy, ``query_block`` queries are scored against a block at a time.

    Passing ``block_rows`` asks for blocks.
    """
    q = np.ascontiguousarray(query_emb, dtype=np.float32)
    if q.ndim != 2 or emb.ndim != 2 or q.shape[1] != emb.shape[1]:
        raise ValueError(f"query shape {q.shape} does not match embeddings shape {emb.shape}")
    n, k = emb.shape[0], min(k, emb.shape[0])
    best_s = np.full((len(q), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(q), 0), dtype=np.int64)
    if k <= 0 or len(q) == 0:
        return best_s[:, :0], best_i[:, :0]
    device = _auto_device(device)
    faiss = None if device.startswith("cuda") else _faiss_or_none()
    one_scan = (len(q) <= SCAN_QUERIES or getattr(emb, "_mmap", None) is None
                or _page_cache_holds(emb.nbytes))
    if (faiss is not None and block_rows is None and emb.dtype == np.float32
            and emb.flags.c_contiguous and one_scan):
        return _knn_one_scan(q, emb, k, faiss, progress)
    heap = faiss.ResultHeap(len(q), k, keep_max=True) if faiss is not None else None
    block_rows = block_rows or block_rows_for(emb.shape[1])
    if device.startswith("cuda"):
        import torch
        q_dev = torch.from_numpy(q).to(device)
    starts = range(0, n, block_rows)
    for start in (progress(starts) if progress is not None else starts):
        block = np.ascontiguousarray(emb[start:start + block_rows], dtype=np.float32)
        kb = min(k, len(block))
        if heap is not None:        # faiss: BLAS + a heap per block, merged into one heap
            s, i = faiss.knn(q, block, kb, metric=faiss.METRIC_INNER_PRODUCT)
            heap.add_result(s, i + start)
        elif device.startswith("cuda"):
            s, i = _knn_torch(q_dev, block, kb, query_block)
        else:
            s, i = _knn_numpy(q, block, kb, query_block)
        del block
        release_pages(emb)
        if heap is None:
            best_s, best_i = _merge_topk(np.concatenate([best_s, s.astype(np.float32)], axis=1),
                                         np.concatenate([best_i, i + start], axis=1), k)
    if heap is not None:
        heap.finalize()
        best_s, best_i = _merge_topk(heap.D, heap.I, k)    # score descending, then row
    return best_s, best_i


# ----------------------------------------------------------------------------- faiss

def _import_faiss():
    try:
        import faiss
    except ImportError as exc:
        raise ConfigError("search 'faiss' needs the faiss package",
                          hint="pip install faiss-cpu (or faiss-gpu-cu12), or set search: exact"
                          ) from exc
    return faiss


def build_faiss_index(emb: np.ndarray, factory: str = "Flat", use_gpu: bool = False,
                      add_rows: int = 1_000_000, train_rows: int = 262_144, seed: int = 0):
    """A faiss inner-product index over ``emb`` (added in chunks; trained on a sample if needed)."""
    faiss = _import_faiss()
    n, dim = emb.shape
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise ConfigError(f"faiss factory string {factory!r} was rejected: {exc}".splitlines()[0],
                          hint="try 'Flat', 'IVF256,Flat' or 'HNSW32'") from exc
    if use_gpu:
        if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
            raise ConfigError("faiss use_gpu is set but faiss has no GPU support or sees no GPU",
                              hint="pip install faiss-gpu-cu12, or set use_gpu: false")
        index = faiss.index_cpu_to_all_gpus(index)
    if not index.is_trained and n > 0:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=min(n, train_rows),
                                                          replace=False))
        try:
            index.train(np.ascontiguousarray(emb[rows], dtype=np.float32))
        except RuntimeError as exc:
            raise ConfigError(f"faiss could not train {factory!r} on {len(rows)} vectors: "
                              f"{str(exc).strip().splitlines()[-1]}",
                              hint="use fewer IVF lists (e.g. IVF16,Flat) or 'Flat' for a small "
                                   "index shard") from exc
    for start in range(0, n, add_rows):
        index.add(np.ascontiguousarray(emb[start:start + add_rows], dtype=np.float32))
    return index


def _set_search_params(index, nprobe: int, ef_search: int) -> None:
    """``nprobe``/``efSearch`` on ``index`` and every index inside it, where it has them.

    A faiss built with GPU support sets them with its ``GpuParameterSpace``, whatever the index:
    ``index_cpu_to_all_gpus`` over several GPUs returns an ``IndexReplicas`` (a CPU class) of
    GPU indexes, whose ``nprobe`` only the GPU parameter space knows; on a CPU index it does
    what ``ParameterSpace`` does.
    """
    faiss = _import_faiss()
    params = getattr(faiss, "GpuParameterSpace", faiss.ParameterSpace)()
    for name, value in (("nprobe", nprobe), ("efSearch", ef_search)):
        try:
            params.set_index_parameter(index, name, value)
        except RuntimeError:
            pass  # not a parameter of this index type


def faiss_search(query_emb: np.ndarray, emb: np.ndarray, k: int, factory: str = "Flat",
                 nprobe: int = 32, ef_search: int = 128, use_gpu: bool = False,
                 index=None) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` by inner product with faiss; ``(scores, indices)`` like :func:`exact_search`.

    Builds the index from ``emb`` unless a prebuilt ``index`` is given. Approximate factories
    ("IVF256,Flat", "HNSW32") may return fewer than k hits: those rows are dropped per query by
    the caller via index -1.
    """
    if index is None:
        index = build_faiss_index(emb, factory=factory, use_gpu=use_gpu)
    _set_search_params(index, nprobe, ef_search)
    k = min(k, index.ntotal)
    if k <= 0 or len(query_emb) == 0:
        return (np.zeros((len(query_emb), 0), np.float32), np.zeros((len(query_emb), 0), np.int64))
    scores, indices = index.search(np.ascontiguousarray(query_emb, dtype=np.float32), k)
    return scores.astype(np.float32), indices.astype(np.int64)


# ----------------------------------------------------------------------------- sharded index

class ShardedIndex:
    """An index directory of one or more shards, searched shard by shard, top-k merged.

    >>> idx = ShardedIndex("runs/.../index")                    # doctest: +SKIP
    >>> scores, ids = idx.search(query_emb, k=50)              # doctest: +SKIP
    >>> ids[0][:2]                                              # doctest: +SKIP
    ['wiki:123', 'wiki:9']
    """

    def __init__(self, root: str | Path, mmap: bool = True):
        self.root = Path(root)
        self.shards = shard_dirs(self.root)
        self.mmap = mmap
        self.meta = read_meta(self.root)

    def __len__(self) -> int:
        return sum(np.load(d / EMB_FILE, mmap_mode="r").shape[0] for d in self.shards)

    def ids(self):
        """Every shard's ids in index row order, as one ``pyarrow.LargeStringArray``."""
        import pyarrow as pa

        if getattr(self, "_ids", None) is None:
            parts = []
            for d in self.shards:
                ids, rows = read_ids(d / IDS_FILE), np.load(d / EMB_FILE, mmap_mode="r").shape[0]
                if len(ids) != rows:
                    raise DataError(f"{d}: {IDS_FILE} has {len(ids)} ids but {EMB_FILE} has "
                                    f"{rows} rows")
                parts.append(ids)
            self._ids = pa.concat_arrays(parts) if len(parts) > 1 else parts[0]
        return self._ids

    def ids_at(self, rows):
        """The ids of index ``rows`` (sorted, unique; shard after shard as :meth:`ids`) as a
        ``pyarrow.LargeStringArray``, read shard by shard without keeping any shard's whole id
        column."""
        import pyarrow as pa

        rows = np.asarray(rows, dtype=np.int64)
        parts, offset = [], 0
        for d in self.shards:
            n = np.load(d / EMB_FILE, mmap_mode="r").shape[0]
            lo, hi = np.searchsorted(rows, [offset, offset + n])
            if lo < hi:
                parts.append(read_ids_at(d / IDS_FILE, rows[lo:hi] - offset))
            offset += n
        return pa.concat_arrays(parts) if parts else pa.array([], pa.large_string())

    def search(self, query_emb: np.ndarray, k: int, method: str = "exact",
               **options) -> tuple[np.ndarray, list[list[str]]]:
        """``(scores, ids)`` per query, best first, merged over shards.

        ``scores`` is ``(num_queries, k')`` float32 with ``-inf`` padding where fewer than k hits
        exist; ``ids[q]`` lists only the real hits. Options as :meth:`search_rows`.
        """
        scores, rows = self.search_rows(query_emb, k, method, **options)
        found = rows >= 0
        names = self.ids().take(rows[found]).to_pylist()
        ends = np.cumsum(found.sum(axis=1))
        return scores, [names[e - c:e] for e, c in zip(ends, found.sum(axis=1))]

    def search_rows(self, query_emb: np.ndarray, k: int, method: str = "exact", *,
                    factory: str = "Flat", nprobe: int = 32, ef_search: int = 128,
                    use_gpu: bool = False, device: str | None = None,
                    block_rows: int | None = None,
                    progress: Callable | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, rows)`` per query, best first, merged over shards.

        ``rows`` are index rows (shard after shard, as :meth:`ids`), ``-1`` with a ``-inf``
        score where fewer than k hits exist. An index built by the ``index`` stage has its rows
        in corpus order, so a row is also the passage's corpus position.
        """
        if method not in ("exact", "faiss"):
            raise ConfigError(f"search must be 'exact' or 'faiss', got {method!r}")
        all_s, all_i, offset = [], [], 0
        shards = self.shards if progress is None else progress(self.shards)
        for d in shards:
            emb = np.load(d / EMB_FILE, mmap_mode="r" if self.mmap else None)
            if emb.ndim != 2 or emb.shape[1] != query_emb.shape[1]:
                raise DataError(f"{d}: index dimension {emb.shape[-1]} but queries have "
                                f"{query_emb.shape[1]} (was the index built with this encoder?)")
            if method == "exact":
                s, i = exact_search(query_emb, emb, k, block_rows=block_rows, device=device)
            else:
                s, i = faiss_search(query_emb, emb, k, factory=factory, nprobe=nprobe,
                                    ef_search=ef_search, use_gpu=use_gpu)
            all_s.append(np.where(i < 0, -np.inf, s).astype(np.float32))
            all_i.append(np.where(i < 0, np.iinfo(np.int64).max, i + offset))
            offset += emb.shape[0]
            del emb
        scores, rows = np.concatenate(all_s, axis=1), np.concatenate(all_i, axis=1)
        cols = _topk_columns(scores, rows, k)
        scores = np.take_along_axis(scores, cols, axis=1)
        rows = np.take_along_axis(rows, cols, axis=1)
        rows[~np.isfinite(scores) | (rows == np.iinfo(np.int64).max)] = -1
        return scores, rows
