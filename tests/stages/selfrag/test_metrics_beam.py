"""Self-RAG metrics against the seed's definitions, and the segment beam search with a
controlled scorer."""

import doctest

from stages.selfrag import beam, metrics
from stages.selfrag.beam import Continuation, Node, beam_search
from stages.selfrag.metrics import fever_prediction, retrieval_frequency, selfrag_match


def test_doctests():
    assert doctest.testmod(metrics).failed == 0
    assert doctest.testmod(beam).failed == 0


def test_match_is_case_sensitive_substring():
    assert selfrag_match("The capital is Paris", ["Paris", "paris"]) == 1.0
    assert selfrag_match("True", ["true"]) == 0.0        # as the seed (CRAG issue #8)
    assert selfrag_match(fever_prediction("SUPPORTS"), ["true"]) == 1.0
    assert selfrag_match("Answer: D", ["D"]) == 1.0
    assert selfrag_match("Answer: D", ["A"]) == 1.0      # the seed's substring: any capital counts


def test_retrieval_frequency_divides_by_examples():
    assert retrieval_frequency([True] * 3 + [False] * 7) == 0.3


def test_beam_keeps_width_and_multiplies_scores():
    calls = []

    def expand(node):
        calls.append(node.segments)
        depth = len(node.segments)
        # passage 0 looks best at first (0.9) but leads to weak children (0.1);
        # passage 1 starts lower (0.6) and continues well (0.9)
        if depth == 0:
            return [Continuation("a", 0, 0.9, False), Continuation("b", 1, 0.6, False), Continuation("c", 2, 0.1, False)]
        first = node.segments[0]
        score = {"a": 0.1, "b": 0.9, "c": 1.0}[first]
        return [Continuation(first + "+", None, score, True)]

    best = beam_search(Node(), expand, beam_width=2, max_depth=7)
    assert best.segments == ("b", "b+") and abs(best.score - 0.54) < 1e-9
    assert ("c",) not in calls                  # pruned at width 2
    assert len(calls) == 3                      # root + the two kept nodes; then all done


def test_beam_stops_at_max_depth():
    def forever(node):
        return [Continuation("x", 0, 1.0, False)]

    assert len(beam_search(Node(), forever, beam_width=2, max_depth=3).segments) == 3
