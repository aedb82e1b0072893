"""ALCE's ASQA metrics (princeton-nlp/ALCE eval.py) on hand-computed examples."""

import doctest

import pytest

from stages.lib.metrics import alce
from stages.lib.metrics.alce import asqa_references, asqa_scores, rouge_lsum, str_em, str_hit


def test_doctests():
    assert doctest.testmod(alce).failed == 0


def test_str_em_is_the_share_of_qa_pairs_found_after_normalisation():
    pairs = [["1889"], ["Gustave Eiffel", "Eiffel"], ["Paris, France"]]
    # normalised: "eiffel tower was completed in 1889": 1889 yes, eiffel yes, "paris france" no
    assert str_em("The Eiffel Tower was completed in 1889.", pairs) == pytest.approx(2 / 3)
    assert str_hit("The Eiffel Tower was completed in 1889.", pairs) == 0.0
    assert str_em("THE U.S. Army", [["us army"]]) == 1.0      # case, punctuation, articles
    # as ALCE: a pair without answers is never found, an empty answer always is
    assert str_em("Oslo", [["Oslo"], []]) == 0.5 and str_em("Oslo", [["Bergen"], [""]]) == 0.5


def test_output_is_cut_to_its_first_line_and_citations_do_not_count():
    row = {"qa_pairs": [{"short_answers": ["1"]}, {"short_answers": ["1991"]}]}
    # "It is big [1]." -> "It is big." : the citation's "1" is no answer; line 2 is not read
    assert asqa_scores("It is big [1].\n1991", row)["str_em"] == 0.0
    assert asqa_scores("It is 1 big thing [2], since 1991 [1].", row) == {
        "str_em": 1.0, "str_hit": 1.0, "rouge_lsum": None}


def test_rouge_lsum_by_hand_max_over_references():
    # "the cat sat" vs "the cat sat on the mat": LCS 3, R 3/6, P 3/3 -> F 2·0.5/1.5 = 0.6667
    assert rouge_lsum("The cat sat.", ["The cat sat on the mat."]) == pytest.approx(2 / 3)
    # vs "the cat sat down": R 3/4, P 1 -> F 1.5/1.75 = 0.8571; the better reference counts
    assert rouge_lsum("The cat sat.", ["The cat sat on the mat.", "The cat sat down."]) == \
        pytest.approx(6 / 7)
    assert rouge_lsum("Cats sitting.", ["The cat sits."]) == pytest.approx(0.8)   # stems: 2/2, 2/3
    assert rouge_lsum("anything", ["", "  "]) == 0.0


def test_references_in_alce_and_flat_shapes():
    row = {"qa_pairs": [{"question": "q1", "short_answers": ["A", ""]}, {"short_answers": []}],
           "annotations": [{"long_answer": "Long one."}, {"long_answer": "Long two."}],
           "long_answers": ["Flat."]}
    assert asqa_references(row) == ([["A", ""], []], ["Flat.", "Long one.", "Long two."])
    assert asqa_scores("x", {"answers": ["x"]}) == {"str_em": None, "str_hit": None,
                                                    "rouge_lsum": None}
