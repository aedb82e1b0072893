"""ALCE's ASQA metrics (princeton-nlp/ALCE ``eval.py``), as pure functions: string exact match
(``str_em``, ``str_hit``) and ROUGE-Lsum against the long-form references.

Before scoring, ALCE cleans a model output (``eval.py`` ``main``): strip it, keep its first line,
drop ``<|im_end|>`` (:func:`alce_output`); then, for every metric but citation quality, it removes
the citation marks (``utils.remove_citations``: ``" [1]"``, ``"[2]"``; :func:`remove_citations`).

* str-em (``compute_str_em``): for each item, the fraction of its ``qa_pairs`` with at least one
  short answer that, SQuAD-normalised (lowercase, no punctuation, no articles, single spaces;
  ``utils.normalize_answer``), is a substring of the normalised output (``exact_presence``);
  averaged over items. str-hit: 1 when every pair is found.
* ROUGE-Lsum (``compute_rouge``): ``rouge_score``'s ``rougeLsum`` with the Porter stemmer, on the
  lowercased output and reference with one sentence per line; per item the reference with the
  higher F-measure counts (ALCE reads ``annotations[0]`` and ``[1]``; here the max over all).

Two differences, both because they need data downloads: ALCE splits sentences with NLTK's
*trained* Punkt model (``nltk.download("punkt")``); here NLTK's Punkt algorithm runs with no
learned abbreviations (``PunktSentenceTokenizer()``), so "Dr. Smith" becomes two sentences where
the trained model keeps one — this moves only where rougeLsum's sentence boundaries fall. And
ALCE reports the corpus ROUGE-Lsum as the bootstrap aggregate's ``mid`` (the median of 1,000
resampled means), where here each question has its F-measure and the stage averages them: equal
to ALCE's figure up to the resampling noise. ALCE reports percentages; these are in [0, 1].
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from stages.lib.metrics.answer import normalize_answer

_scorer = None
_splitter = None


def alce_output(text: str) -> str:
    """The output ALCE scores: stripped, first line only, ``<|im_end|>`` removed.

    >>> alce_output("  Paris is big [1].\\nExtra line<|im_end|>")
    'Paris is big [1].'
    """
    return text.strip().split("\n")[0].replace("<|im_end|>", "")


def remove_citations(text: str) -> str:
    """ALCE's ``remove_citations``: ``" [n"`` and ``"[n"`` go, then ``" |"`` and ``"]"``.

    >>> remove_citations("Paris is big [1][2]. It has a river [3].")
    'Paris is big. It has a river.'
    """
    return re.sub(r"\[\d+", "", re.sub(r" \[\d+", "", text)).replace(" |", "").replace("]", "")


def str_em(prediction: str, short_answers: Sequence[Sequence[str]]) -> float:
    """Fraction of QA pairs one of whose short answers occurs in the normalised prediction.

    "Born in 1990 in Oslo." against pairs (1990), (Bergen | Oslo), (June): 2 of 3.

    >>> round(str_em("Born in 1990 in Oslo.", [["1990"], ["Bergen", "Oslo"], ["June"]]), 4)
    0.6667
    >>> str_em("The Beatles", [["beatles"]]), str_em("anything", [])
    (1.0, 0.0)
    """
    text = normalize_answer(prediction)
    hits = [any(normalize_answer(a) in text for a in pair) for pair in short_answers]
    return sum(hits) / len(hits) if hits else 0.0


def str_hit(prediction: str, short_answers: Sequence[Sequence[str]]) -> float:
    """1.0 when every QA pair is found (ALCE's ``str_hit``).

    >>> pairs = [["1990"], ["Oslo"]]
    >>> str_hit("Born in 1990 in Oslo.", pairs), str_hit("1990", pairs)
    (1.0, 0.0)
    """
    return 1.0 if short_answers and str_em(prediction, short_answers) == 1.0 else 0.0


def sentence_lines(text: str) -> str:
    """Lowercased, one sentence per line (rougeLsum's summary-level unit).

    >>> sentence_lines("Paris is big. It has a river!")
    'paris is big.\\nit has a river!'
    """
    global _splitter
    if _splitter is None:
        from nltk.tokenize.punkt import PunktSentenceTokenizer

        _splitter = PunktSentenceTokenizer()
    return "\n".join(_splitter.tokenize(text.lower()))


def rouge_lsum(prediction: str, references: Sequence[str]) -> float:
    """Best ROUGE-Lsum F-measure of the prediction against any reference (0 without one).

    Prediction "paris is big. it has a river." (7 tokens) against "paris is a big city." (5):
    the reference sentence's LCS with prediction sentence 1 is "paris is big", with sentence 2
    "a"; their union covers 4 reference tokens: recall 4/5, precision 4/7,
    F = 2·0.8·0.5714 / 1.3714 = 0.6667. "Oslo." scores 0, so the max is 0.6667.

    >>> round(rouge_lsum("Paris is big. It has a river.", ["Paris is a big city.", "Oslo."]), 4)
    0.6667
    >>> rouge_lsum("Paris", [])
    0.0
    """
    global _scorer
    refs = [r for r in references if r and r.strip()]
    if not refs:
        return 0.0
    if _scorer is None:
        from rouge_score import rouge_scorer

        _scorer = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True)
    hyp = sentence_lines(prediction)
    return max(_scorer.score(sentence_lines(r), hyp)["rougeLsum"].fmeasure for r in refs)


def asqa_references(row: Mapping) -> tuple[list[list[str]], list[str]]:
    """(short-answer sets, long answers) of an ASQA-style row, in ALCE's or a flattened shape:
    ``qa_pairs`` as ``[{"short_answers": [...]}, ...]`` or ``[[...], ...]``; long answers from
    ``long_answers`` (strings), ``annotations[].long_answer`` or a string ``answer``. Pairs are
    kept as they are, as ALCE scores them: a pair without answers is never found, an empty answer
    always is (the empty string is in every text).

    >>> asqa_references({"qa_pairs": [{"short_answers": ["1990"]}, ["Oslo", "Bergen"], []],
    ...                  "annotations": [{"long_answer": "In 1990."}, {"long_answer": ""}]})
    ([['1990'], ['Oslo', 'Bergen'], []], ['In 1990.'])
    >>> asqa_references({"answers": ["Paris"]})
    ([], [])
    """
    pairs = []
    for pair in row.get("qa_pairs") or []:
        answers = pair.get("short_answers") if isinstance(pair, Mapping) else pair
        pairs.append([a for a in (answers or []) if isinstance(a, str)])
    longs = list(row.get("long_answers") or [])
    longs += [a.get("long_answer") for a in row.get("annotations") or []
              if isinstance(a, Mapping)]
    if isinstance(row.get("answer"), str):
        longs.append(row["answer"])
    return pairs, [t for t in longs if isinstance(t, str) and t.strip()]


def asqa_scores(prediction: str, row: Mapping) -> dict[str, float | None]:
    """str_em, str_hit and rouge_lsum of one output, ALCE-cleaned first; None where the row has
    no QA pairs (str metrics) or no long answer (ROUGE).

    >>> asqa_scores("Born in 1990 [1].\\nIgnored: Oslo", {"qa_pairs": [["1990"], ["Oslo"]]})
    {'str_em': 0.5, 'str_hit': 0.0, 'rouge_lsum': None}
    """
    pairs, longs = asqa_references(row)
    text = remove_citations(alce_output(prediction))
    return {"str_em": str_em(text, pairs) if pairs else None,
            "str_hit": str_hit(text, pairs) if pairs else None,
            "rouge_lsum": rouge_lsum(text, longs) if longs else None}
