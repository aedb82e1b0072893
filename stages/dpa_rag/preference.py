"""Stage ``dpa_rag.preference``: the reader's preference knowledge, one row per (query, document).

Seed step: SEEDS 3.2 step 2 (no released code; the released validation and test files show what
was stored: ``{question, reference, ctx, before: {answer, em, f1}, after: {answer, em, f1},
category}``). The reader LLM, the model the recipe aligns to, answers every query once with no
document and once with each of its first ``n_docs`` retrieved documents alone. Each answer is
scored against the golds (exact match and token F1, as stored in the released files), and the
document gets its outcome (:mod:`stages.dpa_rag.categories`): aligned, unaligned, both correct
or both incorrect.

"Correct" is ``correct_by``: ``exact_match`` (the released files' ``em``, default) or
``match_gold_in_pred`` (a gold answer occurs in the answer), for readers that answer in
sentences. The reader answers greedily with the recipe's reader prompt (a standard RAG prompt:
``conf/prompts/common/rag.yaml``; its ``no_passages`` text stands for the missing document).
Queries from ``dpa_rag.augment`` keep their ``source_id`` and ``kind``; plain questions get
their own id and ``original``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from annotated_types import Ge

from orchestrator.api import File, StageContext, nonsemantic, stage
from stages.dpa_rag.categories import category
from stages.dpa_rag.schemas import Knowledge
from stages.schemas import Model, Retrieved


@dataclass
class PreferenceConfig:
    n_docs: Annotated[int, Ge(1)] = 100     # documents read per query (paper: DPR top-100)
    correct_by: Literal["exact_match", "match_gold_in_pred"] = "exact_match"  # released: em
    max_new_tokens: Annotated[int, Ge(1)] = 20  # the seed's inference command: 20
    dataset: str | None = None              # answer style for all rows; None = each row's
    backend: Literal["auto", "transformers", "vllm"] = "auto"
    batch_size: Annotated[int, Ge(1)] = nonsemantic(16)


@stage("dpa_rag.preference", version=1, shard_by="retrieved",
       multi_gpu="one_process")  # gpus: N = one vLLM engine, tensor parallel over N
def preference(retrieved: Retrieved, model: Model, prompt: File, cfg: PreferenceConfig,
               ctx: StageContext) -> Knowledge:
    """For each query and each of its first ``n_docs`` documents: the reader's answer without
    and with the document, their scores, and the document's outcome."""
    from stages.lib.metrics.answer import METRICS, exact_match, token_f1
    from stages.lib.models.generation import load_generator
    from stages.lib.prompts import generator_messages, load_prompt, passage_fields

    reader = load_prompt(prompt.path)
    given = retrieved.rows()
    rows = [r for r in given if r.get("answers")]
    if len(rows) < len(given):   # nothing to score them against
        ctx.log.warning("preference: %d of %d queries have no gold answer and are left out",
                        len(given) - len(rows), len(given))
    if not rows:
        return []
    convs, where = [], []   # where[i] = (row index, document index or None for "before")
    for r, row in enumerate(rows):
        style = cfg.dataset if cfg.dataset is not None else (row.get("dataset") or "")
        docs = [passage_fields(d) for d in (row.get("ctxs") or [])[:cfg.n_docs]]
        row["ctxs"] = docs
        for d in [None, *range(len(docs))]:
            shown = [] if d is None else [docs[d]]
            convs.append(generator_messages(reader, row["question"], shown, style))
            where.append((r, d))
    gen = load_generator(str(model.path), backend=cfg.backend, device=ctx.device)
    answers = gen.chat(convs, max_new_tokens=cfg.max_new_tokens, temperature=0.0,
                       batch_size=cfg.batch_size,
                       progress=lambda it: ctx.progress(it, desc="reader"))
    correct = METRICS[cfg.correct_by]
    before: dict[int, tuple[str, float, float, bool]] = {}
    out, counts = [], {}
    for (r, d), (answer,) in zip(where, answers):
        golds = rows[r]["answers"]
        scored = (answer, exact_match(answer, golds), token_f1(answer, golds),
                  correct(answer, golds) >= 1.0)
        if d is None:
            before[r] = scored
            continue
        row, (b_answer, b_em, b_f1, b_ok) = rows[r], before[r]
        outcome = category(b_ok, scored[3])
        counts[outcome] = counts.get(outcome, 0) + 1
        out.append({"id": row["id"], "dataset": row.get("dataset"), "question": row["question"],
                    "answers": row["answers"], "gold": row.get("gold") or [],
                    "source_id": row.get("source_id") or row["id"],
                    "kind": row.get("kind") or "original",
                    "doc": row["ctxs"][d], "rank": d + 1,
                    "before": b_answer, "before_em": b_em, "before_f1": b_f1,
                    "after": scored[0], "after_em": scored[1], "after_f1": scored[2],
                    "category": outcome})
    right = sum(b[3] for b in before.values())
    ctx.log.info("preference: %d queries (%d right without a document), %d documents: %s",
                 len(rows), right, len(out),
                 ", ".join(f"{k} {counts.get(k, 0)}" for k in
                           ("aligned", "unaligned", "both_correct", "both_incorrect")))
    return out
