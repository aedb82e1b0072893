"""Stage ``retrieve``: top-k passages per question from a dense index.

Seed step: DynamicRAG ``retriever.py`` (SEEDS 1.3 step 1; the Contriever retriever of SEEDS 0.1
shared by Self-RAG and RAG-Instruct): the query is encoded like the passages (Contriever: mean
pooling, 512 tokens, batch 64), searched by exact inner product (faiss flat index), and the top
``n_docs`` passages become ``ctxs`` (the script keeps 50; the README says 40). The query is the
row's ``retrieved_question`` when it has one (DynamicRAG's training file), else its ``question``
(``query_template`` formats another one from the row's fields).

Questions that arrive with passages (the evaluation files' ``ctxs``, ASQA's ``docs``, the released
training file's retrieved docs) keep them as shipped, in their order and number, as the original
evaluation did; ``shipped_ctxs: replace`` retrieves for them too. A question that ships an empty
list (``ctxs: []``) shipped its passages too, none of them: it keeps none (answered without
passages, as the original evaluation would have) rather than being quietly filled from this index
while its neighbours keep the shipped ones, with a warning that counts such questions and names
``shipped_ctxs: replace``; a question with no ``ctxs`` at all (null) is searched. When every
question ships its passages nothing is searched, so ``index``, ``encoder`` and ``corpus`` may be
left unwired (a recipe then need not build an index at all:
``conf/dynamicrag/shipped_passages.yaml``); a question without passages is then a one-line error.

Fixes relative to the seeds: every passage keeps its retrieval ``score`` (Self-RAG's and
DynamicRAG's copies dropped it, RAG-Instruct's spelled it ``socre``); the query encoder's pooling
and normalisation are checked against the index's ``meta.json`` instead of silently mismatching,
and a query encoder other than the index's is a warning (a dual encoder sets ``dual_encoder``);
and sharding over questions replaces the 8-process bash loop and its ``aggregate.py`` (which read
32 hard-coded split files).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from annotated_types import Ge

from orchestrator.api import ConfigError, DataError, StageContext, nonsemantic, stage
from stages.common.index import encoder_identity
from stages.lib.data.row_template import RowTemplate, unknown_field
from stages.schemas import Embeddings, Model, Passages, Questions, Retrieved


@dataclass
class RetrieveConfig:
    k: Annotated[int, Ge(1)] = 50  # passages per question (script: n_docs 50; README: 40)
    search: Literal["exact", "faiss"] = "exact"  # exact (inner product, every row) | faiss
    faiss_factory: str = "Flat"           # faiss index_factory string (Flat = exact, the seeds')
    nprobe: Annotated[int, Ge(1)] = 32  # IVF lists probed (faiss IVF factories)
    faiss_gpu: bool = False               # move the faiss index to the GPUs
    pooling: Literal["mean", "cls"] | None = None  # must match the index; None = the index's
    normalize: bool | None = None         # must match the index; None = the index's
    max_length: Annotated[int, Ge(1)] = 512  # query tokens (Contriever: question_maxlength 512)
    # None: the row's retrieved_question if any, else question
    query_template: RowTemplate | None = None
    shipped_ctxs: Literal["keep", "replace"] = "keep"  # rows that ship ctxs keep them (even [])
    lowercase: bool = False               # Contriever's --lowercase
    batch_size: Annotated[int, Ge(1)] = nonsemantic(64)  # Contriever: per_gpu_batch_size 64
    dual_encoder: bool = nonsemantic(False)  # DPR-style: the index's encoder differs: no warning


def _resolve(name: str, wanted, meta: dict):
    """The config value checked against the index's meta.json (None: take the index's)."""
    built = meta.get(name)
    if wanted is None:
        if built is None:
            raise ConfigError(f"retrieve: the index has no meta.json '{name}'; set {name} in the "
                              f"retrieve step")
        return built
    if built is not None and wanted != built:
        raise ConfigError(f"retrieve: {name}={wanted!r} does not match the index, built with "
                          f"{name}={built!r}; set {name}: {built} (or rebuild the index)")
    return wanted


def _check_encoder(meta: dict, encoder: Model, cfg: RetrieveConfig, step: str, log) -> None:
    """Warn when ``encoder`` is not the one the index was built with: not an error, as a dual
    encoder (DPR) encodes questions with a model of its own. Silent with ``dual_encoder``, and
    for an index whose meta.json names no encoder (imported embeddings, an older index)."""
    built = meta.get("encoder_hash")
    mine = encoder_identity(encoder)
    if cfg.dual_encoder or built is None or built == mine["encoder_hash"]:
        return
    log.warning("step '%s': the index was built with encoder %s [%s] but questions are encoded "
                "with %s [%s]; wire the same encoder into index and retrieve, or set "
                "dual_encoder: true if this is a dual encoder on purpose", step,
                meta.get("encoder_name"), built[:8], mine["encoder_name"],
                mine["encoder_hash"][:8])


def _query_text(template: str | None, row: dict, lowercase: bool,
                setting: str = "query_template") -> str:
    if template is None:
        text = row.get("retrieved_question") or row["question"]
        return text.lower() if lowercase else text
    try:
        text = template.format(**{k: ("" if v is None else v) for k, v in row.items()})
    except KeyError as e:
        raise unknown_field(setting, template, e.args[0], row) from None
    except IndexError:
        raise DataError(f"retrieve: query_template {template!r} indexes a list that question "
                        f"{row.get('id')!r} has too few items in",
                        hint="give every question the fields its template reads (e.g. a "
                             "non-empty answers list), or change query_template") from None
    return text.lower() if lowercase else text


# 2: a question shipped with ctxs: [] keeps it (it was searched)
@stage("retrieve", version=2, shard_by="questions")
def retrieve(questions: Questions, cfg: RetrieveConfig, ctx: StageContext,
             index: Embeddings | None = None, encoder: Model | None = None,
             corpus: Passages | None = None) -> Retrieved:
    """Encode this shard's questions, search the index, attach the top-k passages as ``ctxs``."""
    from stages.lib.models.encoders import Encoder
    from stages.lib.models.search import ShardedIndex

    import pyarrow as pa
    import pyarrow.compute as pc

    table = questions.read()   # shipped passages stay Arrow (150k x 40 of them in DynamicRAG's
    total = table.num_rows     # training file: several times their size as Python objects)
    if "ctxs" in table.column_names and cfg.shipped_ctxs == "keep":
        has = pc.is_valid(table.column("ctxs"))
    else:
        has = pa.chunked_array([pa.array([False] * total, pa.bool_())])
    kept = pc.sum(has).as_py() or 0
    if kept:
        ctx.log.info("%d of %d questions arrive with their passages and keep them "
                     "(shipped_ctxs: keep)", kept, total)
        none = pc.and_(has, pc.equal(pc.list_value_length(table.column("ctxs")), 0))
        empty = table.column("id").filter(pc.fill_null(none, False))
        if len(empty):
            ctx.log.warning("step '%s': %d of %d questions%s ship an empty passage list (ctxs: "
                            "[], first: %r) and keep it: they are answered without passages; "
                            "set steps.%s.shipped_ctxs: replace to retrieve for every question",
                            ctx.step, len(empty), total,
                            " of this shard" if ctx.num_shards > 1 else "", empty[0].as_py(),
                            ctx.step)
    if kept == total:          # nothing to search (an empty shard has no ctxs column: rows)
        return table if total else []
    searched = table.filter(pc.invert(has))
    todo = searched.to_pylist()   # questions without passages: small rows
    unwired = [n for n, v in (("index", index), ("encoder", encoder), ("corpus", corpus))
               if v is None]
    if unwired:
        why = ("shipped_ctxs: replace searches for every question" if cfg.shipped_ctxs == "replace"
               else f"{len(todo)} of {total} questions arrive without passages (first: "
                    f"{todo[0]['id']!r})")
        raise DataError(f"step '{ctx.step}': {why}, but it has no {' / '.join(unwired)} to "
                        f"search with; wire inputs.{unwired[0]} (keep the recipe's index step) "
                        "or give every question its ctxs")
    idx = ShardedIndex(index.path)
    _check_encoder(idx.meta, encoder, cfg, ctx.step, ctx.log)
    enc = Encoder(encoder.path, pooling=_resolve("pooling", cfg.pooling, idx.meta),
                  normalize=_resolve("normalize", cfg.normalize, idx.meta),
                  max_length=cfg.max_length, device=ctx.device)
    setting = f"steps.{ctx.step}.query_template"
    texts = [_query_text(cfg.query_template, r, cfg.lowercase, setting) for r in todo]
    query_emb = enc.encode(texts, batch_size=cfg.batch_size,
                           progress=lambda it: ctx.progress(it, desc="encode questions"))
    out = search_and_attach(searched, query_emb, idx, corpus, cfg, ctx.device, ctx.log)
    return _in_input_order(table.filter(has), has, out) if kept else out


