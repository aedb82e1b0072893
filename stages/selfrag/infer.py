"""Stage ``selfrag.infer``: short-form answers from a Self-RAG generator (SEEDS §2.5).

Modes: ``no_retrieval`` (the answer continues ``[No Retrieval]``), ``always_retrieve`` (one
generation per passage of the first ``ndocs``, each continuing
``[Retrieval]<paragraph>title\\ntext</paragraph>``, scored by its reflection tokens; the best
passage's answer wins, or for closed-set tasks the answer with the highest summed score), and
``adaptive_retrieval``: the first generated position's log-probabilities of ``[Retrieval]`` and
``[No Retrieval]`` decide, by p(Ret)/(p(Ret)+p(NoRet)) > threshold, as the seed's long-form
code and SEEDS §2.5 write it (the paper, §3.3, normalises over all three Retrieve tokens, so
also over ``[Continue to Use Evidence]``; the two differ only where that token is likely at the
first position), or ``rule: log_ratio``, the seed's short-form ratio of log-probabilities, which
retrieves nearly always (self-rag issue #45; see :mod:`stages.selfrag.scoring`).

Every generation goes through the shared endpoint client (cached: ``docs/llm-endpoint.md``, so a
killed step resumes; backends transformers, vLLM or an OpenAI-style server). Questions of the
``long_form`` sets (ASQA, ELI5, FactScore) that retrieve get the segment-level beam search
instead (:mod:`stages.selfrag.long_form`; ``beam_width``, ``max_depth`` = at most that many
segments, ``long_form_w_use``), the answer citing its passages ALCE-style ("... [1] ... [2]");
those that do not retrieve keep their answer up to its first blank line, line breaks kept (ALCE
scores the first line). Output: the shared
``Predictions`` columns (``ctxs``: the passages read, ``selected``: the winning one, 1-based) plus
``retrieved`` and ``p_retrieve`` (adaptive mode's probability, else null) and the per-passage
``scores``.

Weights as the seed's code: short form ``w_use`` 1.0 (``run_short_form.py`` line 285's default;
the README's short-form commands do not set it), long form ``long_form_w_use`` 0.5 (the README's
default; ``run_long_form_static.py`` line 364 passes 0.5). The paper (§4.2) states 1.0 / 1.0 /
0.5 as its default for every task, so short form's ``w_use`` follows the code, not the paper:
``w_use=0.5`` gives the paper's. ``max_new_tokens`` applies
per generation; ``long_form_max_new_tokens`` and ``closed_set_max_new_tokens`` (None: the same)
set the long-form (README: 300, ASQA / FactScore, per segment) and closed-set (README: 50, ARC /
PubHealth) values.

``use_seqscore`` adds exp(mean log-probability of the passage's generated tokens) to its score,
as the seed's flag does (``run_short_form.py`` lines 100-101 and 152-154; the tokens' own
log-probabilities come from the endpoint client's ``token_logprobs``, each backend's, end token
included as vLLM counts it). In long form it scores each segment's own tokens (up to its next
``[Retrieval]``), like the reflection tokens there.

Long-form questions in adaptive mode first get the seed's pre-check (``run_long_form_static.py``
lines 170-189 at 1fcdc42): ``long_form_precheck_tokens`` (25, the seed's) tokens generated
greedily, and retrieval iff the pre-check's text up to its first blank line holds
``[Retrieval]`` *and* the first position's p(Ret)/(p(Ret)+p(NoRet)) passes the threshold (the
rule above); 0 decides by the threshold alone, as short form does. The seed's pinned vLLM
0.2.6 decodes with ``skip_special_tokens=True`` by default, which drops the reflection tokens
(special tokens of its tokenizer) from the text, so run as pinned its text test could not see
``[Retrieval]`` and the seed never retrieved here; we read the text with the reflection tokens
kept (the generated tokens' pieces), the evident intent.

Fixes relative to the seed: the threshold is applied to probabilities by default; the decision
reads the asked tokens' log-probabilities directly (the seed raised KeyError when a token was not
among the returned top log-probs); in long form ``use_seqscore`` is honoured (the seed's beam
search calls ``run_step_generation_batch`` without it, ``run_long_form_static.py`` lines 221-224,
so its flag never reached the score there). Not here: the seed's re-decision of
``[No Retrieval]`` tokens inside a long-form segment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

import pyarrow as pa
from annotated_types import Ge

from orchestrator.api import ConfigError, StageContext, Table, stage
from stages.lib.endpoint import EndpointConfig
from stages.schemas import Model, Predictions, Retrieved


ASQA_REFERENCES = ("qa_pairs", "annotations", "long_answers")
"""Question columns passed through to the predictions when present (selfrag.evaluate's ALCE
metrics read them)."""


class SelfragPredictions(Table):
    """``Predictions`` plus whether the model retrieved and adaptive mode's p(Ret)."""

    schema = pa.schema(list(Predictions.schema) + [("retrieved", pa.bool_()),
                                                   ("p_retrieve", pa.float32()),
                                                   ("scores", pa.list_(pa.float32()))])


