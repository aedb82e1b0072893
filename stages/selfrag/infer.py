"""Stage ``selfrag.infer``: short-form answers from a Self-RAG generator (SEEDS §2.5).

Modes: ``no_retrieval`` (the answer continues ``[No Retrieval]``), ``always_retrieve`` (one
generation per passage of the first ``ndocs``, each continuing
``[Retrieval]<paragraph>title\\ntext</paragraph>``, scored by its reflection tokens; the best
passage's answer wins, or for closed-set tasks the answer with the highest summed score), and
``adaptive_retrieval``: the first generated position's log-probabilities of ``[Retrieval]`` and
``[No Retrieval]`` decide, by the paper's rule p(Ret)/(p(Ret)+p(NoRet)) > threshold
(``rule: log_ratio`` is the seed code's ratio of log-probabilities, which retrieves nearly always,
self-rag issue #45; see :mod:`stages.selfrag.scoring`).

Every generation goes through the shared endpoint client (cached under the step's scratch, so a
killed step resumes; backends transformers, vLLM or an OpenAI-style server). Output: the shared
``Predictions`` columns (``ctxs``: the passages read, ``selected``: the winning one, 1-based) plus
``retrieved`` and ``p_retrieve`` (adaptive mode's probability, else null) and the per-passage
``scores``.

Fixes relative to the seed: the threshold is applied to probabilities by default; the decision
reads the asked tokens' log-probabilities directly (the seed raised KeyError when a token was not
among the returned top log-probs). Not here: ``use_seqscore`` (the endpoint client reports only
the asked tokens' log-probabilities, not the generated tokens'), and long-form beam search
(:mod:`stages.selfrag.beam` holds the search; it is not wired into a stage yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import pyarrow as pa
from annotated_types import Ge

from orchestrator.api import ConfigError, StageContext, Table, stage
from stages.lib.endpoint import EndpointConfig
from stages.schemas import Model, Predictions, Retrieved


class SelfragPredictions(Table):
    """``Predictions`` plus whether the model retrieved and adaptive mode's p(Ret)."""

    schema = pa.schema(list(Predictions.schema) + [("retrieved", pa.bool_()),
                                                   ("p_retrieve", pa.float32()),
                                                   ("scores", pa.list_(pa.float32()))])


@dataclass
class SelfragInferConfig:
    mode: Literal["always_retrieve", "no_retrieval", "adaptive_retrieval"] = "adaptive_retrieval"
    threshold: float = 0.2                # paper's δ on p(Ret)/(p(Ret)+p(NoRet))
    rule: Literal["probability", "log_ratio"] = "probability"   # log_ratio: the seed's #45
    ndocs: Annotated[int, Ge(1)] = 10     # passages per question (paper: 10 PopQA/TQA, 5 ARC/PubHealth)
    w_rel: float = 1.0
    w_sup: float = 1.0
    w_use: float = 0.5
    use_seqscore: bool = False            # not available through the endpoint client (see above)
    max_new_tokens: Annotated[int, Ge(1)] = 100
    closed_set: list[str] = field(default_factory=lambda: ["fever", "arc", "obqa", "pubhealth"])
    llm: EndpointConfig = field(default_factory=lambda: EndpointConfig(backend="transformers",
                                                                       model=""))

    def __post_init__(self):
        if self.use_seqscore:
            raise ConfigError("use_seqscore: true is not supported: the endpoint client reports "
                              "only the asked tokens' log-probabilities",
                              hint="set use_seqscore: false (the score is w_rel·s_rel + "
                                   "w_sup·s_sup + w_use·s_use)")


def _decisions(client, rows: list[dict], cfg: SelfragInferConfig, ctx: StageContext):
    """Per row: (retrieve?, p(Ret) or None)."""
    from stages.selfrag.scoring import decide_retrieval, retrieval_probability
    from stages.selfrag.tokens import NO_RETRIEVAL, RETRIEVAL

    if cfg.mode != "adaptive_retrieval":
        return [(cfg.mode == "always_retrieve", None)] * len(rows)
    from stages.lib.endpoint import ChatRequest

    asks = [ChatRequest(_messages(r), max_tokens=1, logprobs_of=(RETRIEVAL, NO_RETRIEVAL))
            for r in rows]
    replies = client.complete(asks, progress=lambda it: ctx.progress(it, desc="decide"))
    out = []
    for reply in replies:
        lp = (reply.logprobs or [[{}]])[0]
        lp = lp[0] if lp else {}
        out.append((decide_retrieval(lp, cfg.threshold, cfg.rule), retrieval_probability(lp)))
    return out


