"""The NLI filter rule by hand: label names from a model's id2label, and what each scope keeps."""

from __future__ import annotations

import doctest

import pytest

from orchestrator.api import ConfigError
from stages.dpa_rag import nli
from stages.dpa_rag.nli import kept, nli_labels


def test_doctests():
    assert doctest.testmod(nli).failed == 0


def test_labels_in_any_order_and_case():
    assert nli_labels({0: "Contradiction", 1: "NEUTRAL", 2: "entailment"}) == \
        {0: "contradiction", 1: "neutral", 2: "entailment"}


@pytest.mark.parametrize("id2label", [
    {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"},
    {0: "entailment", 1: "not_entailment"},
    {0: "entailment", 1: "neutral", 2: "contradiction", 3: "other"},
])
def test_labels_that_are_not_nli_are_refused(id2label):
    with pytest.raises(ConfigError, match="are not NLI labels"):
        nli_labels(id2label, where="nli")


def test_query_scope_drops_every_augmentation_of_a_contradicted_query():
    labels = {"rephrase": "neutral", "decompose": "contradiction", "constraint": None}
    assert kept(labels, "query") == []
    assert kept({"rephrase": "neutral", "decompose": "entailment", "constraint": None},
                "query") == ["rephrase", "decompose", "constraint"]
    assert kept({}, "query") == []


def test_augmentation_scope_drops_only_the_contradicting_one():
    labels = {"rephrase": "contradiction", "complexity": "entailment",
              "decompose": "contradiction", "sparql": None}
    assert kept(labels, "augmentation") == ["complexity", "sparql"]
    assert kept({"rephrase": None}, "augmentation") == ["rephrase"]
