"""Answer metrics: hand-computed expectations from the SEEDS definitions (0.2, 1.5, 2.7)."""

import doctest

import pytest

from stages.lib.metrics import answer as metrics
from stages.lib.metrics.answer import (METRICS, as_gold_list, exact_match, first_char_accuracy,
                                       match_gold_in_pred, match_pred_in_gold, normalize_answer,
                                       rouge_l, token_f1)


def test_doctests():
    assert doctest.testmod(metrics).failed == 0


@pytest.mark.parametrize("text, expected", [
    ("The Cat", "cat"),
    ("  A   an THE  ", ""),
    ("theater", "theater"),               # whole words only
    ("U.S.A.", "usa"),
    ("rock-and-roll!", "rockandroll"),   # punctuation removed, not replaced by a space
    ("Tab\tand\nnewline", "tab and newline"),
])
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


def test_gold_string_is_one_answer():
    assert as_gold_list("abc") == ["abc"]
    assert exact_match("abc", "abc") == 1.0
    assert token_f1("abc", "abc") == 1.0


def test_exact_match_max_over_golds():
    assert exact_match("The Fab Four!", ["Beatles", "fab four"]) == 1.0
    assert exact_match("Fab Four band", ["Beatles", "fab four"]) == 0.0
    assert exact_match("x", []) == 0.0


def test_token_f1_hand_computed():
    # pred tokens [new, york, city], gold [new, york]: common 2, P 2/3, R 1, F1 = 0.8
    assert token_f1("New York City", ["new york"]) == pytest.approx(0.8)
    # repeated tokens count as a multiset: pred [a1, a1, b], gold [a1, c]: common 1, P 1/3, R 1/2
    assert token_f1("a1 a1 b", ["a1 c"]) == pytest.approx(2 * (1 / 3) * 0.5 / (1 / 3 + 0.5))
    # max over golds
    assert token_f1("paris", ["london", "Paris"]) == 1.0
    assert token_f1("paris", ["london"]) == 0.0
    # not the seeds' character zip: a long prediction with the gold inside scores partially
    assert 0 < token_f1("it is paris of course", ["paris"]) < 1


def test_match_pred_in_gold_direction_and_empty():
    assert match_pred_in_gold("Obama", ["Barack Obama"]) == 1.0
    assert match_pred_in_gold("Barack Obama", ["Obama"]) == 0.0
    # the newline is removed, not replaced by a space
    assert match_pred_in_gold("BARACK\nOBAMA ", ["barack obama"]) == 0.0
    assert match_pred_in_gold("barack \nobama", ["Barack Obama"]) == 1.0
    assert match_pred_in_gold("", ["Barack Obama"]) == 0.0   # fix: empty is not a match
    assert match_pred_in_gold("\n ", ["x"]) == 0.0


def test_match_gold_in_pred_normalized_and_case_sensitive():
    assert match_gold_in_pred("The answer is Barack Obama.", ["barack obama"]) == 1.0
    assert match_gold_in_pred("The answer is Barack Obama.", ["barack obama"],
                              case_sensitive=True) == 0.0
    assert match_gold_in_pred("The answer is Barack Obama.", ["Barack Obama"],
                              case_sensitive=True) == 1.0
    assert match_gold_in_pred("The answer is Obama", ["Barack Obama"]) == 0.0
    assert match_gold_in_pred("anything", ["", "the"]) == 0.0   # empty golds never match
    assert match_gold_in_pred("anything", [""], case_sensitive=True) == 0.0


def test_first_char_accuracy():
    assert first_char_accuracy("SUPPORTS", ["SUPPORTS"]) == 1.0
    assert first_char_accuracy(" supports.", ["SUPPORTS"]) == 1.0
    assert first_char_accuracy("REFUTES", ["SUPPORTS"]) == 0.0
    assert first_char_accuracy("NEI", ["NOT ENOUGH INFO"]) == 1.0
    assert first_char_accuracy("", ["SUPPORTS"]) == 0.0
    assert first_char_accuracy("S", [""]) == 0.0


