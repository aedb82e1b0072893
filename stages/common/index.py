"""Stage ``index``: dense passage embeddings, one shard of the corpus per task.

Seed step: the precomputed Contriever-MSMARCO ``wikipedia_embeddings/*`` shards behind every
seed's retriever (SEEDS 0.1; ``generate_passage_embeddings.py`` in the vendored ``src/``):
passage text ``title + " " + text``, mean pooling, no normalisation, fp16 on GPU, 512 tokens,
batch 64. Here each shard is a directory with ``emb.npy`` (row-aligned with the shard's corpus
rows), ``ids.txt`` and ``meta.json``; a sharded step's output gathers them as ``shard-00000/``,
``shard-00001/`` ..., which :class:`stages.lib.models.search.ShardedIndex` searches as one index.
``meta.json`` also names the encoder (:func:`encoder_identity`), so ``retrieve`` warns when it
encodes questions with another one.

The seeds downloaded those embeddings; this stage computes them (for psgs_w100's 21M passages,
about a GPU-day). Vectors you already have go through ``import_embeddings`` instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Literal

from annotated_types import Ge

from orchestrator.api import ConfigError, StageContext, nonsemantic, stage
from stages.lib.data.row_template import RowTemplate, unknown_field
from stages.schemas import Embeddings, Model, Passages


@dataclass
class IndexConfig:
    pooling: Literal["mean", "cls"] = "mean"  # mean (Contriever, MiniLM) | cls (DPR)
    normalize: bool = False                 # Contriever: raw inner product; MiniLM, E5: true
    max_length: Annotated[int, Ge(1)] = 512  # passage tokens (Contriever: 512)
    dtype: Literal["float16", "float32"] = "float16"  # stored embeddings
    text_template: RowTemplate = "{title} {text}"   # Contriever: title + " " + text
    lowercase: bool = False                 # Contriever's --lowercase
    batch_size: Annotated[int, Ge(1)] = nonsemantic(64)  # Contriever: per_gpu_batch_size 64
    # passages encoded between progress/log lines
    chunk_rows: Annotated[int, Ge(1)] = nonsemantic(65536)


def passage_text(template: str, row: dict, lowercase: bool = False,
                 setting: str = "text_template") -> str:
    """A corpus row rendered with ``template`` (missing fields are empty).

    >>> passage_text("{title} {text}", {"title": None, "text": "Paris is"})
    'Paris is'
    """
    fields = {k: ("" if v is None else v) for k, v in row.items()}
    try:
        text = template.format(**fields).strip()
    except KeyError as e:
        raise unknown_field(setting, template, e.args[0], fields) from None
    return text.lower() if lowercase else text


def encoder_identity(encoder: Model) -> dict:
    """``encoder_name`` and ``encoder_hash`` of an encoder input, as the index's meta.json records
    them.

    The hash is the input's content hash, which the orchestrator computed already (nothing is
    read here but config.json); the name is for people: the directory's name (a step's output:
    the step's), with config.json's ``_name_or_path`` when that says more.
    """
    path, ref = encoder.path, encoder.ref
    name = ref.producer if path.name == "data" and ref.producer else path.name
    try:
        origin = json.loads((path / "config.json").read_text()).get("_name_or_path")
    except (OSError, ValueError, AttributeError):
        origin = None
    if origin and not str(origin).endswith(name):
        name = f"{name} ({origin})"
    return {"encoder_name": name, "encoder_hash": ref.content_hash}


@stage("index", version=1, shard_by="corpus")
def index(corpus: Passages, encoder: Model, cfg: IndexConfig, ctx: StageContext) -> Embeddings:
    """Encode this shard's passages into ``emb.npy`` + ``ids.txt`` + ``meta.json``."""
    import time

    import numpy as np

    from stages.lib.models.encoders import Encoder
    from stages.lib.models.search import EMB_FILE, IDS_FILE, META_FILE

    start = time.perf_counter()
    ids = corpus.read(columns=["id"]).column("id").to_pylist()
    bad = next((i for i in ids if i is None or "\n" in i or "\r" in i), "")
    if bad != "":
        raise ConfigError(f"index: passage id {bad!r} is empty or contains a newline")
    enc = Encoder(encoder.path, pooling=cfg.pooling, normalize=cfg.normalize,
                  max_length=cfg.max_length, device=ctx.device)
    out = ctx.new_dir("index")
    emb = np.lib.format.open_memmap(out / EMB_FILE, mode="w+", dtype=cfg.dtype,
                                    shape=(len(ids), enc.dim))
    setting = f"steps.{ctx.step}.text_template"
    pieces = corpus.iter_tables(cfg.chunk_rows)   # this shard's rows, a chunk in memory at a time
    for lo in ctx.progress(range(0, len(ids), cfg.chunk_rows), desc="encode passages"):
        rows = next(pieces).to_pylist()
        texts = [passage_text(cfg.text_template, r, cfg.lowercase, setting) for r in rows]
        emb[lo:lo + len(rows)] = enc.encode(texts, batch_size=cfg.batch_size)
    emb.flush()
    del emb
    (out / IDS_FILE).write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    seconds = time.perf_counter() - start
    meta = {"pooling": cfg.pooling, "normalize": cfg.normalize, "max_length": cfg.max_length,
            "dtype": cfg.dtype, "text_template": cfg.text_template, "lowercase": cfg.lowercase,
            "dim": enc.dim, "encoder": getattr(enc.model.config, "model_type", None),
            **encoder_identity(encoder),
            "num_rows": len(ids), "shard_index": ctx.shard_index,
            "num_shards": ctx.num_shards}   # no timings: equal inputs give equal bytes
    (out / META_FILE).write_text(json.dumps(meta, indent=2))
    ctx.log.info("encoded %d passages (dim %d, %s) in %.1f s (%.1f passages/s)", len(ids),
                 enc.dim, cfg.dtype, seconds, len(ids) / max(seconds, 1e-9))
    return out
