"""DynamicRAG reward components and group scoring (SEEDS 1.3 step 10, with its fixes)."""

import doctest
import sys

import pytest

from stages.dynamicrag import reward_logic as reward
from stages.dynamicrag.reward_logic import (COMPONENTS, PAPER_WEIGHTS, combine, containment_em,
                                            length_penalty, make_bertscore,
                                            parse_judge_score, rouge_l_f, score_group)

EM_LP = {"containment_em": 0.5, "length_penalty": 0.5}


def test_doctests():
    assert doctest.testmod(reward).failed == 0


def test_containment_em_both_directions_and_empty():
    assert containment_em(" Paris ", "it is PARIS") == 1.0
    assert containment_em("Paris, France", "paris") == 1.0
    assert containment_em("Paris", "Lyon") == 0.0
    assert containment_em("", "Paris") == 0.0
    assert containment_em("Paris", "  ") == 0.0


def test_rouge_l_f():
    # LCS("a b c d", "a c d e") = 3 of 4 on both sides
    assert rouge_l_f("a b c d", "a c d e") == pytest.approx(0.75)
    assert rouge_l_f("a", "") == 0.0


def test_length_penalty_uses_own_selection():
    assert [length_penalty(k) for k in range(4)] == [1.0, 0.5, pytest.approx(1 / 3), 0.25]
    s = score_group("q", ["x"], ["a", "b"], [[], [1, 2, 3]], {"length_penalty": 1.0})
    assert s.rewards == [1.0, 0.25]     # the seed gave 1/9 to both


@pytest.mark.parametrize("text, expected", [
    ("Score: 85", 0.85), ("score:40.", 0.40), ("Relevance: 20\nScore: 70", 0.70),
    ("Score: 150", 1.0), ("Score: -5", 0.0), ("Score = 55.5", 0.555), ("nothing", 0.0),
    # the paper's rubric ends with "Score: ", so its judge may reply with the number alone
    # (before: 0.0, with a warning only); a number inside a sentence is still no score
    ("85", 0.85), ("85.\n", 0.85), ("It deserves 85", 0.0),
])
def test_parse_judge_score(text, expected):
    assert parse_judge_score(text) == pytest.approx(expected)


def test_judge_prompt_file_has_inputs_and_format():
    from stages.dynamicrag.prompts import SHIPPED
    from stages.lib.prompts import load_prompt, messages

    (m,) = messages(load_prompt(SHIPPED / "judge.yaml"), question="Q?", gold="G", response="R")
    assert m["role"] == "user"
    assert "Q?" in m["content"] and "Reference answer: G" in m["content"] and "Score:" in m["content"]


