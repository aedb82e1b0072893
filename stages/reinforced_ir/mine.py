"""Stage ``reinforced_ir.mine``: retriever training groups with mined hard negatives.

Seed step: ``generate_retriever_data.py`` (SEEDS §5.3 step 4): with the round's greedy
augmentation of each query, search the corpus index with the query and, separately, with the
augmentation (top 2,000 in the paper); negatives by the ``95neg`` rule (``hard``, ``random``),
copies of the positive removed, at most 15 kept (rules in :mod:`stages.reinforced_ir.negatives`).

Differences from the original, on purpose: the corpus is searched as it is (the original put
every source passage in front of the corpus a second time so that query i's positive had index
i; here the positive is known by its passage id, so there is nothing to duplicate), and the
augmentation's negatives are chosen with the augmentation search's own scores (the original
used the query search's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from annotated_types import Ge

from orchestrator.api import DataError, StageContext, stage
from stages.reinforced_ir.embed import EncoderConfig
from stages.reinforced_ir.negatives import Rule
from stages.reinforced_ir.schemas import Augmented, RetrieverData
from stages.schemas import Embeddings, Model, Passages


@dataclass
class MineConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    top_k: Annotated[int, Ge(1)] = 2000     # paper: top 2,000
    rule: Rule = "95neg"                   # paper: 95neg
    pool: Annotated[int, Ge(1)] = 50        # candidates before de-duplication (paper: 50)
    keep: Annotated[int, Ge(1)] = 15        # negatives kept (paper: 15)
    ratio: float = 0.95                    # the 95neg threshold
    fallback_lo: Annotated[int, Ge(0)] = 30  # fallback sampling window, ranks 30..200 (paper)
    fallback_hi: Annotated[int, Ge(0)] = 200
    seed: Annotated[int, Ge(0)] = 0


def _candidates(ranked, scores, positive, cfg: MineConfig, rng, corpus_size) -> list[int]:
    from stages.reinforced_ir.negatives import candidate_negatives

    return candidate_negatives(ranked, scores, positive, cfg.rule, rng, pool=cfg.pool,
                               ratio=cfg.ratio, fallback=(cfg.fallback_lo, cfg.fallback_hi),
                               corpus_size=corpus_size)


@stage("reinforced_ir.mine", version=2, shard_by="augmented")
def mine(augmented: Augmented, index: Embeddings, corpus: Passages, encoder: Model,
         cfg: MineConfig, ctx: StageContext) -> RetrieverData:
    """One group per query: positive (its source passage) and mined negatives.

    Passages are corpus positions until the end: the searches give index rows, mapped to
    positions through the corpus' id column, and only the positives and candidate negatives
    are read as text (:func:`_groups`), never the corpus as rows.
    """
    import random

    from stages.lib.data.id_positions import id_column
    from stages.lib.models.search import ShardedIndex
    from stages.reinforced_ir.embed import SideEncoder, matching_index

    rows = augmented.rows()
    if not rows:
        return []
    enc_cfg = matching_index(cfg.encoder, index.path)
    corpus_ids = id_column(corpus)
    positives = _positives(rows, corpus_ids)
    enc = SideEncoder(encoder.path, enc_cfg, ctx.device)
    idx = ShardedIndex(index.path)
    k = min(cfg.top_k, len(idx))
    q_scores, q_rows = idx.search_rows(enc.queries([r["question"] for r in rows]), k)
    greedy = [(r["augmentations"] or [""])[0] for r in rows]
    a_scores, a_rows = idx.search_rows(enc.augmentations(greedy), k)
    q_pos, a_pos = _corpus_positions(idx, [q_rows, a_rows], corpus_ids)
    size = corpus.num_rows
    picks = []
    for i, row in enumerate(rows):
        # one generator per query, seeded by its id: the same negatives whatever the shard count
        rng = random.Random(f"{cfg.seed}:{row['id']}")
        pos = int(positives[i])
        # a query's hits become Python ints only here (all at once: 1.4 GB at 10,000 x 2 x 2,000)
        picks.append((_candidates(q_pos[i][q_rows[i] >= 0].tolist(), q_scores[i].tolist(), pos,
                                  cfg, rng, size),
                      _candidates(a_pos[i][a_rows[i] >= 0].tolist(), a_scores[i].tolist(), pos,
                                  cfg, rng, size)))
    out = _groups(rows, greedy, positives, picks, corpus, enc_cfg.passage_template, cfg.keep)
    ctx.log.info("mine: %d groups, %.1f negatives on average (rule %s, top %d)", len(out),
                 sum(len(r["neg"]) for r in out) / max(1, len(out)), cfg.rule, k)
    empty = sum(not r["neg"] for r in out)
    if empty:
        ctx.log.warning("mine: %d of %d groups have no negative (the retriever's training leaves "
                        "them out): rule %s found none, and the fallback ranks %d-%d are past "
                        "the end of the %d searched; on a small corpus lower fallback_lo and "
                        "fallback_hi", empty, len(out), cfg.rule, cfg.fallback_lo,
                        cfg.fallback_hi, k)
    return out


def _positives(rows: list[dict], corpus_ids):
    """The corpus position of each query's source passage (its first ``gold`` id)."""
    from stages.lib.data.id_positions import id_positions

    golds = [str((r["gold"] or [""])[0]) for r in rows]
    positions = id_positions(golds, corpus_ids)
    if (positions < 0).any():
        i = int((positions < 0).argmax())
        raise DataError(f"mine: query {rows[i]['id']} names source passage {golds[i]!r}, which "
                        f"is not in the corpus")
    return positions


