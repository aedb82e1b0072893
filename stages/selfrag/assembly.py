"""The generator's training targets (Self-RAG's G7 step), as seeded pure functions.

For an instruction whose initial retrieval decision is [No Retrieval] the target is
``[No Retrieval]{output}{utility}`` and the item is kept with probability ``keep_no_retrieval``
(the seed's 0.4, which thins these items out of its instruction mix; a recipe whose mix is
short of them can keep them all). Otherwise each
sentence of the output becomes a segment: the first sentence uses the initial decision, later
ones the critic's multi-sentence decision; short sentences the splitter marked ``skipped`` are
appended as they are. A [Retrieval] sentence gets one of its retrieved passages, chosen by
:func:`choose_passage`, and becomes

    [Retrieval]<paragraph>{title}\\n{text}</paragraph>[Relevant]{sentence}{IsSup}
    [Retrieval]<paragraph>{title}\\n{text}</paragraph>[Irrelevant]{sentence}

The utility token ends the output. For nq/fever/wow a relevant passage judged [No support] is
relabelled [Irrelevant]. Drop rules (:func:`keep`, for items that start with [Retrieval]): NQ
outputs containing [No Retrieval] are dropped with probability 0.5, outputs starting with
[Continue to Use Evidence] always.

Fixes relative to the seed (``data_creation/generator/postprocess_data.py``), each named where it
is applied:
* the irrelevant choices draw from the *irrelevant passages* (the seed drew a random index into
  the list of irrelevant passages and used that index as a passage index, so the "irrelevant"
  passage was any of the first few passages, often a relevant one);
* the no-retrieval branch tests the normalised decision token (the seed compared the raw critic
  text, so a critic answering "No" took the retrieval branch);
* a sentence for which no passage can be chosen drops the whole item (the seed silently left the
  sentence out of the target answer);
* items are never lost to job splitting (the seed's ``len // num_jobs`` split dropped the
  remainder rows): this module works per item and sharding is the orchestrator's.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from stages.selfrag.tokens import (CONTINUE, FULLY, IRRELEVANT, NO_RETRIEVAL, NO_SUPPORT,
                                   PARAGRAPH_CLOSE, PARAGRAPH_OPEN, PARTIALLY, RELEVANT, RETRIEVAL,
                                   UTILITY)

KEEP_NO_RETRIEVAL = 0.4      # an initial [No Retrieval] item is kept with this probability
NQ_IRRELEVANT_INSTEAD = 0.25  # NQ: a fully supported choice is swapped for an irrelevant one
PARTIAL = 0.7                # otherwise the first partially supported passage, with this probability
NO_SUPPORT_PICK = 0.25       # otherwise the first unsupported relevant one, with this probability
IRRELEVANT_DATASETS = ("nq", "fever")   # always an irrelevant passage when there is one
RELABEL_DATASETS = ("nq", "fever", "wow")
NQ_DROP_NO_RETRIEVAL = 0.5


@dataclass(frozen=True)
class Judged:
    """One retrieved passage of a sentence with the critic's tokens (None: unreadable)."""
    title: str
    text: str
    relevance: str | None
    support: str | None


def choose_passage(passages: Sequence[Judged], dataset: str, rng: random.Random) -> int | None:
    """The index of the passage a [Retrieval] sentence shows, or None when there is none to show.

    >>> J = lambda rel, sup: Judged("t", "x", rel, sup)
    >>> ps = [J(IRRELEVANT, NO_SUPPORT), J(RELEVANT, PARTIALLY), J(RELEVANT, FULLY)]
    >>> choose_passage(ps, "asqa", random.Random(0))          # the first fully supported
    2
    >>> choose_passage(ps[:2], "asqa", random.Random(0))      # rng 0.844 > 0.3: partially
    1
    >>> choose_passage(ps[:2], "fever", random.Random(0))     # fever: an irrelevant one
    0
    >>> choose_passage([J(RELEVANT, PARTIALLY)], "asqa", random.Random(1)) is None   # 0.134 ≤ 0.3
    True
    """
    groups: dict[tuple, list[int]] = {(RELEVANT, FULLY): [], (RELEVANT, PARTIALLY): [],
                                      (RELEVANT, NO_SUPPORT): []}
    irrelevant = []
    for i, p in enumerate(passages):
        if p.relevance == IRRELEVANT and p.support is not None:
            irrelevant.append(i)
        elif (p.relevance, p.support) in groups:
            groups[(p.relevance, p.support)].append(i)
    full, part, nosup = groups.values()
    chosen = None
    if full:
        chosen = full[0]
        if dataset == "nq" and rng.random() > 1 - NQ_IRRELEVANT_INSTEAD and irrelevant:
            chosen = rng.choice(irrelevant)
    elif part and rng.random() > 1 - PARTIAL:
        chosen = part[0]
    elif not part and nosup and rng.random() > 1 - NO_SUPPORT_PICK:
        chosen = nosup[0]
    elif irrelevant:
        chosen = rng.choice(irrelevant)
    if dataset in IRRELEVANT_DATASETS and irrelevant:
        chosen = rng.choice(irrelevant)
    return chosen