def _in_input_order(shipped, has, searched):
    """The rows that kept their shipped passages and the ``searched`` ones, back in the input's
    order (``has``: which input rows are shipped ones)."""
    import numpy as np
    import pyarrow as pa

    from stages.lib.data.tables import take_rows

    mask = has.to_numpy(zero_copy_only=False)
    both = pa.concat_tables([shipped.select(searched.column_names).cast(searched.schema),
                             searched])
    where = np.concatenate([np.flatnonzero(mask), np.flatnonzero(~mask)])
    return take_rows(both, np.argsort(where))


def search_and_attach(questions, query_emb, idx, corpus: Passages, cfg: RetrieveConfig,
                      device: str | None, log, chunk: int = 256):
    """``questions`` (a ``pyarrow.Table``) with a ``ctxs`` column: the top-k of each query.

    The stage after its question encoder (``bench/bench_scale.py`` times this part): search
    the index, fetch title and text for the hit passages only (:func:`fetch_passages`), and
    build ``ctxs`` as Arrow lists, ``chunk`` questions per piece, without a Python object per
    passage.
    """
    import time

    import numpy as np
    import pyarrow as pa

    from stages.lib.data.tables import take_rows
    from stages.schemas import CTX

    start = time.perf_counter()
    scores, hits = idx.search_rows(query_emb, cfg.k, method=cfg.search, factory=cfg.faiss_factory,
                                   nprobe=cfg.nprobe, use_gpu=cfg.faiss_gpu, device=device)
    log.info("searched %d shard(s) for %d questions in %.1f s", len(idx.shards), len(hits),
             time.perf_counter() - start)
    found = hits >= 0
    unique, inverse = np.unique(hits[found], return_inverse=True)
    passages, where = fetch_passages(idx, unique, corpus, log)
    pa.default_memory_pool().release_unused()    # the decoded row groups' buffers, freed
    counts = found.sum(axis=1)
    ends = np.cumsum(counts)
    pieces = []
    for lo in range(0, len(hits), chunk):
        hi = min(lo + chunk, len(hits))
        a, b = int(ends[lo] - counts[lo]), int(ends[hi - 1])
        part = take_rows(passages, where[inverse[a:b]])
        struct = pa.StructArray.from_arrays(
            [part.column(n).combine_chunks() for n in ("id", "title", "text")]
            + [pa.array(scores[lo:hi][found[lo:hi]], pa.float32())], fields=list(CTX))
        offsets = np.concatenate([[0], np.cumsum(counts[lo:hi])]).astype(np.int32)
        pieces.append(pa.ListArray.from_arrays(pa.array(offsets), struct, type=pa.list_(CTX)))
    if "ctxs" in questions.column_names:
        questions = questions.drop_columns(["ctxs"])
    return questions.append_column("ctxs", pa.chunked_array(pieces, pa.list_(CTX)))


