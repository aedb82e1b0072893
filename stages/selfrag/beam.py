"""Segment-level beam search for long-form answers (Self-RAG §2.5, ``run_long_form_static``).

The answer grows one segment at a time. A node whose last segment ended by asking for
retrieval is expanded with one continuation per passage (the caller generates them and scores
each with :func:`stages.selfrag.scoring.passage_score`); a child's score is its own score times
its parent's. Each depth keeps the ``beam_width`` best nodes (finished nodes compete with new
ones); the search stops at ``max_depth`` or when every kept node is finished. The answer is the
best node's segments, each citing its passage.

Fixes relative to the seed: the weights come from the config (the seed hard-coded w_rel 1.0,
w_sup 1.0, w_use 0.5 and ignored the command line), and the utility term is computed from the
utility tokens (the seed looked up the support tokens' ids there, so s_use was always 0); both
live in the scorer the caller passes. The search itself never passes ``max_depth`` to a function
that does not take it (self-rag issue #39).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Node:
    segments: tuple[str, ...] = ()
    citations: tuple[int | None, ...] = ()   # passage index per segment (None: no retrieval)
    score: float = 1.0
    done: bool = False


@dataclass(frozen=True)
class Continuation:
    text: str
    passage: int | None
    score: float
    done: bool


Expand = Callable[[Node], list[Continuation]]


def beam_search(root: Node, expand: Expand, beam_width: int = 2, max_depth: int = 7) -> Node:
    """The best node after at most ``max_depth`` expansions.

    A controlled scorer: passage 1 always scores 0.9, passage 0 scores 0.5; the answer is done
    after two segments.

    >>> def expand(node):
    ...     done = len(node.segments) == 1
    ...     return [Continuation(f"s{len(node.segments)}p{p}", p, s, done) for p, s in ((0, 0.5), (1, 0.9))]
    >>> best = beam_search(Node(), expand, beam_width=2, max_depth=7)
    >>> best.segments, best.citations, round(best.score, 2)
    (('s0p1', 's1p1'), (1, 1), 0.81)
    """
    frontier = [root]
    for _ in range(max_depth):
        if all(node.done for node in frontier):
            break
        candidates: list[Node] = []
        for node in frontier:
            if node.done:
                candidates.append(node)
                continue
            for c in expand(node):
                candidates.append(Node(node.segments + (c.text,), node.citations + (c.passage,),
                                       node.score * c.score, c.done))
        if not candidates:
            break
        frontier = sorted(candidates, key=lambda n: n.score, reverse=True)[:beam_width]
    return max(frontier, key=lambda n: n.score)


def cited_answer(node: Node) -> str:
    """Segments joined with ALCE-style citations ([1]-based passage numbers).

    >>> cited_answer(Node(("Paris is the capital.", "It is large."), (1, None)))
    'Paris is the capital. [2] It is large.'
    """
    parts = []
    for text, passage in zip(node.segments, node.citations):
        parts.append(text.strip() + (f" [{passage + 1}]" if passage is not None else ""))
    return " ".join(parts)
