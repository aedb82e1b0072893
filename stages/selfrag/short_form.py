"""Self-RAG short-form inference as pure functions (SEEDS §2.5): the prefixes a generation
continues, the per-passage score read off one reply, the choice among passages.

A reply is given as its generated tokens and, per position, the log-probabilities of the
reflection tokens (``ChatReply.tokens[0]`` / ``ChatReply.logprobs[0]``). As in the seed:
``s_rel`` is read at generated position 0 (right after ``</paragraph>``); ``s_sup`` at the first
position that generated a support token and ``s_use`` at the first that generated a utility token,
0 where the model generated none. With ``use_seqscore`` the reply's generated tokens' own
log-probabilities (``ChatReply.token_logprobs[0]``) add exp(their mean), as the seed does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from stages.lib.data.set_names import names_set
from stages.selfrag.scoring import (closed_set_vote, mean_logprob, passage_score,
                                    relevance_score, support_score, utility_score)
from stages.selfrag.tokens import (NO_RETRIEVAL, PARAGRAPH_CLOSE, PARAGRAPH_OPEN, RETRIEVAL,
                                   SUPPORT_TOKENS, UTILITY)


def passage_prefix(title: str, text: str) -> str:
    """The assistant prefix of the generation for one passage.

    >>> passage_prefix("Velmora", "Founded by Ardan Velsh.")
    '[Retrieval]<paragraph>Velmora\\nFounded by Ardan Velsh.</paragraph>'
    """
    return f"{RETRIEVAL}{PARAGRAPH_OPEN}{title}\n{text}{PARAGRAPH_CLOSE}"


NO_RETRIEVAL_PREFIX = NO_RETRIEVAL


def first_position(tokens: Sequence[str], group: Sequence[str]) -> int | None:
    """Index of the first generated token in ``group`` (None if none).

    >>> first_position(["[Relevant]", "Paris", "[Fully supported]", "[Utility:5]"], UTILITY)
    3
    >>> first_position(["Paris"], SUPPORT_TOKENS) is None
    True
    """
    return next((t for t, tok in enumerate(tokens) if tok.strip() in group), None)


def reply_scores(tokens: Sequence[str], logprobs: Sequence[Mapping[str, float]],
                 weights: Mapping[str, float],
                 token_logprobs: Sequence[float] | None = None) -> dict[str, float]:
    """s_rel, s_sup, s_use and their weighted sum for one passage's reply; with the generated
    tokens' own log-probabilities (``use_seqscore``) also ``seq`` = exp(their mean), added to
    the score.

    >>> import math
    >>> lp = [{"[Relevant]": math.log(0.6), "[Irrelevant]": math.log(0.2)}, {},
    ...       {"[Fully supported]": math.log(0.5), "[Partially supported]": math.log(0.2),
    ...        "[No support / Contradictory]": math.log(0.3)},
    ...       {u: math.log(p) for u, p in zip(UTILITY, (0.1, 0.1, 0.1, 0.1, 0.6))}]
    >>> toks = ["[Relevant]", "Paris", "[Fully supported]", "[Utility:5]"]
    >>> s = reply_scores(toks, lp, {"rel": 1.0, "sup": 1.0, "use": 0.5})
    >>> [round(s[k], 4) for k in ("s_rel", "s_sup", "s_use", "score")]   # 0.75 + 0.6 + 0.5·0.5
    [0.75, 0.6, 0.5, 1.6]
    >>> own = [math.log(0.5), math.log(0.25), math.log(0.5), math.log(1.0)]   # mean −0.693
    >>> s = reply_scores(toks, lp, {"rel": 1.0, "sup": 1.0, "use": 0.5}, own)
    >>> round(s["seq"], 4), round(s["score"], 4)                        # 1.6 + exp(−0.693)
    (0.5, 2.1)
    """
    s_rel = relevance_score(logprobs[0]) if logprobs else 0.0
    sup_at, use_at = first_position(tokens, SUPPORT_TOKENS), first_position(tokens, UTILITY)
    s_sup = support_score(logprobs[sup_at]) if sup_at is not None else 0.0
    s_use = utility_score(logprobs[use_at]) if use_at is not None else 0.0
    mean = mean_logprob(token_logprobs) if token_logprobs is not None else None
    return {"s_rel": s_rel, "s_sup": s_sup, "s_use": s_use,
            "seq": math.exp(mean) if mean is not None else None,
            "score": passage_score(s_rel, s_sup, s_use, weights, mean)}


def is_closed_set(dataset: str, closed_set: Sequence[str]) -> bool:
    """A closed-set task: a ``closed_set`` key names the dataset (a whole word of its name).

    >>> [is_closed_set(d, ["fever", "arc"]) for d in ("arc_challenge", "nq", "msmarco")]
    [True, False, False]
    """
    return any(names_set(key, dataset) for key in closed_set)


def choose(answers: Sequence[str], scores: Sequence[float], closed: bool) -> tuple[str, int]:
    """The answer and the (0-based) passage it came from: the best passage's answer, or for a
    closed set the answer with the highest summed score (its best passage).

    >>> choose(["true", "false", "true"], [0.9, 1.5, 0.7], closed=False)
    ('false', 1)
    >>> choose(["true", "false", "true"], [0.9, 1.5, 0.7], closed=True)
    ('true', 0)
    """
    if closed:
        answer = closed_set_vote(answers, scores)
        best = max((i for i, a in enumerate(answers) if a == answer), key=lambda i: scores[i])
        return answer, best
    best = max(range(len(scores)), key=lambda i: scores[i])
    return answers[best], best
