"""Pseudo-query synthesis (Reinforced-IR step 1) as pure, seeded functions: the length and style
constraints sampled per passage, and the reading of the model's query and quality-control
answers (the prompts themselves are files, ``conf/prompts/reinforced_ir/``).

Constraint weights are the original's: length "less than 5 words" ×2, "5 to 10 words" ×5,
"10 to 15 words" ×4, "at least 15 words" ×1; style "plain and simple" ×4, "common and formal"
×4, "casual and informal" ×2, "professional and complex" ×1.
"""

from __future__ import annotations

import random
from collections.abc import Mapping

LENGTHS = {"less than 5 words": 2, "5 to 10 words": 5, "10 to 15 words": 4, "at least 15 words": 1}
STYLES = {"plain and simple": 4, "common and formal": 4, "casual and informal": 2,
          "professional and complex": 1}


def weighted(choices: Mapping[str, int], rng: random.Random) -> str:
    """One key drawn with its weight.

    >>> weighted({"a": 1, "b": 0}, random.Random(0))
    'a'
    """
    keys = list(choices)
    return rng.choices(keys, weights=[choices[k] for k in keys], k=1)[0]


def constraints(rng: random.Random) -> dict[str, str]:
    """The length and style asked of one query.

    >>> constraints(random.Random(0))
    {'length': '10 to 15 words', 'style': 'casual and informal'}
    """
    return {"length": weighted(LENGTHS, rng), "style": weighted(STYLES, rng)}



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
