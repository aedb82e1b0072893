"""DynamicRAG prompt builders and the reranker output format."""

import doctest

import pytest

from stages.dynamicrag import prompts
from stages.dynamicrag.prompts import (RERANKER_SYSTEM, format_selection, parse_selection,
                                       reranker_messages)
from stages.lib import prompts as qa_prompts
from stages.lib.prompts import (ANSWER_STYLES, GENERATOR_SYSTEM, SHORT_PHRASE, answer_style,
                                format_docs, generator_messages)

DOCS = [{"id": "d1", "title": "Paris", "text": "Paris is the capital of France."},
        {"id": "d2", "title": "Lyon", "text": "Lyon is a city."},
        {"id": "d3", "title": "Nice", "text": "Nice is on the coast."}]


def test_doctests():
    assert doctest.testmod(prompts).failed == 0
    assert doctest.testmod(qa_prompts).failed == 0


def test_system_prompts_carry_the_paper_rules():
    for phrase in ("[1], [2]", '"None"', "comma-separated", "Stop", "without explanations"):
        assert phrase in RERANKER_SYSTEM
    for phrase in ("Retrieved Content", "None", "I cannot fully answer based on the available "
                   "information. Please provide more details.", "Conciseness"):
        assert phrase in GENERATOR_SYSTEM


@pytest.mark.parametrize("name, style", [
    ("fever", "fever"), ("FEVER_dev", "fever"), ("eli5", "eli5"), ("arc_challenge", "arc"),
    ("ARC-C", "arc"), ("nq", "short_phrase"), ("hotpotqa", "short_phrase"),
    ("tc", "short_phrase"), ("triviaqa", "short_phrase"), ("asqa", "short_phrase"),
    ("2wikimqa", "short_phrase"), ("popqa", "short_phrase"), ("ms_marco", "short_phrase"),
    ("searchqa", "short_phrase"), ("", "short_phrase"),
])
def test_answer_style(name, style):
    assert answer_style(name) == ANSWER_STYLES[style]


def test_format_docs_all_and_selected():
    assert format_docs(DOCS[:2]) == ("Retrieved Content:\n"
                                     "1. Topic: Paris\nContent: Paris is the capital of France.\n"
                                     "2. Topic: Lyon\nContent: Lyon is a city.")
    assert format_docs(DOCS, ids=[3]) == ("Retrieved Content:\n"
                                         "1. Topic: Nice\nContent: Nice is on the coast.")
    assert format_docs(DOCS, ids=[]) == "Retrieved Content: None"
    no_title = format_docs([{"title": None, "text": "t"}])
    assert no_title == "Retrieved Content:\n1. Topic: \nContent: t"
    with pytest.raises(ValueError, match="out of range"):
        format_docs(DOCS, ids=[4])


def test_reranker_messages():
    msgs = reranker_messages("Capital of France?", DOCS)
    assert msgs[0] == {"role": "system", "content": RERANKER_SYSTEM}
    assert msgs[1]["role"] == "user"
    assert msgs[1]["content"] == "Query: Capital of France?\n\n" + format_docs(DOCS)


def test_generator_messages():
    msgs = generator_messages("Is Paris in France?", [DOCS[0]], "fever_train")
    assert msgs[0] == {"role": "system", "content": GENERATOR_SYSTEM}
    assert msgs[1]["content"] == (ANSWER_STYLES["fever"] + "\nQuery: Is Paris in France?\n\n"
                                  "Retrieved Content:\n1. Topic: Paris\n"
                                  "Content: Paris is the capital of France.")
    assert generator_messages("q", [], "nq")[1]["content"].startswith(SHORT_PHRASE + "\nQuery: q")


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
