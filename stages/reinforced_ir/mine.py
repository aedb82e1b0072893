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
    seed: int = 0


def _negatives(ranked, scores, positive, cfg: MineConfig, rng, texts, corpus_size):
    from stages.reinforced_ir.negatives import candidate_negatives, keep_negatives

    ids = candidate_negatives(ranked, scores, positive, cfg.rule, rng, pool=cfg.pool,
                              ratio=cfg.ratio, fallback=(cfg.fallback_lo, cfg.fallback_hi),
                              corpus_size=corpus_size)
    return keep_negatives(texts[positive], [texts[i] for i in ids], cfg.keep)


@stage("reinforced_ir.mine", version=2, shard_by="augmented")
def mine(augmented: Augmented, index: Embeddings, corpus: Passages, encoder: Model,
         cfg: MineConfig, ctx: StageContext) -> RetrieverData:
    """One group per query: positive (its source passage) and mined negatives."""
    import random

    from stages.lib.models.search import ShardedIndex
    from stages.reinforced_ir.embed import SideEncoder, matching_index, passage_texts

    rows = augmented.rows()
    if not rows:
        return []
    enc_cfg = matching_index(cfg.encoder, index.path)
    passages = corpus.rows()
    position = {str(p["id"]): i for i, p in enumerate(passages)}
    texts = passage_texts(passages, enc_cfg.passage_template)
    enc = SideEncoder(encoder.path, enc_cfg, ctx.device)
    idx = ShardedIndex(index.path)
    k = min(cfg.top_k, len(idx))
    q_scores, q_ids = idx.search(enc.queries([r["question"] for r in rows]), k)
    greedy = [(r["augmentations"] or [""])[0] for r in rows]
    a_scores, a_ids = idx.search(enc.augmentations(greedy), k)
    out = []
    for i, row in enumerate(rows):
        # one generator per query, seeded by its id: the same negatives whatever the shard count
        rng = random.Random(f"{cfg.seed}:{row['id']}")
        gold = str((row["gold"] or [""])[0])
        if gold not in position:
            raise DataError(f"mine: query {row['id']} names source passage {gold!r}, which is not "
                            f"in the corpus")
        pos = position[gold]
        ranked_q = [position[d] for d in q_ids[i]]
        ranked_a = [position[d] for d in a_ids[i]]
        out.append({
            "id": row["id"], "query": row["question"], "augmentation": greedy[i],
            "pos": [texts[pos]],
            "neg": _negatives(ranked_q, q_scores[i].tolist(), pos, cfg, rng, texts, len(texts)),
            "neg_answer": _negatives(ranked_a, a_scores[i].tolist(), pos, cfg, rng, texts, len(texts)),
            "pos_scores": [], "neg_scores": []})
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