def fetch_passages(idx, rows, corpus: Passages, log):
    """``(passages, where)``: ``id``/``title``/``text`` of the index ``rows`` (sorted, unique),
    read from the corpus' row groups that hold them only; ``where[j]`` is the row of
    ``passages`` for ``rows[j]``.

    An index that the ``index`` stage built from this corpus is row-aligned with it, so index
    row r is corpus row r (checked on the ids read back); another index (imported embeddings,
    a different order) is matched by id through the corpus' id column.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    ids = idx.ids_at(rows).cast(pa.string())
    columns = ["id", "title", "text"]
    if len(idx) == corpus.num_rows:
        got = corpus.take(rows, columns)
        if pc.all(pc.equal(got.column("id"), ids)).as_py() is not False:
            return got, np.arange(len(rows))
        log.info("the index rows are not in corpus order: passages are looked up by id")
    pos = pc.index_in(ids, value_set=corpus.read(columns=["id"]).column("id").combine_chunks())
    if pos.null_count:
        missing = ids.filter(pos.is_null())
        raise DataError(f"retrieve: {len(missing)} passage ids of the index are not in the "
                        f"corpus (first: {missing[0].as_py()!r}); was the index built from this "
                        f"corpus?")
    positions, where = np.unique(pos.to_numpy(zero_copy_only=False).astype(np.int64),
                                 return_inverse=True)
    return corpus.take(positions, columns), where
