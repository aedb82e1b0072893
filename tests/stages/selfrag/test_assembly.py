"""Generator-target assembly (G7) with a seeded RNG, and the critic-output normalisers."""

import doctest
import random

import pytest

from stages.selfrag import assembly, judgments
from stages.selfrag.assembly import Judged, Sentence, assemble, choose_passage, keep
from stages.selfrag.judgments import relevance_token, retrieval_token, support_token, utility_token
from stages.selfrag.tokens import (CONTINUE, FULLY, IRRELEVANT, NO_RETRIEVAL, NO_SUPPORT, PARTIALLY,
                                   RELEVANT, RETRIEVAL)


def test_doctests():
    assert doctest.testmod(assembly).failed == 0
    assert doctest.testmod(judgments).failed == 0


class Draws(random.Random):
    """An RNG whose random() returns given values and whose choice() takes the last element."""

    def __init__(self, *values):
        super().__init__(0)
        self.values = list(values)

    def random(self):
        return self.values.pop(0)

    def choice(self, seq):
        return seq[-1]


def J(rel, sup):
    return Judged("t", "x", rel, sup)


IRR, PART, NOSUP, FULL = J(IRRELEVANT, NO_SUPPORT), J(RELEVANT, PARTIALLY), J(RELEVANT, NO_SUPPORT), J(RELEVANT, FULLY)


@pytest.mark.parametrize("passages, dataset, draws, expected", [
    ([IRR, FULL, FULL], "asqa", (), 1),                   # first fully supported, no draw
    ([IRR, FULL], "nq", (0.80,), 0),                      # NQ: 0.80 > 0.75 → an irrelevant one
    ([IRR, FULL], "nq", (0.70,), 0),                      # and nq/fever always show one if any
    ([FULL], "nq", (0.80,), 0),                           # none irrelevant: the fully supported
    ([IRR, PART], "asqa", (0.31,), 1),                    # partially with p 0.7 (draw > 0.3)
    ([IRR, PART], "asqa", (0.29,), 0),                    # else a random irrelevant one
    ([NOSUP, IRR], "asqa", (0.76,), 0),                   # no-support with p 0.25 (draw > 0.75)
    ([NOSUP, IRR], "asqa", (0.74,), 1),
    ([PART, FULL], "asqa", (), 1),
    ([PART], "asqa", (0.1,), None),                       # nothing to show
    ([FULL, IRR, FULL], "fever", (), 1),                  # fever: always an irrelevant one
    ([FULL, J(None, FULLY)], "asqa", (), 0),              # unreadable judgments are skipped
])
def test_choose_passage(passages, dataset, draws, expected):
    assert choose_passage(passages, dataset, Draws(*draws)) == expected


def test_irrelevant_choice_is_an_irrelevant_passage_not_an_index_into_the_list():
    # the seed drew randrange(len(irrelevant)) and used it as a passage index: with the only
    # irrelevant passage at position 3, it would have shown passage 0 (relevant)
    passages = [PART, PART, PART, IRR]
    for seed in range(20):
        assert choose_passage(passages, "fever", random.Random(seed)) == 3


def test_assemble_multi_sentence_with_seeded_rng():
    sentences = [
        Sentence("Oslo is the capital.", passages=(J(IRRELEVANT, NO_SUPPORT), Judged("Norway", "Capital Oslo", RELEVANT, FULLY))),
        Sentence("Ok.", skipped=True),
        Sentence("It has 700k people.", decision=RETRIEVAL, passages=(Judged("Oslo", "Pop 700k", RELEVANT, PARTIALLY),)),
        Sentence("Nice city.", decision=NO_RETRIEVAL),
    ]
    target = assemble("…", sentences, RETRIEVAL, "[Utility:4]", "asqa", Draws(0.9))
    assert target == ("[Retrieval]<paragraph>Norway\nCapital Oslo</paragraph>[Relevant]Oslo is the capital.[Fully supported]"
                      "Ok."
                      "[Retrieval]<paragraph>Oslo\nPop 700k</paragraph>[Relevant]It has 700k people.[Partially supported]"
                      "[No Retrieval]Nice city.[Utility:4]")


def test_assemble_drops_item_when_a_sentence_has_no_passage():
    sentences = [Sentence("A.", passages=(PART,))]
    assert assemble("A.", sentences, RETRIEVAL, "[Utility:3]", "asqa", Draws(0.1)) is None


def test_no_retrieval_items_kept_with_probability_04():
    rng = random.Random(7)
    kept = sum(assemble("out", [], NO_RETRIEVAL, "[Utility:3]", "asqa", rng) is not None for _ in range(4000))
    assert 0.37 < kept / 4000 < 0.43


def test_keep_no_retrieval_setting_keeps_all_or_none():
    def target(keep_share, draw):
        return assemble("out", [], NO_RETRIEVAL, "[Utility:3]", "asqa", Draws(draw), keep_share)
    assert target(1.0, 0.0) == "[No Retrieval]out[Utility:3]"
    assert target(0.0, 0.999) is None
    assert target(0.4, 0.61) is not None and target(0.4, 0.59) is None   # kept iff draw >= 0.6


def test_keep_rules():
    assert keep("[Retrieval]x[Utility:5]", "asqa", Draws()) is True
    assert keep(f"{CONTINUE}x", "asqa", Draws()) is False
    assert keep(f"{NO_RETRIEVAL}x", "nq", Draws(0.6)) is False and keep(f"{NO_RETRIEVAL}x", "nq", Draws(0.4)) is True


def test_normalisers_match_the_seed_readings():
    assert [retrieval_token(p) for p in ("Yes", "[Yes]", "No", "[No Retrieval]", "Retrieval", "blah")] == [
        RETRIEVAL, RETRIEVAL, NO_RETRIEVAL, NO_RETRIEVAL, RETRIEVAL, NO_RETRIEVAL]
    assert utility_token("5") == "[Utility:5]" and utility_token("") is None
    assert support_token("No support / Contradictory") == NO_SUPPORT and support_token("3") is None
    assert relevance_token("[Irrelevant]") == IRRELEVANT and relevance_token("Relevant") == RELEVANT


def test_nq_items_that_start_without_retrieval_are_thinned_once():
    """Before: an NQ item the critic did not retrieve for was kept with probability 0.4 and
    then dropped again with probability 0.5 (the seed's NQ rule is in its retrieval branch only),
    so 0.2 of them were kept."""
    rng, kept = random.Random(11), 0
    for _ in range(4000):
        target = assemble("out", [], NO_RETRIEVAL, "[Utility:3]", "nq", rng)
        kept += target is not None and keep(target, "nq", rng, NO_RETRIEVAL)
    assert 0.37 < kept / 4000 < 0.43
