"""Stage ``import_embeddings``: an index from passage embeddings computed elsewhere.

For users who already encoded their corpus, e.g. the Contriever-MSMARCO embeddings of psgs_w100
behind the seeds' retriever (SEEDS 0.1, ``wikipedia_embeddings/passages_*``: pickles of
``(ids, embeddings)``, which we do not load: convert each once with ``numpy.save``). Inputs:

- ``vectors``: a ``.npy`` or ``.safetensors`` file, or a directory of them read in natural
  name order (``emb_2`` before ``emb_10``), each a ``(rows, dim)`` float16/float32 matrix
  (safetensors: the file's only tensor, or the one named by ``tensor``). ``.npy`` files are
  memory-mapped and safetensors read in slices, so a 32 GB matrix is copied a chunk at a time.
- ``ids``: a text file with one passage id per line, row-aligned with the vectors (file after
  file; the log lists the files in the order read, with their rows). Empty lines at the end are
  not ids; an empty line before an id is refused.
- ``corpus``: the passages; every id must be one of them.

The output is the ``index`` stage's artifact: ``shard-00000/``, ``shard-00001/``, ... (one per
input file) with ``emb.npy``, ``ids.txt`` and ``meta.json`` (``pooling``/``normalize`` as
declared here, so ``retrieve`` checks its query encoder against them), searched by
:class:`stages.lib.models.search.ShardedIndex`. The rows need not be in corpus order: retrieve
then finds the passages by id.

A stage of its own rather than an option of ``index``: it has no encoder, runs as one task
(``index`` shards over the corpus), and its inputs are files, not the corpus' rows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from annotated_types import Ge

from orchestrator.api import DataError, File, StageContext, nonsemantic, stage
from stages.schemas import Embeddings, OneFile, Passages

SUFFIXES = (".npy", ".safetensors")
PICKLES = (".pkl", ".pickle", ".pt", ".pth", ".bin")


@dataclass
class ImportEmbeddingsConfig:
    pooling: Literal["mean", "cls"] = "mean"  # how the vectors were pooled (Contriever: mean)
    normalize: bool = False                   # unit-length vectors (Contriever: no)
    dim: Annotated[int, Ge(1)] | None = None  # expected dimension; None: as the files say
    dtype: Literal["float16", "float32"] | None = None  # stored; None: the files' own
    tensor: str | None = None                 # safetensors tensor name; None: the only one
    chunk_rows: Annotated[int, Ge(1)] = nonsemantic(262_144)  # rows copied at a time


def natural_key(name: str) -> tuple:
    """A file name's sort key in which a number counts as one: shards written ``emb_0`` ...
    ``emb_11`` sort in the order they were written (in plain name order ``emb_10`` came before
    ``emb_2``, and the rows paired with the wrong ids without an error). The name itself breaks
    a tie (``emb_01``, ``emb_1``).

    >>> sorted(["emb_10.npy", "emb_2.npy", "emb_1.npy", "passages_00"], key=natural_key)
    ['emb_1.npy', 'emb_2.npy', 'emb_10.npy', 'passages_00']
    """
    parts = re.split(r"(\d+)", name)
    return [int(p) if i % 2 else p for i, p in enumerate(parts)], name


def vector_files(path: Path) -> list[Path]:
    """The vector files of a ``vectors`` input (a file, or a directory's files in natural name
    order, :func:`natural_key`)."""
    files = [path]
    if path.is_dir():
        files = sorted((f for f in path.iterdir() if f.is_file()),
                       key=lambda f: natural_key(f.name))
    for f in files:
        if f.suffix.lower() in PICKLES:
            raise DataError(f"{f}: pickles are refused: convert with numpy.save "
                            f"(np.save('{f.stem}.npy', embeddings)) or safetensors")
    vectors = [f for f in files if f.suffix.lower() in SUFFIXES]
    if not vectors:
        raise DataError(f"{path}: no .npy or .safetensors file (expected a (rows, dim) float16 or "
                        f"float32 matrix)")
    return vectors


class Matrix:
    """One vector file opened without reading it whole: ``.shape``, ``.dtype``, ``rows(a, b)``."""

    def __init__(self, path: Path, tensor: str | None):
        import numpy as np

        self.path = path
        if path.suffix.lower() == ".npy":
            try:
                self._arr = np.load(path, mmap_mode="r", allow_pickle=False)
            except ValueError as e:   # an object array needs pickle
                raise DataError(f"{path}: {e} (pickles are refused: save a float matrix with "
                                f"numpy.save)") from None
            self.shape, self.dtype = self._arr.shape, str(self._arr.dtype)
            self.rows = lambda a, b: self._arr[a:b]
        else:
            self._open_safetensors(path, tensor)

    def _open_safetensors(self, path: Path, tensor: str | None) -> None:
        from safetensors import safe_open

        names = {"F16": "float16", "F32": "float32", "F64": "float64", "BF16": "bfloat16"}
        f = safe_open(str(path), framework="np")
        keys = list(f.keys())
        if tensor is None and len(keys) != 1:
            raise DataError(f"{path}: {len(keys)} tensors {keys[:5]}; set tensor: NAME")
        if tensor is not None and tensor not in keys:
            raise DataError(f"{path}: no tensor {tensor!r}; tensors: {keys[:5]}")
        sl = f.get_slice(tensor or keys[0])
        self.shape = tuple(sl.get_shape())
        self.dtype = names.get(sl.get_dtype(), sl.get_dtype())
        self._file = f               # keeps the file open for the slices
        self.rows = lambda a, b: sl[a:min(b, self.shape[0])]   # slices do not clamp


def check_matrices(mats: list[Matrix], dim: int | None) -> int:
    """The common dimension of the vector files, or a one-line error naming the bad file."""
    for m in mats:
        if m.dtype not in ("float16", "float32"):
            raise DataError(f"{m.path}: dtype {m.dtype}, expected float16 or float32 (convert with "
                            f"numpy: emb.astype('float32'))")
        if len(m.shape) != 2:
            raise DataError(f"{m.path}: shape {m.shape}, expected (rows, dim)")
        want = dim if dim is not None else mats[0].shape[1]
        if m.shape[1] != want:
            source = "dim in the step's config" if dim is not None else f"{mats[0].path.name}"
            raise DataError(f"{m.path}: dimension {m.shape[1]}, expected {want} ({source})")
    return mats[0].shape[1]


def check_ids(ids, counts: list[int], ids_path: Path, corpus: Passages) -> None:
    """Refuse an id list that does not match the vectors' rows or names passages not in the corpus."""
    import pyarrow.compute as pc

    if len(ids) != sum(counts):
        raise DataError(f"{ids_path}: {len(ids)} ids but the vectors have {sum(counts)} rows "
                        f"(per file: {counts}); the id list must be row-aligned with them")
    if pc.count_distinct(ids).as_py() != len(ids):
        raise DataError(f"{ids_path}: the id {_first_duplicate(ids)!r} appears more than once")
    known = corpus.read(columns=["id"]).column("id")
    inside = pc.is_in(ids.cast(known.type), value_set=known.combine_chunks())
    if not pc.all(inside).as_py():
        bad = pc.indices_nonzero(pc.invert(inside))
        first = int(bad[0].as_py())
        raise DataError(f"{ids_path}: {len(bad)} of {len(ids)} ids are not in the corpus (first: "
                        f"{ids[first].as_py()!r} at line {first + 1}); are these embeddings of "
                        f"this corpus?")


