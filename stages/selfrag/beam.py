"""Segment-level beam search for long-form answers (Self-RAG §2.5, ``run_long_form_static``).

The answer grows one segment at a time. A node whose last segment ended by asking for
retrieval is expanded with one continuation per passage (the caller generates them and scores
each with :func:`stages.selfrag.scoring.passage_score`); a child's score is its own score times
its parent's. Each depth keeps the ``beam_width`` best of the new nodes; a finished node (its
segment ended without asking for retrieval) is kept at its depth but not carried into the next
one, as in the seed (``run_long_form_static.py`` lines 211-251: only nodes whose prediction holds
``[Retrieval]`` are expanded, and a level holds only the children made at it). The answer is
the best node of the deepest level that holds any (lines 261-262), so a finished node at a
shallower depth loses to any deeper node whatever its score. The search stops after
``max_depth`` levels of segments or when no kept node asks for retrieval.

``max_depth`` here counts segments: at most ``max_depth`` segments. The seed's ``--max_depth T``
starts at depth 1 and loops while depth < T (line 208), so it makes at most T - 1 segments: the
README's ``--max_depth 7`` is ``max_depth: 6`` here.

:func:`answer_segments` drops an empty segment and one whose text already appeared, as the
seed's ASQA output does (lines 407-414).

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


def beam_search(root: Node, expand: Expand, beam_width: int = 2, max_depth: int = 6) -> Node:
    """The best node of the deepest level reached in at most ``max_depth`` levels (``root`` if
    nothing was generated).

    A controlled scorer: passage 1 always scores 0.9, passage 0 scores 0.5; the answer is done
    after two segments.

    >>> def expand(node):
    ...     done = len(node.segments) == 1
    ...     return [Continuation(f"s{len(node.segments)}p{p}", p, s, done) for p, s in ((0, 0.5), (1, 0.9))]
    >>> best = beam_search(Node(), expand, beam_width=2, max_depth=6)
    >>> best.segments, best.citations, round(best.score, 2)
    (('s0p1', 's1p1'), (1, 1), 0.81)

    A finished node is not carried on: "A" (0.9, done) loses to the deeper "B" "B+" (0.5 x 0.5).

    >>> def expand(node):
    ...     if not node.segments:
    ...         return [Continuation("A", 0, 0.9, True), Continuation("B", 1, 0.5, False)]
    ...     return [Continuation(node.segments[-1] + "+", 0, 0.5, True)]
    >>> beam_search(Node(), expand, beam_width=2, max_depth=6).segments
    ('B', 'B+')
    """
    level = [root]
    for _ in range(max_depth):
        open_nodes = [node for node in level if not node.done]
        if not open_nodes:
            break
        children = [Node(node.segments + (c.text,), node.citations + (c.passage,),
                         node.score * c.score, c.done)
                    for node in open_nodes for c in expand(node)]
        if not children:
            break
        level = sorted(children, key=lambda n: n.score, reverse=True)[:beam_width]
    return max(level, key=lambda n: n.score)


def answer_segments(node: Node) -> list[tuple[str, int | None]]:
    """(text, passage) of the segments an answer shows: stripped, an empty one and a repeat of
    an earlier one's text left out (the seed's ``run_long_form_static.py`` lines 407-414).

    >>> answer_segments(Node(("Paris is big.", " ", "Paris is big. ", "It is old."), (0, 1, 2, 3)))
    [('Paris is big.', 0), ('It is old.', 3)]
    """
    seen: set[str] = set()
    out = []
    for text, passage in zip(node.segments, node.citations):
        text = text.strip()
        if not text or text in seen:
            continue
        seen.add(text)
        out.append((text, passage))
    return out


def cited_answer(node: Node) -> str:
    """Segments joined with ALCE-style citations ([1]-based passage numbers); empty and
    repeated segments left out (:func:`answer_segments`).

    >>> cited_answer(Node(("Paris is the capital.", "It is large.", "It is large."), (1, None, 0)))
    'Paris is the capital. [2] It is large.'
    """
    return " ".join(text + (f" [{passage + 1}]" if passage is not None else "")
                    for text, passage in answer_segments(node))
