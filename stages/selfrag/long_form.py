"""Self-RAG long-form answers (ASQA, ELI5, FactScore): the segment-level beam search of
:mod:`stages.selfrag.beam` driven by generations through the endpoint client (SEEDS §2.5).

A node keeps what the model generated for each of its segments apart from the passage the
segment read (its head, ``[Retrieval]<paragraph>…</paragraph>``). Expanding a node asks one
continuation per passage, the assistant prefix being the node's generated texts so far followed
by that passage's head: earlier passages are not repeated, as in the seed, whose next prompt is
the prompt plus the previous generation up to its ``[Retrieval]`` (``run_long_form_static.py``
lines 219-240); the head serves only the citation. A continuation is cut where the model emits
its next ``[Retrieval]`` (the segment ends there and the node can be expanded again) and is
finished when it ends without one. Each continuation is scored on its own reflection tokens
(:func:`stages.selfrag.short_form.reply_scores`, with the configured weights and the utility
term from the utility tokens; with ``use_seqscore`` plus exp(mean log-probability of the
segment's own tokens)); the beam keeps the ``beam_width`` best products of scores. The answer
cites each segment's passage ALCE-style; line breaks the model wrote stay (ALCE scores the first
line), and a long-form answer without retrieval is cut at its first blank line, as the seed's
(line 196).

Not here (seed behaviour left out): re-deciding ``[No Retrieval]`` tokens inside a segment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from stages.selfrag.beam import Continuation, Node, answer_segments, beam_search, cited_answer
from stages.selfrag.short_form import passage_prefix, reply_scores
from stages.selfrag.tokens import REFLECTION_TOKENS, RETRIEVAL, strip_reflection


def cut_segment(tokens: Sequence[str]) -> int | None:
    """Where a continuation's segment ends: its next ``[Retrieval]`` (None: it finished).

    >>> cut_segment(["[Relevant]", "Paris", "[Fully supported]", "[Retrieval]", "<paragraph>"])
    3
    >>> cut_segment(["[Relevant]", "Paris", "[Utility:5]"]) is None
    True
    """
    return next((t for t in range(1, len(tokens)) if tokens[t].strip() == RETRIEVAL), None)


def clean_segment(raw: str) -> str:
    """A segment as a reader sees it: passage, reflection tokens and end marks removed, line
    breaks kept.

    >>> clean_segment("[Retrieval]<paragraph>V\\nVelmora ...</paragraph>[Relevant]It is old."
    ...               "[Fully supported]<|im_end|>")
    'It is old.'
    >>> clean_segment("[Relevant]It is old.\\nIt has a mill.[Fully supported]")
    'It is old.\\nIt has a mill.'
    """
    raw = re.sub(r"<paragraph>.*?</paragraph>", "", raw, flags=re.S)
    return strip_reflection(re.sub(r"<\|[^|>]*\|>", "", raw), keep_lines=True)


def precheck_retrieves(text: str) -> bool:
    """Whether a long-form pre-check's text asks for retrieval: ``[Retrieval]`` in it up to its
    first blank line (the seed's ``run_long_form_static.py`` lines 176-178: no token, no
    retrieval; with it, the threshold decides).

    >>> precheck_retrieves("[Retrieval]<paragraph>")
    True
    >>> precheck_retrieves("[No Retrieval]Velmora is old. It has a mill.")
    False
    >>> precheck_retrieves("[No Retrieval]Velmora is old.\\n\\n[Retrieval]")   # after a blank line
    False
    """
    return RETRIEVAL in text.split("\n\n")[0]


def no_retrieval_answer(raw: str) -> str:
    """A long-form answer generated without retrieval: up to its first blank line (the seed's
    ``run_long_form_static.py`` line 196), line breaks kept.

    >>> no_retrieval_answer("[No Retrieval]Velmora is old.\\nIt has a mill.\\n\\nQ: more?")
    'Velmora is old.\\nIt has a mill.'
    """
    return clean_segment(raw.split("\n\n")[0])


def long_form_answer(client, messages: list[dict], ctxs: Sequence[Mapping],
                     weights: Mapping[str, float], max_new_tokens: int, beam_width: int,
                     max_depth: int, use_seqscore: bool = False) -> tuple[str, list[int]]:
    """The best path's answer with citations, and the 1-based passages it cites."""
    from stages.lib.endpoint import ChatRequest

    heads = [passage_prefix(c.get("title") or "", c.get("text") or "") for c in ctxs]

    def expand(node: Node) -> list[Continuation]:
        prefix = "".join(node.segments)          # generated texts only, no earlier passages
        asks = [ChatRequest(messages, max_tokens=max_new_tokens, logprobs_of=REFLECTION_TOKENS,
                            prefix=prefix + head, token_logprobs=use_seqscore) for head in heads]
        out = []
        for p, reply in enumerate(client.complete(asks)):
            tokens, logprobs = (reply.tokens or [[]])[0], (reply.logprobs or [[]])[0]
            cut = cut_segment(tokens)
            own = (reply.token_logprobs or [[]])[0][:cut] if use_seqscore else None
            score = reply_scores(tokens[:cut], logprobs[:cut], weights, own)["score"]
            out.append(Continuation("".join(tokens[:cut]), p, score, cut is None))
        return out

    best = beam_search(Node(), expand, beam_width=beam_width, max_depth=max_depth)
    shown = Node(tuple(clean_segment(s) for s in best.segments), best.citations, best.score)
    cited = sorted({p + 1 for _, p in answer_segments(shown) if p is not None})
    return cited_answer(shown), cited