def test_rouge_l_hand_computed():
    # LCS("a b c d", "a c d e") = [a, c, d] = 3: P = 3/4, R = 3/4, F = 0.75
    assert rouge_l("a b c d", ["a c d e"]) == pytest.approx(0.75)
    # pred 2 tokens inside a 4-token gold: P = 1, R = 1/2, F = 2/3; max over golds picks 1.0
    assert rouge_l("b c", ["a b c d"]) == pytest.approx(2 / 3)
    assert rouge_l("b c", ["a b c d", "b c"]) == pytest.approx(1.0)
    assert rouge_l("", ["a"]) == 0.0
    assert rouge_l("a", ["", "a"]) == 1.0    # an empty gold is skipped, not a zero for the item
    assert rouge_l("a", [""]) == 0.0


def test_metrics_registry():
    assert set(METRICS) == {"exact_match", "token_f1", "match_pred_in_gold", "match_gold_in_pred",
                            "first_char_accuracy", "rouge_l", "rouge_l_pltrdy"}
    import importlib.util

    for name, fn in METRICS.items():
        if name == "rouge_l_pltrdy" and importlib.util.find_spec("rouge") is None:
            continue
        assert fn("Paris", ["Paris"]) == pytest.approx(1.0)   # pltrdy's F carries a 1e-8 epsilon
        assert 0.0 <= fn("Lyon", ["Paris"]) <= 1.0


def test_rouge_l_pltrdy_is_the_original_package():
    pytest.importorskip("rouge", reason="pip install rouge (the DynamicRAG ROUGE-L)")
    from stages.lib.metrics.answer import METRICS, rouge_l_pltrdy

    # the fidelity review's two examples: pltrdy vs rouge_score
    assert rouge_l_pltrdy("Paris", ["Paris, France"]) == 0.0
    assert METRICS["rouge_l"]("Paris", ["Paris, France"]) == pytest.approx(2 / 3)
    assert rouge_l_pltrdy("The cat sat on the mat. It was happy.",
                          ["the cat lay on the mat"]) == pytest.approx(4 / 7, abs=1e-6)
    assert rouge_l_pltrdy("", ["x"]) == 0.0 and rouge_l_pltrdy("x", ["", " "]) == 0.0


def test_rouge_l_pltrdy_asks_in_the_evaluations_order_and_survives_a_text_of_periods():
    """DynamicRAG's metrics.rouge calls get_scores(gold, prediction); pltrdy's summary-level
    LCS is not symmetric over several sentences, and we called it the other way round. A
    prediction of periods only made pltrdy raise ("at least 1 sentence") and stopped the step."""
    pytest.importorskip("rouge", reason="pip install rouge (the DynamicRAG ROUGE-L)")
    from rouge import Rouge

    from stages.lib.metrics.answer import pltrdy_rouge_l_f, rouge_l_pltrdy

    prediction = "falls cat it clouds sat."
    gold = "falls sat the was far it happy. clouds rain falls."
    original = Rouge(metrics=["rouge-l"]).get_scores(gold, prediction)[0]["rouge-l"]["f"]
    assert original == pytest.approx(3 / 7, abs=1e-6)
    assert rouge_l_pltrdy(prediction, [gold]) == pytest.approx(original)
    assert pltrdy_rouge_l_f(prediction, gold) == pytest.approx(2 / 7, abs=1e-6)  # other order
    assert rouge_l_pltrdy("...", ["x"]) == 0.0 and rouge_l_pltrdy("x", ["..."]) == 0.0


def test_check_metric_names_says_the_setting_and_the_known_names():
    from orchestrator.api import ConfigError
    from stages.lib.metrics.answer import check_metric_names

    check_metric_names(["exact_match", "rouge_l"])   # all known: nothing raised
    with pytest.raises(ConfigError) as err:
        check_metric_names(["exact_match", "em", "tokenf1", "em"], where="set_metrics.fever")
    assert err.value.message == ("set_metrics.fever: unknown ['em', 'tokenf1']; known: "
                                 + ", ".join(sorted(METRICS)))   # one line
    assert err.value.hint == "did you mean 'token_f1' for 'tokenf1'?"
    with pytest.raises(ConfigError) as err:
        check_metric_names(["bleu"])
    assert err.value.message.startswith("metrics: unknown ['bleu']; known: exact_match, ")
    assert err.value.hint is None
