"""Stage ``reinforced_ir.feedback``: DPO pairs for the generator from the retriever's feedback.

Seed step: ``generate_llm_dpo_train_data`` (SEEDS §5.3 step 2): embed each query q, its source
passage d and its sampled augmentations a_k with the current retriever; score
s_k = <0.8·q + 0.2·a_k, d> against raw = <q, d>; the best and worst augmentations form a pair when
the best beats the raw query and the 0.95 margin holds (formulas in
:mod:`stages.reinforced_ir.feedback`). The prompt of a pair is the augmentation prompt itself (the
original's ``llm_instruct`` mode), so DPO trains exactly the call that inference makes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from orchestrator.api import DataError, StageContext, stage
from stages.reinforced_ir.embed import EncoderConfig
from stages.reinforced_ir.schemas import Augmented, AugmentationPrompt
from stages.schemas import Model, Passages, Preferences


@dataclass
class FeedbackConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    query_weight: float = 0.8              # paper: 0.8·q + 0.2·a
    margin: float = 0.95                   # paper (README): --threshold 0.95
    require_gain: bool = True              # paper: rule 1 on (max s > raw)
    task: str = "Given a question, retrieve passages that answer the question."
    answer_type: str = "answer"


@stage("reinforced_ir.feedback", version=1)
def feedback(augmented: Augmented, corpus: Passages, encoder: Model, prompt: AugmentationPrompt,
             cfg: FeedbackConfig, ctx: StageContext) -> Preferences:
    """One (chosen, rejected) augmentation pair per query that passes the filter."""
    import numpy as np

    from stages.lib.prompts import messages
    from stages.reinforced_ir.embed import SideEncoder, passage_texts
    from stages.reinforced_ir.feedback import fused_scores, preference_pair

    template = prompt.load()
    rows = [r for r in augmented.rows() if len(r["augmentations"] or []) >= 2]
    if not rows:
        raise DataError("feedback: no query has two augmentations to compare",
                        hint="sample them with n >= 2 and temperature > 0 in the augment step")
    sources = _source_passages(rows, corpus)
    enc = SideEncoder(encoder.path, cfg.encoder, ctx.device)
    q = enc.queries([r["question"] for r in rows])
    d = enc.passages(passage_texts(sources, cfg.encoder.passage_template))
    flat = [a for r in rows for a in r["augmentations"]]
    a = enc.augmentations(flat)
    pairs, at, dropped = [], 0, Counter()
    for i, row in enumerate(rows):
        k = len(row["augmentations"])
        scores = fused_scores(q[i], d[i], a[at:at + k], cfg.query_weight)
        at += k
        raw = float(np.dot(q[i], d[i]))
        pair = preference_pair(raw, scores.tolist(), cfg.margin, cfg.query_weight,
                               cfg.require_gain)
        augs = row["augmentations"]
        if pair is None or augs[pair.chosen] == augs[pair.rejected]:
            dropped[_why_dropped(raw, scores.tolist(), pair, cfg)] += 1
            continue
        pairs.append({"id": row["id"], "task": "generator",
                      "prompt": messages(template, task=cfg.task, answer_type=cfg.answer_type,
                                         query=row["question"]),
                      "chosen": [{"role": "assistant", "content": augs[pair.chosen]}],
                      "rejected": [{"role": "assistant", "content": augs[pair.rejected]}],
                      "chosen_score": pair.chosen_score, "rejected_score": pair.rejected_score})
    ctx.log.info("feedback: %d of %d queries give a pair (margin %.2f, gain rule %s); dropped: %s",
                 len(pairs), len(rows), cfg.margin, cfg.require_gain, dict(dropped) or "none")
    if not pairs:   # the DPO step would stop on an empty input without saying why
        raise DataError(f"feedback: none of the {len(rows)} queries gives a DPO pair "
                        f"(dropped: {dict(dropped)})",
                        hint="the retriever scores every augmentation alike (an untrained or "
                             "tiny retriever does): check the augmentations in the augment "
                             "step's output; margin and require_gain set the filter (paper: "
                             "0.95, true)")
    return pairs


def _source_passages(rows: list[dict], corpus: Passages) -> list[dict]:
    """Each query's source passage (its first ``gold`` id), read from the corpus by position:
    only those rows are read as text, not the corpus."""
    from stages.lib.data.id_positions import id_column, id_positions

    golds = [str(r["gold"][0]) if r["gold"] else "" for r in rows]
    positions = id_positions(golds, id_column(corpus))
    missing = [r["id"] for r, p in zip(rows, positions) if not r["gold"] or p < 0]
    if missing:
        raise DataError(f"feedback: {len(missing)} queries name a source passage that is not in "
                        f"the corpus (first: {missing[0]})")
    return corpus.take(positions, ["title", "text"]).to_pylist()


def _why_dropped(raw: float, scores: list[float], pair, cfg: FeedbackConfig) -> str:
    """Which rule dropped a query, for the log: the first that fails, in the filter's order."""
    if raw == 0:
        return "raw score 0"
    if pair is not None:
        return "chosen and rejected are the same text"
    if cfg.require_gain and not max(scores) > raw:
        return "no augmentation beats the raw query"
    return f"margin {cfg.margin}"