def _messages(row: dict) -> list[dict]:
    return [{"role": "user", "content": row["question"]}]


def _requests(rows: list[dict], retrieve: list[bool], cfg: SelfragInferConfig):
    """All answer generations: (row index, passage index or None, ChatRequest)."""
    from stages.lib.endpoint import ChatRequest
    from stages.selfrag.short_form import NO_RETRIEVAL_PREFIX, passage_prefix
    from stages.selfrag.tokens import REFLECTION_TOKENS

    jobs = []
    for i, row in enumerate(rows):
        ctxs = list(row.get("ctxs") or [])[:cfg.ndocs]
        if retrieve[i] and ctxs:
            for p, c in enumerate(ctxs):
                jobs.append((i, p, ChatRequest(
                    _messages(row), max_tokens=cfg.max_new_tokens, logprobs_of=REFLECTION_TOKENS,
                    prefix=passage_prefix(c.get("title") or "", c.get("text") or ""))))
        else:
            jobs.append((i, None, ChatRequest(_messages(row), max_tokens=cfg.max_new_tokens,
                                              prefix=NO_RETRIEVAL_PREFIX)))
    return jobs


@stage("selfrag.infer", version=1, shard_by="questions", multi_gpu="one_process")
def infer(questions: Retrieved, model: Model, cfg: SelfragInferConfig,
          ctx: StageContext) -> SelfragPredictions:
    """Self-RAG answers (no / always / adaptive retrieval) with per-passage reflection scores."""
    from stages.lib.endpoint import open_client
    from stages.lib.endpoint.checkpoint import local_llm
    from stages.selfrag.short_form import choose, is_closed_set, reply_scores
    from stages.selfrag.tokens import strip_reflection

    rows = questions.rows()
    if not rows:
        return []
    llm = local_llm(cfg.llm, model, "infer.llm")
    weights = {"rel": cfg.w_rel, "sup": cfg.w_sup, "use": cfg.w_use}
    with open_client(llm, ctx.scratch / "generator", device=ctx.device, where="infer.llm") as client:
        decided = _decisions(client, rows, cfg, ctx)
        jobs = _requests(rows, [d for d, _ in decided], cfg)
        replies = client.complete([req for _, _, req in jobs],
                                  progress=lambda it: ctx.progress(it, desc="generate"))
    per_row: dict[int, list] = {}
    for (i, p, _), reply in zip(jobs, replies):
        per_row.setdefault(i, []).append((p, reply))
    out = []
    for i, row in enumerate(rows):
        answers = [(p, strip_reflection(r.text), r) for p, r in per_row[i]]
        retrieved = answers[0][0] is not None
        ctxs = list(row.get("ctxs") or [])[:cfg.ndocs] if retrieved else []
        scores, selected, prediction = [], [], answers[0][1]
        if retrieved:
            scores = [reply_scores((r.tokens or [[]])[0], (r.logprobs or [[]])[0], weights)["score"]
                      for _, _, r in answers]
            closed = is_closed_set(row.get("dataset") or "", cfg.closed_set)
            prediction, best = choose([a for _, a, _ in answers], scores, closed)
            selected = [best + 1]
        out.append({**{k: row.get(k) for k in ("id", "dataset", "question", "answers", "gold")},
                    "ctxs": [{k: c.get(k) for k in ("id", "title", "text", "score")} for c in ctxs],
                    "selected": selected, "selection": ", ".join(f"[{s}]" for s in selected)
                    or "None", "prediction": prediction, "retrieved": retrieved,
                    "p_retrieve": decided[i][1], "scores": scores})
    ctx.log.info("selfrag.infer (%s): %d questions, %d retrieved, %d generations", cfg.mode,
                 len(rows), sum(r["retrieved"] for r in out), len(jobs))
    return out