def _first_duplicate(ids):
    import pyarrow.compute as pc

    counts = pc.value_counts(ids)
    return counts.filter(pc.greater(counts.field("counts"), 1))[0]["values"].as_py()


# 2: a folder's vector files in natural name order (emb_2 before emb_10; the ids paired with
# another file's rows); a byte-order mark and trailing empty lines of the ids file are dropped
@stage("import_embeddings", version=2)
def import_embeddings(vectors: File, ids: OneFile, corpus: Passages, cfg: ImportEmbeddingsConfig,
                      ctx: StageContext) -> Embeddings:
    """Copy the vectors into index shards (one per file) with their ids and ``meta.json``."""
    import numpy as np

    from stages.lib.models.search import EMB_FILE, IDS_FILE, META_FILE, read_ids, release_pages

    mats = [Matrix(f, cfg.tensor) for f in vector_files(vectors.path)]
    dim = check_matrices(mats, cfg.dim)
    # the ids pair with the rows in this order: the log says it, for the user to check
    ctx.log.info("vector files in the order read (rows): %s",
                 ", ".join(f"{m.path.name} ({m.shape[0]})" for m in mats))
    all_ids = read_ids(ids.path, written_by_hand=True)
    counts = [m.shape[0] for m in mats]
    check_ids(all_ids, counts, ids.path, corpus)
    out, start = ctx.new_dir("index"), 0
    for n, m in enumerate(mats):
        shard = out / f"shard-{n:05d}"
        shard.mkdir()
        dtype = cfg.dtype or m.dtype
        emb = np.lib.format.open_memmap(shard / EMB_FILE, mode="w+", dtype=dtype,
                                        shape=(m.shape[0], dim))
        for lo in ctx.progress(range(0, m.shape[0], cfg.chunk_rows), desc=f"copy {m.path.name}"):
            emb[lo:lo + cfg.chunk_rows] = m.rows(lo, lo + cfg.chunk_rows)
            emb.flush()
            release_pages(emb)
            release_pages(getattr(m, "_arr", None))
        del emb
        shard_ids = all_ids.slice(start, m.shape[0]).to_pylist()
        (shard / IDS_FILE).write_text("".join(f"{i}\n" for i in shard_ids), encoding="utf-8")
        start += m.shape[0]
        meta = {"pooling": cfg.pooling, "normalize": cfg.normalize, "dtype": dtype, "dim": dim,
                "imported": True, "num_rows": m.shape[0], "shard_index": n,
                "num_shards": len(mats)}
        (shard / META_FILE).write_text(json.dumps(meta, indent=2))
    ctx.log.info("imported %d vectors (dim %d) from %d file(s)", sum(counts), dim, len(mats))
    return out
