"""Decisions and scores on given log-probabilities, computed by hand."""

import doctest
import math

import pytest

from stages.selfrag import scoring
from stages.selfrag.scoring import (closed_set_vote, decide_retrieval, mean_logprob,
                                    passage_score, relevance_score, support_score, utility_score)
from stages.selfrag.short_form import reply_scores
from stages.selfrag.tokens import (FULLY, IRRELEVANT, NO_RETRIEVAL, NO_SUPPORT, PARTIALLY, RELEVANT,
                                   RETRIEVAL, UTILITY)


def test_doctests():
    assert doctest.testmod(scoring).failed == 0


def lp(**probs):
    return {k: math.log(v) for k, v in probs.items()}


def test_threshold_on_probability_not_log_ratio():
    # p(Ret) = 0.15, p(NoRet) = 0.45 → 0.25 > 0.2: retrieve; at 0.3 not
    logprobs = {RETRIEVAL: math.log(0.15), NO_RETRIEVAL: math.log(0.45)}
    assert decide_retrieval(logprobs, 0.2) is True
    assert decide_retrieval(logprobs, 0.3) is False
    # log ratio: −1.897 / (−1.897 − 0.799) = 0.704 → retrieves at 0.3 and even 0.7 (issue #45)
    assert decide_retrieval(logprobs, 0.7, rule="log_ratio") is True


def test_missing_token_counts_as_minus_100():
    assert decide_retrieval({NO_RETRIEVAL: math.log(0.9)}, 0.2) is False
    assert relevance_score({RELEVANT: math.log(0.4)}) == pytest.approx(1.0)


def test_three_scores_by_hand():
    s_rel = relevance_score({RELEVANT: math.log(0.3), IRRELEVANT: math.log(0.1)})
    assert s_rel == pytest.approx(0.75)
    s_sup = support_score(lp(**{FULLY: 0.2, PARTIALLY: 0.4, NO_SUPPORT: 0.4}))
    assert s_sup == pytest.approx(0.2 + 0.5 * 0.4)
    s_use = utility_score({t: math.log(p) for t, p in zip(UTILITY, (0.1, 0.1, 0.2, 0.2, 0.4))})
    assert s_use == pytest.approx(-0.1 - 0.05 + 0 + 0.1 + 0.4)
    weights = {"rel": 1.0, "sup": 1.0, "use": 0.5}
    assert passage_score(s_rel, s_sup, s_use, weights) == pytest.approx(0.75 + 0.4 + 0.5 * 0.35)
    assert utility_score(None) == 0.0 and support_score({}) == 0.0


def test_closed_set_sums_per_answer():
    assert closed_set_vote(["A", "B", "B"], [1.0, 0.6, 0.5]) == "B"


def test_sequence_score_is_exp_of_the_mean_token_logprob_added_unweighted():
    # the seed: exp(cumulative_logprob / max(len(token_ids), 1)) + w_rel·s_rel + ...
    own = [math.log(0.8), math.log(0.5), math.log(0.2)]          # sum −2.526, 3 tokens
    assert mean_logprob(own) == pytest.approx((-0.22314 - 0.69315 - 1.60944) / 3, abs=1e-5)
    assert math.exp(mean_logprob(own)) == pytest.approx((0.8 * 0.5 * 0.2) ** (1 / 3))   # 0.4309
    weights = {"rel": 1.0, "sup": 1.0, "use": 0.5}
    assert passage_score(0.5, 0.0, 0.0, weights, mean_logprob(own)) == pytest.approx(0.5 + 0.4309,
                                                                                     abs=1e-4)
    assert mean_logprob([]) == 0.0          # no token: exp(0) = 1, as max(len, 1) gives
    # a reply: [Relevant] (p 0.6 vs 0.2) then "Paris"; no support or utility token
    toks = [RELEVANT, "Paris"]
    lps = [lp(**{RELEVANT: 0.6, IRRELEVANT: 0.2}), {}]
    plain = reply_scores(toks, lps, weights)
    seq = reply_scores(toks, lps, weights, [math.log(0.6), math.log(0.9)])
    assert plain["seq"] is None and plain["score"] == pytest.approx(0.75)
    assert seq["seq"] == pytest.approx(0.734847, abs=1e-6)   # exp((ln 0.6 + ln 0.9) / 2) = √0.54
    assert seq["score"] == pytest.approx(0.75 + 0.734847, abs=1e-6)