@dataclass
class SelfragInferConfig:
    mode: Literal["always_retrieve", "no_retrieval", "adaptive_retrieval"] = "adaptive_retrieval"
    threshold: float = 0.2                # δ on p(Ret)/(p(Ret)+p(NoRet)) (paper: 0.2)
    rule: Literal["probability", "log_ratio"] = "probability"   # log_ratio: the seed's #45
    ndocs: Annotated[int, Ge(1)] = 10     # per question (the README: 10 PopQA; 5 ARC,
                                          # PubHealth, ASQA, FactScore)
    w_rel: float = 1.0
    w_sup: float = 1.0
    w_use: float = 1.0                    # short form: run_short_form.py's default
                                          # (the paper's stated default: 0.5)
    long_form_w_use: float = 0.5          # long form (the paper, the README, run_long_form_static)
    use_seqscore: bool = False            # + exp(mean log-prob of the generated tokens)
    max_new_tokens: Annotated[int, Ge(1)] = 100
    long_form_max_new_tokens: Annotated[int, Ge(1)] | None = None   # None: max_new_tokens
    closed_set_max_new_tokens: Annotated[int, Ge(1)] | None = None  # None: max_new_tokens
    # a key names a set as a whole word of its name (openbookqa_processed_retrieved, medqa_test_en)
    closed_set: list[str] = field(default_factory=lambda: [   # health_claims: PubHealth's file
        "fever", "arc", "obqa", "openbookqa", "medqa", "pubhealth", "health_claims"])
    long_form: list[str] = field(default_factory=lambda: ["asqa", "eli5", "factscore"])
    beam_width: Annotated[int, Ge(1)] = 2     # long form (paper: 2)
    max_depth: Annotated[int, Ge(1)] = 6      # long form: segments at most (the seed's
                                              # --max_depth 7 makes 6: stages/selfrag/beam.py)
    # adaptive long form: greedy pre-check length; retrieve iff its text holds [Retrieval] and
    # the threshold passes (the seed's 25); 0: the threshold alone, as short form
    long_form_precheck_tokens: Annotated[int, Ge(0)] = 25
    llm: EndpointConfig = field(default_factory=lambda: EndpointConfig(backend="transformers",
                                                                       model=""))

    def __post_init__(self):
        if self.rule == "probability" and not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold: {self.threshold} is not a probability (rule: "
                              f"probability compares p(Ret)/(p(Ret)+p(NoRet)) with it)",
                              hint="give a threshold in [0, 1] (paper: 0.2)")


