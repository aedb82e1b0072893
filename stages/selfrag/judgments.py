"""Critic (or teacher) outputs normalised to reflection tokens, as the seed's postprocessing
reads them. Each returns None when the output cannot be read, and the caller drops the item.
"""

from __future__ import annotations

import re

from stages.selfrag.tokens import (FULLY, IRRELEVANT, NO_RETRIEVAL, RELEVANT, RETRIEVE_TOKENS,
                                   RETRIEVAL, SUPPORT_TOKENS, UTILITY)


def utility_token(pred: str) -> str | None:
    """The first digit 1–5 in the output picks the utility token.

    >>> utility_token("Rating: 4"), utility_token("[Utility:2]"), utility_token("none")
    ('[Utility:4]', '[Utility:2]', None)

    (The seed took the *smallest* digit present — "5 ... 1" gave 1 — and bumped 1 to 5 for
    true/false outputs; we take the first digit in reading order and leave the bump to
    :func:`stages.selfrag.assembly.assemble`.)
    """
    match = re.search(r"[1-5]", pred or "")
    return UTILITY[int(match.group()) - 1] if match else None


def retrieval_token(pred: str) -> str:
    """A retrieval decision: a token, Yes/No, and anything else reads as [No Retrieval].

    >>> retrieval_token("Yes"), retrieval_token("[Continue to Use Evidence]"), retrieval_token("??")
    ('[Retrieval]', '[Continue to Use Evidence]', '[No Retrieval]')
    """
    text = (pred or "").strip()
    for token in RETRIEVE_TOKENS:
        if token in text or text == token.strip("[]"):
            return token
    if text.strip("[]") == "Yes":
        return RETRIEVAL
    return NO_RETRIEVAL


def relevance_token(pred: str) -> str | None:
    """Relevance by substring, "Relevant" first.

    >>> relevance_token("[Relevant]"), relevance_token("Irrelevant."), relevance_token("")
    ('[Relevant]', '[Irrelevant]', None)

    ("Irrelevant" contains "relevant" in lower case; the check is case-sensitive on
    "Relevant", as the seed's.)
    """
    text = pred or ""
    if "Relevant" in text:
        return RELEVANT
    if "Irrelevant" in text:
        return IRRELEVANT
    return None


def support_token(pred: str) -> str | None:
    """A support token, or a 4/5 rating as fully supported.

    >>> support_token("[Partially supported]"), support_token("5"), support_token("maybe")
    ('[Partially supported]', '[Fully supported]', None)
    """
    text = (pred or "").strip()
    for token in SUPPORT_TOKENS:
        if token in text or text == token.strip("[]"):
            return token
    if text in ("4", "5"):
        return FULLY
    return None
