"""Self-RAG's decisions and scores from reflection-token log-probabilities (SEEDS §2.5).

Inputs are dicts token → log-probability at one generated position (a token the backend did not
return counts as log-probability −100, as in the seed). Probabilities are renormalised within each
token group.

Retrieval decision (adaptive mode), on *probabilities*:

    retrieve  iff  p(Ret) / (p(Ret) + p(NoRet)) > δ          (δ = 0.2)

as the seed's long-form code (``run_long_form_static.py`` lines 183-189) and SEEDS §2.5 write
it. The paper (§3.3) normalises p(Retrieve=Yes) "over all output tokens in Retrieve", so its
denominator also holds p(Continue) of ``[Continue to Use Evidence]``; the two agree where that
token's probability at the first position is negligible.

The seed's short-form code compared a ratio of *log*-probabilities,
lp(Ret) / (lp(Ret) + lp(NoRet)), which is large exactly when p(Ret) is small: with δ = 0.2 it
retrieves nearly always (self-rag issue #45). It is available as ``rule="log_ratio"`` to
reproduce published numbers, never as the default.

Per passage p (the generation after ``[Retrieval]<paragraph>p</paragraph>``):

    s_rel = p(Relevant) / (p(Relevant) + p(Irrelevant))
    s_sup = (p(Fully) + 0.5·p(Partially)) / (p(Fully) + p(Partially) + p(NoSupport))
    s_use = Σ_i u_i·p(Utility:i) / Σ_i p(Utility:i),  u = (−1, −0.5, 0, 0.5, 1)
    score = w_rel·s_rel + w_sup·s_sup + w_use·s_use [+ exp(mean token log-prob)]

s_sup and s_use are 0 where the model produced no support / utility token. The last term is the
seed's ``--use_seqscore``: ``run_short_form.py`` lines 100-101 take
``seq_score = cumulative_logprob / max(len(token_ids), 1)`` of the passage's generation (vLLM's
sum of the generated tokens' log-probabilities, end token included) and lines 152-154 add
``np.exp(seq_score)`` unweighted to the weighted sum; ``run_long_form_static.py`` computes the
same at lines 34-35 and 90-92 (see :func:`mean_logprob`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Literal

from stages.selfrag.tokens import (FULLY, IRRELEVANT, NO_RETRIEVAL, NO_SUPPORT, PARTIALLY,
                                   RELEVANT, RETRIEVAL, UTILITY)

MISSING = -100.0
UTILITY_VALUES = (-1.0, -0.5, 0.0, 0.5, 1.0)


def _probs(logprobs: Mapping[str, float], tokens: Sequence[str]) -> list[float]:
    return [math.exp(logprobs.get(t, MISSING)) for t in tokens]


def retrieval_probability(logprobs: Mapping[str, float]) -> float:
    """p(Ret) / (p(Ret) + p(NoRet)).

    >>> round(retrieval_probability({RETRIEVAL: math.log(0.3), NO_RETRIEVAL: math.log(0.6)}), 4)
    0.3333
    """
    p_ret, p_no = _probs(logprobs, (RETRIEVAL, NO_RETRIEVAL))
    return p_ret / (p_ret + p_no) if p_ret + p_no > 0 else 0.0


def decide_retrieval(logprobs: Mapping[str, float], threshold: float,
                     rule: Literal["probability", "log_ratio"] = "probability") -> bool:
    """Retrieve or not at this position.

    >>> lp = {RETRIEVAL: math.log(0.01), NO_RETRIEVAL: math.log(0.98)}
    >>> decide_retrieval(lp, 0.2)                      # p = 0.0101: no retrieval
    False
    >>> decide_retrieval(lp, 0.2, rule="log_ratio")   # −4.605 / (−4.605 − 0.020) = 0.996: retrieve
    True
    """
    if rule == "log_ratio":
        lp_ret, lp_no = logprobs.get(RETRIEVAL, MISSING), logprobs.get(NO_RETRIEVAL, MISSING)
        return lp_ret / (lp_ret + lp_no) > threshold
    return retrieval_probability(logprobs) > threshold


def relevance_score(logprobs: Mapping[str, float]) -> float:
    """p(Relevant) renormalised against p(Irrelevant).

    >>> round(relevance_score({RELEVANT: math.log(0.6), IRRELEVANT: math.log(0.2)}), 4)
    0.75
    """
    rel, irr = _probs(logprobs, (RELEVANT, IRRELEVANT))
    return rel / (rel + irr) if rel + irr > 0 else 0.0


def support_score(logprobs: Mapping[str, float] | None) -> float:
    """(0.5·0.2 + 0.5) / 1.0 with p = (Fully 0.5, Partially 0.2, No 0.3):

    >>> lp = {FULLY: math.log(0.5), PARTIALLY: math.log(0.2), NO_SUPPORT: math.log(0.3)}
    >>> round(support_score(lp), 4)
    0.6
    >>> support_score(None)
    0.0
    """
    if not logprobs:
        return 0.0
    full, part, none = _probs(logprobs, (FULLY, PARTIALLY, NO_SUPPORT))
    total = full + part + none
    return (full + 0.5 * part) / total if total > 0 else 0.0


def utility_score(logprobs: Mapping[str, float] | None) -> float:
    """Expected utility on (−1, −0.5, 0, 0.5, 1); all mass on Utility:5 gives 1, on 1 gives −1.

    >>> lp = {t: math.log(p) for t, p in zip(UTILITY, (0.0001, 0.0001, 0.0001, 0.5, 0.4997))}
    >>> round(utility_score(lp), 3)       # 0.5·0.5 + 1·0.4997 − 0.5·0.0001 − 0.0001 ≈ 0.750
    0.75
    """
    if not logprobs:
        return 0.0
    probs = _probs(logprobs, UTILITY)
    total = sum(probs)
    return sum(u * p for u, p in zip(UTILITY_VALUES, probs)) / total if total > 0 else 0.0


def mean_logprob(token_logprobs: Sequence[float]) -> float:
    """The seed's ``seq_score``: the generated tokens' summed log-probability over their number
    (at least 1, so no tokens gives 0 and a sequence score exp(0) = 1).

    Tokens with probabilities 0.5, 0.25, 0.5 (end token included): (−0.693 − 1.386 − 0.693) / 3
    = −0.924, exp(−0.924) = 0.397, the geometric mean of the probabilities.

    >>> m = mean_logprob([math.log(0.5), math.log(0.25), math.log(0.5)])
    >>> round(m, 3), round(math.exp(m), 3)
    (-0.924, 0.397)
    >>> mean_logprob([])
    0.0
    """
    return sum(token_logprobs) / max(len(token_logprobs), 1)


def passage_score(s_rel: float, s_sup: float, s_use: float, weights: Mapping[str, float],
                  mean_logprob: float | None = None) -> float:
    """w_rel·s_rel + w_sup·s_sup + w_use·s_use, plus exp(mean log-prob) when given.

    >>> passage_score(0.75, 0.6, 0.5, {"rel": 1.0, "sup": 1.0, "use": 0.5})
    1.6
    >>> round(passage_score(0.75, 0.6, 0.5, {"rel": 1.0, "sup": 1.0, "use": 0.5}, math.log(0.5)), 4)
    2.1
    """
    score = weights["rel"] * s_rel + weights["sup"] * s_sup + weights["use"] * s_use
    return score + (math.exp(mean_logprob) if mean_logprob is not None else 0.0)


def closed_set_vote(answers: Sequence[str], scores: Sequence[float]) -> str:
    """Closed-set tasks (FEVER, ARC): sum the scores per distinct answer, take the best.

    >>> closed_set_vote(["true", "false", "true"], [0.9, 1.5, 0.7])
    'true'
    """
    totals: dict[str, float] = defaultdict(float)
    for answer, score in zip(answers, scores):
        totals[answer] += score
    return max(totals, key=totals.__getitem__)
