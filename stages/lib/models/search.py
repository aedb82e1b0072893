"""Dense top-k search over saved embeddings: exact blocked inner product, or faiss.

On disk an index shard is a directory with ``emb.npy`` (float16 or float32, one row per
passage) and ``ids.txt`` (one passage id per line, row-aligned). A sharded index step gathers its
shards as ``shard-00000/``, ``shard-00001/`` ... inside one directory; :class:`ShardedIndex`
searches each shard and merges the per-shard top-k.

Exact search reads the memory-mapped matrix in row blocks, so a 21M x 768 float16 index (32 GB)
is searched without loading it whole; on CUDA the blocks are multiplied with torch.

    >>> q = np.array([[1.0, 0.0]], dtype=np.float32)
    >>> emb = np.array([[0.1, 0.0], [0.9, 0.1], [0.5, 0.5]], dtype=np.float32)
    >>> exact_search(q, emb, k=2, block_rows=2, device="cpu")
    (array([[0.9, 0.5]], dtype=float32), array([[1, 2]]))
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
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


def exact_search(query_emb: np.ndarray, emb: np.ndarray, k: int, block_rows: int = 262_144,
                 query_block: int = 1024, device: str | None = None,
                 progress: Callable | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` rows of ``emb`` by inner product with each query.

    ``emb`` may be a memory map: it is read ``block_rows`` rows at a time (each block once).
    Returns ``(scores, indices)``, both ``(num_queries, min(k, len(emb)))``, best first; ties go
    to the lower row. ``device`` "cuda" multiplies blocks with torch; None picks CUDA if present.
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
    if device.startswith("cuda"):
        import torch
        q_dev = torch.from_numpy(q).to(device)
    starts = range(0, n, block_rows)
    for start in (progress(starts) if progress is not None else starts):
        block = np.asarray(emb[start:start + block_rows])
        kb = min(k, len(block))
        if device.startswith("cuda"):
            b = torch.from_numpy(np.ascontiguousarray(block)).to(device).float()
            s, i = torch.topk(q_dev @ b.T, kb, dim=1)
            s, i = s.cpu().numpy(), i.cpu().numpy().astype(np.int64)
        else:
            block = block.astype(np.float32, copy=False)
            s_parts, i_parts = [], []
            for qs in range(0, len(q), query_block):
                sc = q[qs:qs + query_block] @ block.T
                if kb < sc.shape[1]:
                    part = np.argpartition(-sc, kb - 1, axis=1)[:, :kb]
                else:
                    part = np.broadcast_to(np.arange(sc.shape[1]), sc.shape).copy()
                s_parts.append(np.take_along_axis(sc, part, axis=1))
                i_parts.append(part.astype(np.int64))
            s, i = np.concatenate(s_parts), np.concatenate(i_parts)
        best_s, best_i = _merge_topk(np.concatenate([best_s, s.astype(np.float32)], axis=1),
                                     np.concatenate([best_i, i + start], axis=1), k)
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
    faiss = _import_faiss()
    params = faiss.GpuParameterSpace() if "Gpu" in type(index).__name__ else faiss.ParameterSpace()
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

    def search(self, query_emb: np.ndarray, k: int, method: str = "exact", *,
               factory: str = "Flat", nprobe: int = 32, ef_search: int = 128,
               use_gpu: bool = False, device: str | None = None, block_rows: int = 262_144,
               progress: Callable | None = None) -> tuple[np.ndarray, list[list[str]]]:
        """``(scores, ids)`` per query, best first, merged over shards.

        ``scores`` is ``(num_queries, k')`` float32 with ``-inf`` padding where fewer than k hits
        exist; ``ids[q]`` lists only the real hits.
        """
        if method not in ("exact", "faiss"):
            raise ConfigError(f"search must be 'exact' or 'faiss', got {method!r}")
        all_s, all_i, all_ids, offset = [], [], [], 0
        shards = self.shards if progress is None else progress(self.shards)
        for d in shards:
            ids, emb = load_embeddings(d, mmap=self.mmap)
            if emb.shape[1] != query_emb.shape[1]:
                raise DataError(f"{d}: index dimension {emb.shape[1]} but queries have "
                                f"{query_emb.shape[1]} (was the index built with this encoder?)")
            if method == "exact":
                s, i = exact_search(query_emb, emb, k, block_rows=block_rows, device=device)
            else:
                s, i = faiss_search(query_emb, emb, k, factory=factory, nprobe=nprobe,
                                    ef_search=ef_search, use_gpu=use_gpu)
            all_s.append(np.where(i < 0, -np.inf, s).astype(np.float32))
            all_i.append(np.where(i < 0, np.iinfo(np.int64).max, i + offset))
            names = np.empty(i.shape, dtype=object)   # only this shard's hits keep their ids
            for (r, c), row in np.ndenumerate(i):
                names[r, c] = ids[row] if row >= 0 else None
            all_ids.append(names)
            offset += len(ids)
        scores, rows = np.concatenate(all_s, axis=1), np.concatenate(all_i, axis=1)
        cols = _topk_columns(scores, rows, k)
        scores = np.take_along_axis(scores, cols, axis=1)
        names = np.take_along_axis(np.concatenate(all_ids, axis=1), cols, axis=1)
        hits = [[n for n, s in zip(nn, ss) if n is not None and np.isfinite(s)]
                for nn, ss in zip(names, scores)]
        return scores, hits