def _corpus_positions(idx, searches, corpus_ids) -> list:
    """For each search's ``rows`` (index rows, -1 past the hits), the hits' corpus positions
    in an array of the same shape; where ``rows`` is -1 the value means nothing (the caller
    keeps only the hits)."""
    import numpy as np
    import pyarrow as pa

    from stages.lib.data.id_positions import id_positions

    hit_rows = np.unique(np.concatenate([rows[rows >= 0] for rows in searches]))
    ids = idx.ids_at(hit_rows)
    where = id_positions(ids, corpus_ids)
    if (where < 0).any():
        missing = ids.filter(pa.array(where < 0))
        raise DataError(f"mine: {len(missing)} of the passages the index returned are not in "
                        f"the corpus (first: {missing[0].as_py()!r})",
                        hint="the index was built from another corpus: wire mine's corpus and "
                             "index from the same data, or rebuild the index from this corpus")
    if not len(hit_rows):
        return searches
    return [where[np.searchsorted(hit_rows, rows)] for rows in searches]


def _groups(rows, greedy, positives, picks, corpus: Passages, template: str, keep: int,
            block: int = 1024) -> list[dict]:
    """The training groups, ``block`` queries' texts turned into Python strings at a time."""
    import numpy as np

    from stages.lib.data.tables import take_rows
    from stages.reinforced_ir.embed import passage_texts
    from stages.reinforced_ir.negatives import keep_negatives

    needed = np.unique(np.concatenate(
        [np.asarray(positives, np.int64)] + [np.asarray(p, np.int64) for q, a in picks
                                             for p in (q, a)]))
    passages = corpus.take(needed, ["title", "text"])     # the only passages read as text
    out = []    # each query's texts are read back in the order they are listed in ``want``
    for lo in range(0, len(rows), block):
        hi = min(lo + block, len(rows))
        want = np.concatenate([[positives[i], *picks[i][0], *picks[i][1]]
                               for i in range(lo, hi)]).astype(np.int64)
        texts = iter(passage_texts(take_rows(passages, np.searchsorted(needed, want))
                                   .to_pylist(), template))
        for i in range(lo, hi):
            q, a = picks[i]
            pos = next(texts)
            neg = keep_negatives(pos, [next(texts) for _ in q], keep)
            neg_answer = keep_negatives(pos, [next(texts) for _ in a], keep)
            row = rows[i]
            out.append({"id": row["id"], "query": row["question"], "augmentation": greedy[i],
                        "pos": [pos], "neg": neg, "neg_answer": neg_answer,
                        "pos_scores": [], "neg_scores": []})
    return out
