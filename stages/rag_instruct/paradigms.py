"""RAG-Instruct's five RAG paradigms (SEEDS 4.2): how an example's source documents relate to
its question, and how many documents it has.

========================  =========  ======  ==========================================
paradigm                  seed key   docs    the documents ...
========================  =========  ======  ==========================================
``useless_doc`` (r0)      normal1_3  1       relate to the question but give no useful
                                             information; the answer comes anyway
``single_doc_support``    normal1_2  1       support it with hints, no explicit answer
``multi_doc_support``     normal2_2  2-4     support a multi-hop question with hints
``single_doc_answer``     normal1_1  1       contain the answer
``multi_doc_answer``      normal2_1  2-4     contain it across documents (multi hop)
========================  =========  ======  ==========================================

The released exemplar file names its tasks in words ("Single-Doc Answer") while the seed's
prompts are keyed ``normal1_1`` and looked up with ``task[:-3]`` (expecting ``normal1_1_v1``):
:func:`paradigm_of` reads all three spellings.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Paradigm:
    name: str
    seed_key: str          # the seed's prompt key (data_gen/prompt_final.py)
    min_docs: int
    max_docs: int
    answers: bool          # the documents contain the answer (else they only relate or hint)
    helps: bool            # the documents help at all (everything but useless_doc)


PARADIGMS = {p.name: p for p in (
    Paradigm("useless_doc", "normal1_3", 1, 1, answers=False, helps=False),
    Paradigm("single_doc_support", "normal1_2", 1, 1, answers=False, helps=True),
    Paradigm("multi_doc_support", "normal2_2", 2, 4, answers=False, helps=True),
    Paradigm("single_doc_answer", "normal1_1", 1, 1, answers=True, helps=True),
    Paradigm("multi_doc_answer", "normal2_1", 2, 4, answers=True, helps=True),
)}

_WORDS = {"useless doc": "useless_doc", "single-doc useless": "useless_doc",
          "single-doc support": "single_doc_support", "multi-doc support": "multi_doc_support",
          "single-doc answer": "single_doc_answer", "multi-doc answer": "multi_doc_answer"}


def paradigm_of(task: str) -> str | None:
    """The paradigm of an exemplar's ``task``: its name, the seed's prompt key (with or without
    the ``_v1`` suffix) or the released file's words; None when it is none of those.

    >>> paradigm_of("Single-Doc Answer"), paradigm_of("normal2_2_v1"), paradigm_of("useless_doc")
    ('single_doc_answer', 'multi_doc_support', 'useless_doc')
    >>> paradigm_of("summarise") is None
    True
    """
    text = task.strip()
    if text in PARADIGMS:
        return text
    key = text.removesuffix("_v1")
    by_key = next((p.name for p in PARADIGMS.values() if p.seed_key == key), None)
    return by_key or _WORDS.get(text.lower().replace("–", "-"))


def assign(n: int, names: list[str], seed: int) -> list[str]:
    """A paradigm for each of ``n`` exemplars that come without one: the names in turn, in an
    order shuffled once by ``seed`` (so every paradigm gets its share of a small set).

    >>> assign(5, ["useless_doc", "single_doc_answer"], seed=0)
    ['useless_doc', 'single_doc_answer', 'useless_doc', 'single_doc_answer', 'useless_doc']
    """
    order = list(names)
    random.Random(seed).shuffle(order)
    return [order[i % len(order)] for i in range(n)]


def doc_count(paradigm: str, available: int, rng: random.Random) -> int:
    """How many documents an exemplar of ``paradigm`` takes: 1 for a single-document paradigm,
    2 to 4 (at random) for a multi-document one, never more than ``available``.

    >>> doc_count("single_doc_answer", 10, random.Random(0))
    1
    >>> doc_count("multi_doc_answer", 10, random.Random(0)), doc_count("multi_doc_answer", 2, random.Random(0))
    (3, 2)
    """
    p = PARADIGMS[paradigm]
    return min(available, rng.randint(p.min_docs, p.max_docs))


def cap_per_paradigm(rows: list[dict], cap: int | None, seed: int) -> list[dict]:
    """At most ``cap`` rows of each paradigm, sampled at random (the seed's ``select_from_data``
    draws up to 4,200 per task); the rows keep their input order.

    >>> rows = [{"id": i, "paradigm": "useless_doc" if i < 3 else "single_doc_answer"} for i in range(5)]
    >>> [r["id"] for r in cap_per_paradigm(rows, 2, seed=0)]
    [1, 2, 3, 4]
    """
    if cap is None:
        return rows
    rng = random.Random(seed)
    by_paradigm: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_paradigm.setdefault(row["paradigm"], []).append(i)
    keep = {i for idx in by_paradigm.values() for i in rng.sample(idx, min(cap, len(idx)))}
    return [row for i, row in enumerate(rows) if i in keep]
