"""DynamicRAG's reranker role and its shipped prompt files (conf/prompts/dynamicrag/)."""

import doctest

import pytest

from stages.dynamicrag import prompts
from stages.dynamicrag.prompts import (SHIPPED, format_selection, parse_selection,
                                       reranker_messages, shipped_prompts)
from stages.lib.prompts import (answer_style, format_passages, generator_messages, load_prompt,
                                placeholders)

DOCS = [{"id": "d1", "title": "Paris", "text": "Paris is the capital of France."},
        {"id": "d2", "title": "Lyon", "text": "Lyon is a city."},
        {"id": "d3", "title": "Nice", "text": "Nice is on the coast."}]


def test_doctests():
    assert doctest.testmod(prompts).failed == 0


def test_shipped_prompts_carry_the_paper_rules():
    reranker, generator = shipped_prompts()
    for phrase in ("[1], [2]", '"None"', "comma-separated", "Stop", "without explanations"):
        assert phrase in reranker.system
    for phrase in ("Retrieved Content", "None", "I cannot fully answer based on the available "
                   "information. Please provide more details.", "Conciseness"):
        assert phrase in generator.system
    judge = load_prompt(SHIPPED / "judge.yaml")
    assert placeholders(judge.user) == {"question", "gold", "response"}


@pytest.mark.parametrize("name, style", [
    ("fever", "fever"), ("FEVER_dev", "fever"), ("eli5", "eli5"), ("arc_challenge", "arc"),
    ("ARC-C", "arc"), ("nq", "default"), ("hotpotqa", "default"),
    ("tc", "default"), ("triviaqa", "default"), ("asqa", "default"),
    ("2wikimqa", "default"), ("popqa", "default"), ("ms_marco", "default"),
    ("searchqa", "default"), ("", "default"),
])
def test_answer_style(name, style):
    generator = shipped_prompts().generator
    assert answer_style(generator, name) == generator.styles[style]


def test_passages_all_and_selected():
    reranker = shipped_prompts().reranker
    assert format_passages(reranker, DOCS[:2]) == (
        "Retrieved Content:\n1. Topic: Paris\nContent: Paris is the capital of France.\n"
        "2. Topic: Lyon\nContent: Lyon is a city.")
    assert format_passages(reranker, DOCS, ids=[3]) == (
        "Retrieved Content:\n1. Topic: Nice\nContent: Nice is on the coast.")
    assert format_passages(reranker, DOCS, ids=[]) == "Retrieved Content: None"
    no_title = format_passages(reranker, [{"title": None, "text": "t"}])
    assert no_title == "Retrieved Content:\n1. Topic: \nContent: t"
    with pytest.raises(ValueError, match="out of range"):
        format_passages(reranker, DOCS, ids=[4])


def test_reranker_messages():
    reranker = shipped_prompts().reranker
    msgs = reranker_messages(reranker, "Capital of France?", DOCS)
    assert msgs[0] == {"role": "system", "content": reranker.system}
    assert msgs[1] == {"role": "user", "content": "Query: Capital of France?\n\n"
                       + format_passages(reranker, DOCS)}


def test_generator_messages():
    generator = shipped_prompts().generator
    msgs = generator_messages(generator, "Is Paris in France?", [DOCS[0]], "fever_train")
    assert msgs[0] == {"role": "system", "content": generator.system}
    assert msgs[1]["content"] == (generator.styles["fever"] + "\nQuery: Is Paris in France?\n\n"
                                  "Retrieved Content:\n1. Topic: Paris\n"
                                  "Content: Paris is the capital of France.")
    assert generator_messages(generator, "q", [], "nq")[1]["content"] == (
        "Please answer the question with a short phrase.\nQuery: q\n\nRetrieved Content: None")


@pytest.mark.parametrize("text, expected", [
    ("[1], [3]", [1, 3]),
    ("[3],[1]", [3, 1]),
    ("None", []),
    ("", []),
    ("I pick 1 and 2", []),
    ("[2], [2], [1]", [2, 1]),
    ("[0], [4], [41], [2]", [2]),   # out of range dropped, not an IndexError for the whole item
    ("[ 1 ], [1.5], [x], [3]", [3]),
])
def test_parse_selection(text, expected):
    assert parse_selection(text, num_docs=3) == expected


def test_selection_round_trip():
    for ids in ([], [1], [3, 1, 2]):
        assert parse_selection(format_selection(ids), num_docs=3) == ids
    assert format_selection([2, 10]) == "[2], [10]"