def test_combine():
    parts = {"rouge_l": 0.5, "containment_em": 1.0, "length_penalty": 0.5, "bertscore": 0.0,
             "judge": 0.75}
    assert combine(parts, PAPER_WEIGHTS) == pytest.approx(0.2 * (0.5 + 1.0 + 0.5 + 0.0 + 0.75))
    with pytest.raises(ValueError, match="not computed"):
        combine({"rouge_l": 1.0}, {"judge": 0.5})
    with pytest.raises(ValueError, match="unknown"):
        combine({}, {"fluency": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        combine({}, {"rouge_l": -1.0})


def test_score_group_hand_computed_mean_over_golds():
    # golds "paris" and "paris france"; response "paris" (1 doc), "lyon" (0 docs)
    # response 0: EM = (1 + 1) / 2 = 1;
    #   ROUGE-L vs "paris" = 1, vs "paris france" = P 1, R 1/2 -> 2/3
    #             rouge part = (1 + 2/3) / 2 = 5/6; LP = 1/2
    # response 1: EM 0, ROUGE 0, LP 1
    w = {"rouge_l": 0.2, "containment_em": 0.3, "length_penalty": 0.5}
    s = score_group("q", ["paris", "paris france", " "], ["paris", "lyon"], [[1], []], w)
    assert s.parts[0] == pytest.approx({"rouge_l": 5 / 6, "containment_em": 1.0,
                                        "length_penalty": 0.5})
    assert s.rewards[0] == pytest.approx(0.2 * 5 / 6 + 0.3 + 0.25)
    assert s.rewards[1] == pytest.approx(0.5)


def test_identical_responses_and_no_gold_give_zero():
    s = score_group("q", ["paris"], ["paris", "paris"], [[1], [1, 2]], EM_LP)
    assert s.rewards == [0.0, 0.0] and s.parts == [{}, {}]
    s = score_group("q", ["", "  "], ["paris", "lyon"], [[1], []], EM_LP)
    assert s.rewards == [0.0, 0.0]
    assert score_group("q", ["x"], [], [], EM_LP).rewards == []


def test_string_gold_is_not_iterated():
    # gold "paris" as a plain string is one answer: ROUGE-L("paris", "paris") = 1;
    # iterated as characters p, a, r, i, s every ROUGE-L would be 0
    s = score_group("q", "paris", ["paris", "lyon"], [[1], [1]], {"rouge_l": 1.0})
    assert s.rewards == [1.0, 0.0]


def test_judge_parsed_and_scaled():
    calls = []

    def judge(question, gold, response):
        calls.append((question, gold, response))
        return "Relevance 20 ... Score: 80" if response == "paris" else "Score: 10"

    s = score_group("capital?", ["paris"], ["paris", "lyon", ""], [[1], [2], []],
                    {"judge": 1.0}, judge=judge)
    assert s.rewards == [pytest.approx(0.8), pytest.approx(0.1), 0.0]
    assert calls == [("capital?", "paris", "paris"), ("capital?", "paris", "lyon")]  # "" not judged
    numeric = score_group("q", ["g"], ["a", "b"], [[], []], {"judge": 1.0},
                          judge=lambda q, g, r: 50)
    assert numeric.rewards == [0.5, 0.5]


def test_bertscore_callable_batched_and_clamped():
    seen = {}

    def fake_bertscore(cands, refs):
        seen["pairs"] = list(zip(cands, refs))
        return [0.9 if c == g else -0.2 for c, g in zip(cands, refs)]

    s = score_group("q", ["a", "b"], ["a", "c", ""], [[], [], []], {"bertscore": 1.0},
                    bertscore=fake_bertscore)
    assert seen["pairs"] == [("a", "a"), ("a", "b"), ("c", "a"), ("c", "b")]
    # response "a": (0.9 + -0.2) / 2; a negative fake value is not clamped by score_group itself
    assert s.rewards[0] == pytest.approx(0.35)
    assert s.rewards[2] == 0.0


def test_nonzero_weight_without_scorer_is_an_error():
    with pytest.raises(ValueError, match="judge"):
        score_group("q", ["g"], ["a", "b"], [[], []], {"judge": 0.2})
    with pytest.raises(ValueError, match="bertscore"):
        score_group("q", ["g"], ["a", "b"], [[], []], {"bertscore": 0.2})
    # weight 0: not needed, not computed
    s = score_group("q", ["g"], ["g", "b"], [[], []], {"judge": 0.0, "containment_em": 1.0})
    assert "judge" not in s.parts[0]


def test_mismatched_lengths():
    with pytest.raises(ValueError, match="selections"):
        score_group("q", ["g"], ["a", "b"], [[]], EM_LP)


def test_make_bertscore_needs_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "bert_score", None)   # as if it were not installed
    with pytest.raises(ImportError, match="bert-score"):
        make_bertscore()


def test_make_bertscore_scores_with_a_local_encoder(tmp_path):
    pytest.importorskip("bert_score")   # in the dev extra
    # the model loads once, here: a tiny local encoder (no hub download in tests)
    score = make_bertscore(model_type=str(_tiny_bert(tmp_path / "tiny-bert")),
                           rescale_with_baseline=False)
    assert [round(x, 3) for x in score(["Paris"], ["Paris"])] == [1.0]


def _tiny_bert(path):
    import json

    from stages.lib.testing.tiny import tiny_encoder

    tiny_encoder(path, ["Paris Lyon"])
    config = json.loads((path / "tokenizer_config.json").read_text())
    config["model_max_length"] = 512          # bert-score truncates to it
    (path / "tokenizer_config.json").write_text(json.dumps(config))
    return path


def test_bertscore_options_for_a_local_checkpoint(tmp_path):
    """bert-score keys its layer and rescaling baseline by model name: a local copy named after
    its model gets both (the paper's reward offline); another folder gets its last layer, and
    asking to rescale it is an error rather than bert-score's silent skip."""
    pytest.importorskip("bert_score")
    from stages.dynamicrag.reward_logic import bertscore_options

    assert bertscore_options("en", None, True) == {"lang": "en", "model_type": None,
                                                   "rescale_with_baseline": True}
    copy = tmp_path / "roberta-large"
    copy.mkdir()
    (copy / "config.json").write_text('{"num_hidden_layers": 24}')
    opts = bertscore_options("en", str(copy), True)
    assert opts["num_layers"] == 17 and opts["baseline_path"].endswith("en/roberta-large.tsv")
    tiny = _tiny_bert(tmp_path / "tiny-bert")
    assert bertscore_options("en", str(tiny), False)["num_layers"] == 2
    with pytest.raises(ValueError, match="bertscore_rescale: false"):
        bertscore_options("en", str(tiny), True)


def test_components_and_paper_weights():
    assert COMPONENTS == ("bertscore", "rouge_l", "containment_em", "length_penalty", "judge")
    assert sum(PAPER_WEIGHTS.values()) == pytest.approx(1.0)


def test_judge_requests_are_exactly_what_score_group_asks():
    from stages.dynamicrag.reward_logic import judge_requests

    asked = []

    def judge(q, g, r):
        asked.append((q, g, r))
        return "Score: 50"

    golds, responses = ["Paris", " ", "paris, france"], ["Paris", "", "Lyon", "Lyon"]
    score_group("q", golds, responses, [[]] * 4, {"judge": 1.0}, judge=judge)
    assert asked == judge_requests("q", golds, responses)
    assert judge_requests("q", golds, ["same", "same"]) == []


def test_rouge_implementation_is_a_choice():
    pytest.importorskip("rouge", reason="pip install rouge (the DynamicRAG ROUGE-L)")
    from stages.dynamicrag.reward_logic import score_group

    args = ("capital?", ["Paris, France"], ["Paris", "Lyon"], [[1], [2]], {"rouge_l": 1.0})
    assert score_group(*args).parts[0]["rouge_l"] == pytest.approx(2 / 3)
    assert score_group(*args, rouge="pltrdy").parts[0]["rouge_l"] == 0.0
    with pytest.raises(ValueError, match="rouge must be one of"):
        score_group(*args, rouge="rouge-l")


def test_pltrdy_reward_keeps_the_rewards_order_and_scores_a_response_of_periods_0():
    """utils.compute_rouge_score: get_scores(response, gold), 0 where pltrdy raises (a response
    of periods only made the reward step fail)."""
    pytest.importorskip("rouge", reason="pip install rouge (the DynamicRAG ROUGE-L)")
    from stages.dynamicrag.reward_logic import score_group

    gold, response = "falls cat it clouds sat.", "falls sat the was far it happy. clouds rain falls."
    parts = score_group("q", [gold], [response, "...", "x"], [[1], [1], [1]], {"rouge_l": 1.0},
                        rouge="pltrdy").parts
    assert parts[0]["rouge_l"] == pytest.approx(3 / 7, abs=1e-6)   # get_scores(response, gold)
    assert parts[1]["rouge_l"] == 0.0
