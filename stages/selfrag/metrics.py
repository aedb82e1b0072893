"""Self-RAG's evaluation metrics, named apart from ragline's other match metrics.

``selfrag_match`` is the paper's "accuracy" for PopQA, TriviaQA, PubHealth and ARC-Challenge:
1 if any gold string occurs in the prediction, case-sensitive, without normalisation. For FEVER /
PubHealth a prediction containing SUPPORTS (else REFUTES) becomes "true" (else "false") as a
whole first; for ARC the gold is the answer key letter, matched as a substring as the seed does
(so any capital letter counts: "Answer: D" matches the gold "A"; ragline's normalised metrics
beside it read the picked letter instead). ASQA's ALCE metrics (str-em, ROUGE-Lsum) are in
:mod:`stages.lib.metrics.alce`.
"""

from __future__ import annotations

from collections.abc import Sequence


def selfrag_match(prediction: str, golds: Sequence[str]) -> float:
    """Gold-in-prediction, case-sensitive.

    >>> selfrag_match("It is Paris, France.", ["Paris"]), selfrag_match("paris", ["Paris"])
    (1.0, 0.0)
    """
    return 1.0 if any(g in prediction for g in golds) else 0.0


def fever_prediction(prediction: str) -> str:
    """The whole prediction becomes "true" if it contains SUPPORTS (checked first), else "false"
    if it contains REFUTES, else it stays as it is (the seed's ``run_short_form.py`` lines
    345-348, under ``--metric match``).

    >>> fever_prediction("SUPPORTS"), fever_prediction("The claim REFUTES it")
    ('true', 'false')
    >>> fever_prediction("SUPPORTS, not REFUTES"), fever_prediction("true")
    ('true', 'true')
    """
    if "SUPPORTS" in prediction:
        return "true"
    if "REFUTES" in prediction:
        return "false"
    return prediction


def retrieval_frequency(decisions: Sequence[bool]) -> float:
    """Fraction of examples that retrieved (the seed divided by the number of keys of its result
    dict instead of the number of examples).

    >>> retrieval_frequency([True, False, False, True])
    0.5
    """
    return sum(decisions) / len(decisions) if decisions else 0.0

