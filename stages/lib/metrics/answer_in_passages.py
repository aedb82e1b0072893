"""Whether a passage holds a gold answer, and DPR's top-k retrieval accuracy built on it.

DPR (Karpukhin et al., 2020) scores a retriever without gold passage ids: a passage "has the
answer" when some gold answer's token sequence occurs in the passage text, contiguously, after
both are NFD-normalised and lower-cased; top-k accuracy is the share of questions with such a
passage among their first k. Contriever, Atlas and FlashRAG (``retrieval_recall``) report it
the same way for NQ and TriviaQA, whose files carry answers but no gold passages.

Tokens are DPR's (``dpr/utils/tokenizers.py``, ``SimpleTokenizer``, as Contriever and FlashRAG
use it): runs of letters, digits and combining marks (``[\\p{L}\\p{N}\\p{M}]+``) and single
other characters that are neither separators nor control characters (``[^\\p{Z}\\p{C}]``),
matched with the ``regex`` module on the NFD-normalised text, each token lowercased. So an
accented word stays one token ("Röntgen" is ``röntgen`` with its combining mark inside: the
unaccented alias "Pele" does not match "Pelé", nor "del" the end of "Gödel"), and "_" is a
token of its own ("foo" matches "foo_bar"). As DPR, the passage text is matched, not its title;
unlike DPR, an answer with no token matches nothing (DPR's empty answer matched every passage).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import regex

# DPR's SimpleTokenizer: ALPHA_NUM | NON_WS, with its flags
_TOKEN = regex.compile(r"([\p{L}\p{N}\p{M}]+)|([^\p{Z}\p{C}])",
                       flags=regex.IGNORECASE | regex.UNICODE | regex.MULTILINE)


def answer_tokens(text: str) -> list[str]:
    """DPR's tokens: the NFD-normalised text's runs of letters, digits and combining marks, and
    its single other non-space characters, each lowercased (``words(uncased=True)``).

    >>> answer_tokens("U.S. Army's 1st foo_bar")
    ['u', '.', 's', '.', 'army', "'", 's', '1st', 'foo', '_', 'bar']
    >>> [unicodedata.normalize("NFC", t) for t in answer_tokens("Röntgen")]   # one token
    ['röntgen']
    """
    return [found.group().lower() for found in _TOKEN.finditer(unicodedata.normalize("NFD", text))]


def has_answer(answers: Sequence[str], text: str) -> bool:
    """True when some answer's token sequence occurs contiguously in ``text`` (DPR has_answer).

    >>> has_answer(["the Beatles"], "Yesterday was recorded by The Beatles in 1965.")
    True
    >>> has_answer(["Beat"], "Yesterday was recorded by The Beatles in 1965.")
    False
    >>> has_answer(["Pele"], "Pelé scored 1,000 goals."), has_answer(["Pelé"], "PELÉ scored.")
    (False, True)
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