def retrieval_segment(sentence: str, passage: Judged, dataset: str) -> str:
    """One retrieval segment of the target.

    >>> retrieval_segment("Paris.", Judged("France", "Capital: Paris", RELEVANT, FULLY), "asqa")
    '[Retrieval]<paragraph>France\\nCapital: Paris</paragraph>[Relevant]Paris.[Fully supported]'
    >>> retrieval_segment("Paris.", Judged("F", "x", RELEVANT, NO_SUPPORT), "nq")   # relabelled
    '[Retrieval]<paragraph>F\\nx</paragraph>[Irrelevant]Paris.'
    """
    relevance = passage.relevance
    if dataset in RELABEL_DATASETS and relevance == RELEVANT and passage.support == NO_SUPPORT:
        relevance = IRRELEVANT
    head = f"{RETRIEVAL}{PARAGRAPH_OPEN}{passage.title}\n{passage.text}{PARAGRAPH_CLOSE}"
    if relevance == RELEVANT:
        return f"{head}{RELEVANT}{sentence}{passage.support}"
    return f"{head}{IRRELEVANT}{sentence}"


@dataclass(frozen=True)
class Sentence:
    text: str
    skipped: bool = False             # short sentence: appended as is
    decision: str = NO_RETRIEVAL      # the multi-sentence decision (unused for the first)
    passages: tuple[Judged, ...] = ()


def assemble(output: str, sentences: Sequence[Sentence], initial: str, utility: str,
             dataset: str, rng: random.Random,
             keep_no_retrieval: float = KEEP_NO_RETRIEVAL) -> str | None:
    """The target for one item, or None when the item is dropped.

    >>> s = [Sentence("Paris is the capital.", passages=(Judged("France", "Paris...", RELEVANT, FULLY),)),
    ...      Sentence("It is big.", decision=CONTINUE)]
    >>> assemble("Paris is the capital. It is big.", s, "[Retrieval]", "[Utility:5]", "asqa",
    ...          random.Random(0))
    '[Retrieval]<paragraph>France\\nParis...</paragraph>[Relevant]Paris is the capital.[Fully supported][Continue to Use Evidence]It is big.[Utility:5]'
    >>> assemble("true", [], NO_RETRIEVAL, "[Utility:1]", "fever", random.Random(3))  # 0.238 ≤ 0.6
    >>> assemble("true", [], NO_RETRIEVAL, "[Utility:1]", "fever", random.Random(0))  # 0.844: kept, 1→5
    '[No Retrieval]true[Utility:5]'
    """
    if output in ("true", "false") and utility == UTILITY[0]:
        utility = UTILITY[4]
    if initial == NO_RETRIEVAL:
        kept = rng.random() >= 1 - keep_no_retrieval
        return f"{NO_RETRIEVAL}{output}{utility}" if kept else None
    parts = []
    for i, sentence in enumerate(sentences):
        decision = initial if i == 0 else sentence.decision
        if sentence.skipped:
            parts.append(sentence.text)
        elif decision == RETRIEVAL:
            chosen = choose_passage(sentence.passages, dataset, rng)
            if chosen is None:
                return None
            parts.append(retrieval_segment(sentence.text, sentence.passages[chosen], dataset))
        else:
            parts.append(f"{decision}{sentence.text}")
    return "".join(parts) + utility if parts else None


def keep(target: str, dataset: str, rng: random.Random, initial: str = RETRIEVAL) -> bool:
    """The final drop rules, for the targets of items whose ``initial`` decision is
    [Retrieval]: an item that starts with [No Retrieval] was thinned once, by
    :func:`assemble`'s ``keep_no_retrieval`` (the seed's NQ rule is in its retrieval branch).

    >>> keep("[Continue to Use Evidence]x[Utility:5]", "asqa", random.Random(0))
    False
    >>> keep("[Retrieval]<paragraph>p</paragraph>[Irrelevant]x[No Retrieval]y[Utility:5]", "nq",
    ...      random.Random(0))                                      # 0.844 > 0.5: dropped
    False
    >>> keep("[No Retrieval]x[Utility:5]", "nq", random.Random(0), NO_RETRIEVAL)
    True
    """
    if initial == NO_RETRIEVAL:
        return True
    if target.startswith(CONTINUE):
        return False
    return not (dataset == "nq" and NO_RETRIEVAL in target and rng.random() > NQ_DROP_NO_RETRIEVAL)


def fever_labels(target: str) -> str:
    """FEVER labels as the true/false the evaluation expects.

    >>> fever_labels("[No Retrieval]SUPPORTS[Utility:5]")
    '[No Retrieval]true[Utility:5]'
    """
    return target.replace("REFUTES", "false").replace("SUPPORTS", "true")
