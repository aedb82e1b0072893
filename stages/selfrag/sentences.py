"""Sentence splitting for critic labelling. The seed used spaCy's ``en_core_web_sm`` (a model
download); a rule on sentence-ending punctuation followed by space and a capital or digit does
for instruction outputs, and keeps this step free of model downloads.
"""

from __future__ import annotations

import re

_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
MIN_CHARS = 30
NONE = "None"   # a missing critic prompt value, as the seed's prompts print Python's None


def split_sentences(text: str) -> list[str]:
    """Sentences of an output, in order.

    >>> split_sentences("Paris is big. It has 2 million people! Ok.")
    ['Paris is big.', 'It has 2 million people!', 'Ok.']
    """
    return [s.strip() for s in _BOUNDARY.split(text.strip()) if s.strip()]


def skipped(sentences: list[str], min_chars: int = MIN_CHARS) -> list[bool]:
    """The seed's rule: with more than two sentences, those shorter than ``min_chars`` get no
    retrieval of their own (they are kept in the output as they are).

    >>> skipped(["A long enough first sentence here.", "Ok.", "Another long sentence follows."])
    [False, True, False]
    >>> skipped(["Ok.", "Fine."])
    [False, False]
    """
    if len(sentences) <= 2:
        return [False] * len(sentences)
    return [len(s) < min_chars for s in sentences]


def preceding(sentences: list[str], k: int) -> str:
    """The sentences before sentence ``k``, joined by spaces (skipped short ones included, as
    the seed's ``" ".join(splitted_output[:sent_idx])``); ``None`` for the first sentence.

    >>> preceding(["Velmora is a city.", "Ok.", "It was founded in 1852."], 2)
    'Velmora is a city. Ok.'
    >>> preceding(["Velmora is a city."], 0)
    'None'
    """
    return " ".join(sentences[:k]) or NONE
