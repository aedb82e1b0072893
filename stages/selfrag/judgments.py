"""Critic (or teacher) outputs normalised to reflection tokens, as the seed's postprocessing
reads them. Each returns None when the output cannot be read, and the caller drops the item,
except :func:`retrieval_token`, which reads a critic's unclear decision as [No Retrieval]. A
teacher's retrieval judgments are read strictly (:func:`teacher_retrieval_token`): the seed's
combine step drops those it cannot read rather than train the critic on a guess.
"""

from __future__ import annotations

import re

from stages.selfrag.tokens import (CONTINUE, FULLY, IRRELEVANT, NO_RETRIEVAL, RELEVANT,
                                   RETRIEVE_TOKENS, RETRIEVAL, SUPPORT_TOKENS, UTILITY)


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


def teacher_retrieval_token(pred: str, three_way: bool) -> str | None:
    """A teacher's retrieval judgment, or None when it gives none (the row is dropped, as the
    seed's ``combine_chat_gpt_reward.py`` drops it). For the instruction alone (``three_way``
    False): [Retrieval] or [No Retrieval], or the seed's Yes / No; for a later sentence
    (``three_way``): one of the three tokens.

    >>> teacher_retrieval_token("Yes, it helps.", False), teacher_retrieval_token("??", False)
    ('[Retrieval]', None)
    >>> teacher_retrieval_token("[Continue to Use Evidence]", False)
    >>> teacher_retrieval_token("[Continue to Use Evidence]", True)
    '[Continue to Use Evidence]'
    >>> teacher_retrieval_token("No", True), teacher_retrieval_token("[No Retrieval]", True)
    (None, '[No Retrieval]')
    """
    text = (pred or "").strip()
    allowed = RETRIEVE_TOKENS if three_way else (RETRIEVAL, NO_RETRIEVAL)
    found = [token for token in allowed if token in text]
    if len(found) == 1:
        return found[0]
    if found or three_way or CONTINUE in text:
        return None
    if "Yes" in text:
        return RETRIEVAL
    return NO_RETRIEVAL if "No" in text else None


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