def _decisions(client, rows: list[dict], long: list[bool], cfg: SelfragInferConfig,
               ctx: StageContext):
    """Per row: (retrieve?, p(Ret) or None). Adaptive mode reads the first generated position; a
    long-form row's request is the pre-check (``long_form_precheck_tokens`` greedy tokens),
    whose text must also ask for retrieval (:func:`stages.selfrag.long_form.precheck_retrieves`).
    """
    from stages.selfrag.long_form import precheck_retrieves
    from stages.selfrag.scoring import decide_retrieval, retrieval_probability
    from stages.selfrag.tokens import NO_RETRIEVAL, RETRIEVAL

    if cfg.mode != "adaptive_retrieval":
        return [(cfg.mode == "always_retrieve", None)] * len(rows)
    from stages.lib.endpoint import ChatRequest

    pre = [lg and cfg.long_form_precheck_tokens > 0 for lg in long]
    asks = [ChatRequest(_messages(r), max_tokens=cfg.long_form_precheck_tokens if p else 1,
                        temperature=0.0 if p else None, logprobs_of=(RETRIEVAL, NO_RETRIEVAL))
            for r, p in zip(rows, pre)]
    replies = client.complete(asks, progress=lambda it: ctx.progress(it, desc="decide"))
    out = []
    for p, reply in zip(pre, replies):
        lp = (reply.logprobs or [[{}]])[0]
        lp = lp[0] if lp else {}
        yes = decide_retrieval(lp, cfg.threshold, cfg.rule)
        if p:   # the text with its reflection tokens: the generated tokens' pieces
            yes = yes and precheck_retrieves("".join(reply.tokens[0]) if reply.tokens
                                             else reply.text)
        out.append((yes, retrieval_probability(lp)))
    return out


def _max_tokens(row: dict, long: bool, cfg: SelfragInferConfig) -> int:
    """The generation length for a row's set: long form, closed set or the rest."""
    from stages.selfrag.short_form import is_closed_set

    if long:
        return cfg.long_form_max_new_tokens or cfg.max_new_tokens
    if is_closed_set(row.get("dataset") or "", cfg.closed_set):
        return cfg.closed_set_max_new_tokens or cfg.max_new_tokens
    return cfg.max_new_tokens


def _messages(row: dict) -> list[dict]:
    return [{"role": "user", "content": row["question"]}]


def _requests(rows: list[dict], retrieve: list[bool], long: list[bool], cfg: SelfragInferConfig):
    """All short-form generations: (row index, passage index or None, ChatRequest)."""
    from stages.lib.endpoint import ChatRequest
    from stages.selfrag.short_form import NO_RETRIEVAL_PREFIX, passage_prefix
    from stages.selfrag.tokens import REFLECTION_TOKENS

    jobs = []
    for i, row in enumerate(rows):
        ctxs = list(row.get("ctxs") or [])[:cfg.ndocs]
        max_tokens = _max_tokens(row, long[i], cfg)
        if retrieve[i] and ctxs and long[i]:
            continue                      # the beam search asks its own generations
        if retrieve[i] and ctxs:
            for p, c in enumerate(ctxs):
                jobs.append((i, p, ChatRequest(
                    _messages(row), max_tokens=max_tokens, logprobs_of=REFLECTION_TOKENS,
                    prefix=passage_prefix(c.get("title") or "", c.get("text") or ""),
                    token_logprobs=cfg.use_seqscore)))
        else:
            jobs.append((i, None, ChatRequest(_messages(row), max_tokens=max_tokens,
                                              prefix=NO_RETRIEVAL_PREFIX)))
    return jobs


def _short_form(row: dict, answers: list, cfg: SelfragInferConfig, long: bool = False) -> dict:
    """Prediction, selected passage and scores from one row's short-form replies (``long``: a
    long-form row's answer without retrieval, cut at its first blank line, lines kept)."""
    from stages.selfrag.long_form import no_retrieval_answer
    from stages.selfrag.short_form import choose, is_closed_set, reply_scores
    from stages.selfrag.tokens import strip_reflection

    if answers[0][0] is None:
        text = answers[0][1].text
        return {"prediction": no_retrieval_answer(text) if long else strip_reflection(text),
                "retrieved": False, "selected": [], "scores": []}
    texts = [strip_reflection(r.text) for _, r in answers]
    weights = {"rel": cfg.w_rel, "sup": cfg.w_sup, "use": cfg.w_use}
    scores = [reply_scores((r.tokens or [[]])[0], (r.logprobs or [[]])[0], weights,
                           (r.token_logprobs or [[]])[0] if cfg.use_seqscore else None)["score"]
              for _, r in answers]
    closed = is_closed_set(row.get("dataset") or "", cfg.closed_set)
    prediction, best = choose(texts, scores, closed)
    return {"prediction": prediction, "retrieved": True, "selected": [best + 1], "scores": scores}


