"""Stage ``rerank``: an expert relevance label and score for every retrieved passage.

Seed step: DynamicRAG ``reranker.py`` (SEEDS 1.3 step 3): monoT5 reads
``Query: {question} Document: {text} Relevant:`` (512 tokens, batch 128) and says "true" or
"false"; the label is stored per passage and the passages stay in retriever order. The labels
feed the behaviour-cloning targets (stage ``label``) and the generator's oracle context.

Methods (:mod:`stages.lib.models.relevance`): ``monot5`` (the paper's), ``cross_encoder``,
``causal_lm`` (an instruct LLM asked yes/no) and ``has_answer`` (a gold answer occurs in the
passage, DPR-style; no model). Each passage gets ``relevant`` (bool) and ``rerank_score``.

Fixes relative to the seed: it reads the ``ctxs`` the retriever wrote (the seed read ``docs``,
a rename nobody wrote), keeps a score next to the label, and writes once (the seed appended to
its output file, duplicating rows on every rerun). Only the first ``num_docs`` (40) passages are
labelled and kept: the seed labelled all 50 retrieved, but its sampling and inference read only
the first 40, so behaviour cloning, sampling and inference now see the same passages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from annotated_types import Ge

from orchestrator.api import ConfigError, StageContext, nonsemantic, stage
from stages.lib.data.row_template import RowTemplate, unknown_field
from stages.schemas import Model, RelevancePrompt, Reranked, Retrieved


@dataclass
class RerankConfig:
    method: Literal["monot5", "cross_encoder", "causal_lm", "has_answer"] = "monot5"  # paper: monot5
    # passages labelled and kept per question; sampling and inference read docs[:40] (the seed
    # labelled all 50 retrieved); None = all
    num_docs: Annotated[int, Ge(1)] | None = 40
    reorder: bool = False               # sort by rerank_score; false keeps retriever order (paper)
    threshold: float = 0.5              # label = score > threshold (monoT5: P(true) > P(false))
    passage_template: RowTemplate = "{text}"  # the passage as the expert sees it (seed: text only)
    max_length: Annotated[int, Ge(1)] = 512  # expert input tokens (seed: 512)
    batch_size: Annotated[int, Ge(1)] = nonsemantic(128)  # seed: 128


@stage("rerank", version=3, shard_by="retrieved")  # 3: has_answer tokenises as DPR
def rerank(retrieved: Retrieved, cfg: RerankConfig, ctx: StageContext,
           model: Model | None = None, prompt: RelevancePrompt | None = None) -> Reranked:
    """Label every passage of ``ctxs[:num_docs]`` relevant or not with the expert ``method``
    (``causal_lm`` asks a chat model with the ``prompt`` file, conf/prompts/common/relevance.yaml)."""
    from stages.lib.models.relevance import score_relevance

    if cfg.method != "has_answer" and model is None:
        raise ConfigError(f"rerank: method {cfg.method!r} needs the 'model' input wired "
                          f"(a monoT5 / cross-encoder / chat checkpoint)",
                          hint="wire inputs.model, or use method: has_answer")
    rows = retrieved.rows()
    questions, passages, answers, where = [], [], [], []
    for r, row in enumerate(rows):
        row["ctxs"] = list(row.get("ctxs") or [])[:cfg.num_docs]
        for c, doc in enumerate(row["ctxs"]):
            fields = {k: ("" if v is None else v) for k, v in doc.items()}
            try:
                passages.append(cfg.passage_template.format(**fields))
            except KeyError as e:
                raise unknown_field(f"steps.{ctx.step}.passage_template", cfg.passage_template,
                                    e.args[0], fields) from None
            questions.append(row["question"])
            answers.append(list(row.get("answers") or []))
            where.append((r, c))
    results = score_relevance(
        cfg.method, model.path if model is not None else None, questions, passages,
        answers=answers, batch_size=cfg.batch_size, max_length=cfg.max_length,
        device=ctx.device, threshold=cfg.threshold,
        prompt=prompt.load() if prompt is not None else None,
        progress=lambda it: ctx.progress(it, desc=f"rerank ({cfg.method})"))
    for (r, c), (label, score) in zip(where, results):
        rows[r]["ctxs"][c] = {**rows[r]["ctxs"][c], "relevant": label, "rerank_score": score}
    if cfg.reorder:
        for row in rows:
            row["ctxs"].sort(key=lambda d: -d["rerank_score"])
    relevant = sum(lab for lab, _ in results)
    ctx.log.info("%d questions, %d passages: %d relevant (%.1f%%), %d questions with none",
                 len(rows), len(results), relevant, 100.0 * relevant / max(len(results), 1),
                 sum(1 for row in rows if not any(d["relevant"] for d in row["ctxs"])))
    return rows
