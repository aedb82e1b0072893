"""Whether a passage holds a gold answer, and DPR's top-k retrieval accuracy built on it.

DPR (Karpukhin et al., 2020) scores a retriever without gold passage ids: a passage "has the
answer" when some gold answer's token sequence occurs in the passage text, contiguously, after
both are NFD-normalised and lower-cased; top-k accuracy is the share of questions with such a
passage among their first k. Contriever, Atlas and FlashRAG (``retrieval_recall``) report it
the same way for NQ and TriviaQA, whose files carry answers but no gold passages.

Tokens here are word runs and single punctuation marks (Python's ``\\w``), DPR's own tokenizer
up to how it groups combining marks, which both sides share after NFD. As DPR, the passage text
is matched, not its title.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def answer_tokens(text: str) -> list[str]:
    """DPR-style tokens: NFD-normalised, lowercased word runs and single punctuation marks.

    >>> answer_tokens("U.S. Army's 1st")
    ['u', '.', 's', '.', 'army', "'", 's', '1st']
    """
    return _TOKEN.findall(unicodedata.normalize("NFD", text).lower())


def has_answer(answers: Sequence[str], text: str) -> bool:
    """True when some answer's token sequence occurs contiguously in ``text`` (DPR has_answer).

    >>> has_answer(["the Beatles"], "Yesterday was recorded by The Beatles in 1965.")
    True
    >>> has_answer(["Beat"], "Yesterday was recorded by The Beatles in 1965.")
    False
    """
    tokens = answer_tokens(text)
    for answer in answers:
        ans = answer_tokens(answer)
        if not ans:
            continue
        for i in range(len(tokens) - len(ans) + 1):
            if tokens[i:i + len(ans)] == ans:
                return True
    return False


def answer_recall(answers: Sequence[str], texts: Sequence[str],
                  ks: Sequence[int]) -> dict[str, float]:
    """``answer_recall@k`` for each k: 1.0 when one of the first k ``texts`` has an answer.

    Worked example: the answer is in the second passage, so top-1 misses and top-2 and top-5
    hit (a question with fewer than k passages is scored on those it has).

    >>> answer_recall(["Röntgen"], ["Marie Curie won twice.", "Wilhelm Röntgen, in 1901."],
    ...               [1, 2, 5])
    {'answer_recall@1': 0.0, 'answer_recall@2': 1.0, 'answer_recall@5': 1.0}
    """
    first = next((rank for rank, text in enumerate(texts[:max(ks, default=0)], 1)
                  if has_answer(answers, text)), None)
    return {f"answer_recall@{k}": float(first is not None and first <= k) for k in ks}