def _long_form(client, rows: list[dict], todo: list[int], cfg: SelfragInferConfig,
               ctx: StageContext) -> dict[int, dict]:
    """The beam search's answer for each row index in ``todo``."""
    from stages.selfrag.long_form import long_form_answer

    weights = {"rel": cfg.w_rel, "sup": cfg.w_sup, "use": cfg.long_form_w_use}
    out = {}
    for i in ctx.progress(todo, desc="long form"):
        answer, cited = long_form_answer(client, _messages(rows[i]), rows[i]["ctxs"][:cfg.ndocs],
                                         weights, _max_tokens(rows[i], True, cfg), cfg.beam_width,
                                         cfg.max_depth, cfg.use_seqscore)
        out[i] = {"prediction": answer, "retrieved": True, "selected": cited, "scores": []}
    return out


# 2: short-form w_use 1.0 (long form long_form_w_use 0.5); per-form max_new_tokens; beam search
#    as the seed's (finished nodes not carried on, prefixes without earlier passages, repeated
#    segments dropped, max_depth counts segments); long-form answers keep their line breaks
# 3: OpenBookQA under its full name and MedQA are closed sets (the summed-score vote)
# 4: adaptive long form: the seed's 25-token pre-check must hold [Retrieval] as well
# version 5: generation stops at a chat template's end of turn
@stage("selfrag.infer", version=5, shard_by="questions", multi_gpu="one_process")
def infer(questions: Retrieved, model: Model, cfg: SelfragInferConfig,
          ctx: StageContext) -> SelfragPredictions:
    """Self-RAG answers (no / always / adaptive retrieval) with per-passage reflection scores."""
    from stages.lib.endpoint import open_client
    from stages.lib.endpoint.checkpoint import local_llm
    from stages.selfrag.short_form import is_closed_set

    rows = questions.rows()
    if not rows:
        return []
    llm = local_llm(cfg.llm, model, "infer.llm")
    long = [is_closed_set(r.get("dataset") or "", cfg.long_form) for r in rows]
    scratch = ctx.scratch / "generator"
    with open_client(llm, scratch, device=ctx.device,
                     answers=ctx.answers, refresh=ctx.forced, where="infer.llm") as client:
        decided = _decisions(client, rows, long, cfg, ctx)
        retrieve = [d for d, _ in decided]
        jobs = _requests(rows, retrieve, long, cfg)
        replies = client.complete([req for _, _, req in jobs],
                                  progress=lambda it: ctx.progress(it, desc="generate"))
        todo = [i for i, r in enumerate(rows) if retrieve[i] and long[i] and r.get("ctxs")]
        answered = _long_form(client, rows, todo, cfg, ctx)
    per_row: dict[int, list] = {}
    for (i, p, _), reply in zip(jobs, replies):
        per_row.setdefault(i, []).append((p, reply))
    kept = ["id", "dataset", "question", "answers", "gold"] + [
        k for k in ASQA_REFERENCES if any(k in r for r in rows)]
    out = []
    for i, row in enumerate(rows):
        got = answered[i] if i in answered else _short_form(row, per_row[i], cfg, long[i])
        ctxs = list(row.get("ctxs") or [])[:cfg.ndocs] if got["retrieved"] else []
        out.append({**{k: row.get(k) for k in kept},
                    "ctxs": [{k: c.get(k) for k in ("id", "title", "text", "score")} for c in ctxs],
                    "selection": ", ".join(f"[{s}]" for s in got["selected"]) or "None",
                    "p_retrieve": decided[i][1], **got})
    ctx.log.info("selfrag.infer (%s): %d questions, %d retrieved (%d long form), %d generations",
                 cfg.mode, len(rows), sum(r["retrieved"] for r in out), len(answered), len(jobs))
    return out
