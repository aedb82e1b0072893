"""Pseudo-query synthesis (Reinforced-IR step 1) as pure, seeded functions: the length, style
and stance constraints sampled per passage, and the reading of the model's query and
quality-control answers (the prompts themselves are files, ``conf/prompts/reinforced_ir/``).

Constraint weights are the original's: length "less than 5 words" ×2, "5 to 10 words" ×5,
"10 to 15 words" ×4, "at least 15 words" ×1; style "plain and simple" ×4, "common and formal"
×4, "casual and informal" ×2, "professional and complex" ×1.

Claims differ in two ways (the original's ``get_query_generation_prompt``): the length is drawn
from "10 to 15 words" ×5, "at least 15 words" ×2 (for every claim query type, ArguAna's too), and
the claim datasets (SciFact, FEVER, Climate-FEVER) ask each passage, at random with equal odds,
for a claim it supports or one it refutes (ArguAna: always one it refutes). Per passage the draws
come in the original's order: length, style, then the stance. The stance reaches the prompt as
``{relation}``, the verb saying what the passage does to the query: ``answers`` (a question),
``supports`` or ``refutes`` (a claim).
"""

from __future__ import annotations

import random
from collections.abc import Mapping

LENGTHS = {"less than 5 words": 2, "5 to 10 words": 5, "10 to 15 words": 4, "at least 15 words": 1}
STYLES = {"plain and simple": 4, "common and formal": 4, "casual and informal": 2,
          "professional and complex": 1}
CLAIM_LENGTHS = {"10 to 15 words": 5, "at least 15 words": 2}
# SynthesizeConfig.stance: none = questions the passage answers; supports / refutes = claims the
# passage always supports / refutes (the original's ArguAna: refuted); random = either, drawn per
# passage (the original's SciFact, FEVER, Climate-FEVER)
STANCES = ("none", "supports", "refutes", "random")


def weighted(choices: Mapping[str, int], rng: random.Random) -> str:
    """One key drawn with its weight.

    >>> weighted({"a": 1, "b": 0}, random.Random(0))
    'a'
    """
    keys = list(choices)
    return rng.choices(keys, weights=[choices[k] for k in keys], k=1)[0]


def constraints(rng: random.Random, stance: str = "none") -> dict[str, str]:
    """The length, style and relation (``{relation}`` in the prompt) asked of one query.

    ``stance`` is :data:`STANCES`' choice. ``none`` draws a question's length and style, as
    before stances existed (two draws, the same ones), and the passage ``answers`` it. Any
    other stance draws a claim's length; ``random`` then draws the relation, with equal odds.

    >>> constraints(random.Random(0))
    {'length': '10 to 15 words', 'style': 'casual and informal', 'relation': 'answers'}
    >>> constraints(random.Random(0), stance="supports")
    {'length': 'at least 15 words', 'style': 'casual and informal', 'relation': 'supports'}
    >>> [constraints(random.Random(s), stance="random")["relation"] for s in range(4)]
    ['refutes', 'supports', 'supports', 'refutes']
    """
    if stance not in STANCES:
        raise ValueError(f"stance: {stance!r} is not one of {', '.join(STANCES)}")
    length = weighted(LENGTHS if stance == "none" else CLAIM_LENGTHS, rng)
    style = weighted(STYLES, rng)
    if stance == "random":
        relation = rng.choice(("supports", "refutes"))
    else:
        relation = "answers" if stance == "none" else stance
    return {"length": length, "style": style, "relation": relation}


def quality_relation(stance: str) -> str:
    """What quality control asks the passage to do to the query (``{relation}`` in the quality
    prompt): the original's check judges whether the passage "can answer" a question, "can
    support or refute" a claim of SciFact, FEVER or Climate-FEVER (whichever stance the claim
    was written with), and "can refute" an ArguAna claim.

    >>> [quality_relation(s) for s in STANCES]
    ['answers', 'supports', 'refutes', 'supports or refutes']
    """
    if stance not in STANCES:
        raise ValueError(f"stance: {stance!r} is not one of {', '.join(STANCES)}")
    return {"none": "answers", "random": "supports or refutes"}.get(stance, stance)


def clean_query(text: str) -> str:
    """The model's query: first non-empty line, quotes and a leading label removed.

    >>> clean_query('Query: "Who founded Velmora?"\\nBecause...')
    'Who founded Velmora?'
    """
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    for label in ("query:", "question:", "claim:"):
        if line.lower().startswith(label):
            line = line[len(label):].strip()
    return line.strip('"').strip("'").strip()


def quality_ok(text: str) -> bool:
    """The quality-control verdict: the answer contains "1" (the original's rule).

    >>> quality_ok("1"), quality_ok("0"), quality_ok("The answer is 1.")
    (True, False, True)
    """
    return "1" in text
