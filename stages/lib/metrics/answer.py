"""Answer-quality metrics for RAG evaluation, as small pure functions.

Every metric has the signature ``metric(prediction: str, golds: list[str]) -> float`` and returns a
value in [0, 1]; "max over golds" means the best score against any gold answer. ``golds`` may also
be a single string (it is treated as ``[golds]``, never iterated character by character). Stages
pick metrics by name from :data:`METRICS`.

The names say what is compared, because the papers reuse the same word for different things
(SEEDS section 6, "Metric-definition hazards"):

* :func:`match_pred_in_gold` is DynamicRAG's ``match``: the *prediction* is a substring of a gold.
* :func:`match_gold_in_pred` is Self-RAG's / BERGEN's ``match`` ("accuracy" in the papers): a
  *gold* is a substring of the prediction.
* :func:`exact_match` and :func:`token_f1` are SQuAD's EM and F1 on normalized answers.

Fixes relative to the seed code:

* ``token_f1`` is a real per-example token F1 (the DynamicRAG ``--metric f1`` path zipped the
  characters of the prediction with the gold list).
* ``match_pred_in_gold`` scores an empty prediction 0 (in DynamicRAG the empty string is a substring
  of every gold, so a model that says nothing gets full marks).
* ``rouge_l`` skips empty golds instead of returning 0 for the whole example when any gold is empty.

Not as SQuAD: a gold that SQuAD's normalization empties (an option letter "A", the word "The")
is compared with articles kept, on both sides (:func:`normalized_pair`); SQuAD's script would
count an empty prediction as an exact match of "A", and a correct "A" as F1 0. A gold that is an
option letter ("A" to "Z", "(B)", "C.") scores F1 and :func:`match_gold_in_pred` on the letter
the answer picks (:func:`picked_letter`), 1 or 0: as tokens or substrings, the article "a" in
"B: a plant" matched the gold "A", and the "c" of "carbon" the gold "C". EM still asks the answer
to be the letter alone.
"""

from __future__ import annotations

import difflib
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from orchestrator.errors import ConfigError

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_OPTION_GOLD = re.compile(r"\(?([A-Z])[.):]?")
# "A" before a lowercase word is the article ("A plant"), unless the word says something of a
# letter ("A is correct", "A and not B"); "I" before one is the pronoun ("I think", "I would
# choose B", "I was"), unless the word is "is" ("I is correct": "I is" is not English)
_OF_A_LETTER = "is|was|and|or|but|because|since|as|seems|would|should|could|not|only|also|so"
_NOT_PRONOUN = r"(?!I (?!is\b)[a-z])"
_NOT_A_WORD = r"(?!A (?!(?:" + _OF_A_LETTER + r")\b)[a-z])" + _NOT_PRONOUN
# a capital in single quotes, straight or curly ('B', ‘B’); a quote beside a letter is otherwise
# an apostrophe ("O'Brien", "I'd"), and the letter no option
_QUOTED = r"(?<!\w)['‘]([A-Z])['’](?!\w)"
_SAID = re.compile(r"(?i:answer)(?:\s+is)?\s*[:\-]?\s*(?:" + _QUOTED + r"|\(?" + _NOT_PRONOUN
                   + r"([A-Z])(?![\w'’]))")
_ALONE = re.compile(r"\W*\(?([A-Za-z])\)?\W*")
_PICKED = re.compile(r"\(([A-Za-z])\)|" + _QUOTED + r"|(?<![\w'’])" + _NOT_A_WORD
                     + r"([A-Z])(?![\w'’])")
_PUNCTUATION = set(string.punctuation)
_rouge_scorer = None


def as_gold_list(golds: str | Sequence[str] | None) -> list[str]:
    """Gold answers as a list of strings: a lone string becomes a one-element list.

    >>> as_gold_list("Paris")
    ['Paris']
    >>> as_gold_list(["Paris", None, "paris"])
    ['Paris', 'paris']
    >>> as_gold_list(None)
    []
    """
    if golds is None:
        return []
    if isinstance(golds, str):
        return [golds]
    return [g for g in golds if g is not None]


def usable_golds(golds: str | Sequence[str] | None) -> list[str]:
    """Gold answers that can be scored against: stripped, non-empty; a lone string is one gold.

    >>> usable_golds(["Paris ", "", "  "]), usable_golds("Paris")
    (['Paris'], ['Paris'])
    """
    return [g.strip() for g in as_gold_list(golds) if g.strip()]


def normalize_answer(text: str, articles: bool = True) -> str:
    """SQuAD normalization: lowercase, drop ASCII punctuation, drop a/an/the (unless
    ``articles`` is False), collapse whitespace.

    >>> normalize_answer("The  Eiffel-Tower, in Paris!")
    'eiffeltower in paris'
    >>> normalize_answer("An apple a day"), normalize_answer("An apple a day", articles=False)
    ('apple day', 'an apple a day')
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    if articles:
        text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def normalized_pair(prediction: str, gold: str) -> tuple[str, str]:
    """(prediction, gold) normalized for comparison: SQuAD's :func:`normalize_answer`, or, for
    a gold it leaves empty (the option letter "A", an article), lowercase without punctuation
    and with articles kept, on both sides.

    >>> normalized_pair("The Beatles!", "beatles"), normalized_pair("(A) the cat", "A")
    (('beatles', 'beatles'), ('a the cat', 'a'))
    """
    squad = normalize_answer(gold)
    if squad or not gold.strip():
        return normalize_answer(prediction), squad
    kept = [normalize_answer(t, articles=False) for t in (prediction, gold)]
    return kept[0], kept[1]


def option_letter(gold: str) -> str | None:
    """The option letter a gold is ("B", "(B)", "B." or "B)"), else None.

    >>> option_letter("(B)"), option_letter("B."), option_letter("Bonn"), option_letter("a")
    ('B', 'B', None, None)
    """
    found = _OPTION_GOLD.fullmatch(gold.strip())
    return found.group(1) if found else None


def picked_letter(prediction: str) -> str | None:
    """The option letter an answer names: the letter after "answer is" / "Answer:"; else the
    answer's only character, in any case ("b", "(c)"); else the first letter in parentheses, in
    any case, capital in single quotes ('B', ‘B’), or capital standing alone, that is not the
    article "A" or the pronoun "I" before a word ("A plant", "I think", "I would choose B";
    "A is correct" and "A and not B" name A, "I is correct" names I).

    >>> picked_letter("B: a plant"), picked_letter("I think (C), not A"), picked_letter("A.")
    ('B', 'C', 'A')
    >>> picked_letter("It is a mammal."), picked_letter("A plant")
    (None, None)
    >>> picked_letter("The answer is A and not B"), picked_letter("Answer: D"), picked_letter("b")
    ('A', 'D', 'B')
    >>> picked_letter("A is correct"), picked_letter("(a) wood"), picked_letter("")
    ('A', 'A', None)
    >>> picked_letter("The answer is 'B'"), picked_letter("It is ‘C’."), picked_letter("O'B")
    ('B', 'C', None)
    >>> picked_letter("I would choose B."), picked_letter("Answer: I think D"), picked_letter("I")
    ('B', 'D', 'I')
    """
    for pattern in (_SAID.search, _ALONE.fullmatch, _PICKED.search):
        found = pattern(prediction)
        if found:
            return next(letter for letter in found.groups() if letter).upper()
    return None


def _same_option(prediction: str, gold: str) -> float | None:
    """1.0 / 0.0 when ``gold`` is an option letter (the answer picks it or not), else None."""
    letter = option_letter(gold)
    return None if letter is None else float(picked_letter(prediction) == letter)


def exact_match(prediction: str, golds: str | Sequence[str]) -> float:
    """1.0 if the normalized prediction equals a normalized gold, else 0.0 (max over golds).

    >>> exact_match("The Beatles.", ["beatles", "Fab Four"])
    1.0
    >>> exact_match("Beatles song", ["beatles"])
    0.0
    >>> exact_match("", ["A"]), exact_match("A.", ["A"])   # SQuAD's script: 1.0 and 1.0
    (0.0, 1.0)
    >>> exact_match("", ["."]), exact_match("(B) iron", ["B"])   # an empty gold matches nothing
    (0.0, 0.0)
    """
    return float(any(g and p == g for p, g in (normalized_pair(prediction, g)
                                               for g in as_gold_list(golds))))


def _token_f1_single(prediction: str, gold: str) -> float:
    same = _same_option(prediction, gold)
    if same is not None:
        return same
    pred, gold = normalized_pair(prediction, gold)
    pred_tokens, gold_tokens = pred.split(), gold.split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, golds: str | Sequence[str]) -> float:
    """SQuAD token F1 on normalized answers, max over golds; 0.0 when no token overlaps.

    Tokens are compared as multisets: P = common / |pred|, R = common / |gold|, F1 = 2PR / (P + R).
    "barack obama was president" vs "barack obama": common = 2, P = 2/4, R = 2/2,
    F1 = 2 * 0.5 * 1 / 1.5 = 2/3.

    >>> round(token_f1("Barack Obama was president", ["Barack Obama"]), 4)
    0.6667
    >>> token_f1("the cat", ["a dog", "cat"])
    1.0
    >>> token_f1("", ["cat"]), token_f1("A", ["A"])    # SQuAD's script: 0.0 and 0.0
    (0.0, 1.0)
    >>> token_f1("B: a plant", ["A"]), token_f1("(B) iron", ["B"])   # option letters: picked?
    (0.0, 1.0)
    """
    return max((_token_f1_single(prediction, g) for g in as_gold_list(golds)), default=0.0)


def match_pred_in_gold(prediction: str, golds: str | Sequence[str]) -> float:
    """DynamicRAG ``match``: 1.0 if the prediction is a substring of a gold (case-insensitive).

    The prediction is lowercased, newlines are removed and it is stripped; each gold is lowercased.
    An empty prediction scores 0.0 (fix: in DynamicRAG ``"" in gold`` is always true).

    >>> match_pred_in_gold("Paris\\n", ["Paris, France"])
    1.0
    >>> match_pred_in_gold("Paris is the capital", ["Paris"])
    0.0
    >>> match_pred_in_gold("  ", ["Paris"])
    0.0
    """
    pred = prediction.lower().replace("\n", "").strip()
    if not pred:
        return 0.0
    return float(any(pred in g.lower() for g in as_gold_list(golds)))


def match_gold_in_pred(prediction: str, golds: str | Sequence[str],
                       case_sensitive: bool = False) -> float:
    """Self-RAG / BERGEN ``match`` ("accuracy"): 1.0 if a gold is a substring of the prediction.

    Default (``case_sensitive=False``, BERGEN style): both sides are SQuAD-normalized first. A
    gold that is an option letter must be the letter the answer picks (:func:`picked_letter`):
    as a substring it would match nearly every answer. Another gold that SQuAD's normalization
    empties ("The") must occur as a whole word of the prediction normalized with articles kept
    (:func:`normalized_pair`).
    ``case_sensitive=True`` reproduces Self-RAG exactly: raw, unnormalized, case-sensitive ``in``.

    >>> match_gold_in_pred("It was the Beatles!", ["beatles"])
    1.0
    >>> match_gold_in_pred("It was the Beatles!", ["beatles"], case_sensitive=True)
    0.0
    >>> match_gold_in_pred("A) red", ["A"]), match_gold_in_pred("The answer is B", ["A"])
    (1.0, 0.0)
    >>> match_gold_in_pred("B: a plant", ["A"]), match_gold_in_pred("B: carbon", ["C"])
    (0.0, 0.0)
    """
    golds = as_gold_list(golds)
    if case_sensitive:
        return float(any(g and g in prediction for g in golds))
    for gold in golds:
        same = _same_option(prediction, gold)
        if same is not None:
            if same:
                return 1.0
            continue
        pred, norm = normalized_pair(prediction, gold)
        if norm and (norm in pred if normalize_answer(gold) else
                     re.search(rf"\b{re.escape(norm)}\b", pred)):
            return 1.0
    return 0.0


def first_char_accuracy(prediction: str, golds: str | Sequence[str]) -> float:
    """FEVER accuracy: first character of the stripped prediction equals that of a gold label.

    Compared case-insensitively ("supports" and "SUPPORTS" agree), max over golds (FEVER has one
    gold label). A deliberate difference from DynamicRAG's ``response.strip()[0] ==
    answers[0][0]``, which is case-sensitive (it scores "supports" against "SUPPORTS" as 0, so
    this metric can only be higher) and raises on an empty response. Empty prediction -> 0.0.

    >>> first_char_accuracy("  SUPPORTS, because ...", ["SUPPORTS"])
    1.0
    >>> first_char_accuracy("refutes", ["NOT ENOUGH INFO"])
    0.0
    """
    pred = prediction.strip()
    if not pred:
        return 0.0
    return float(any(g.strip() and g.strip()[0].lower() == pred[0].lower()
                     for g in as_gold_list(golds)))


def _rouge_l_single(prediction: str, gold: str) -> float:
    global _rouge_scorer
    if _rouge_scorer is None:
        from rouge_score import rouge_scorer

        _rouge_scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return _rouge_scorer.score(gold, prediction)["rougeL"].fmeasure


def rouge_l(prediction: str, golds: str | Sequence[str]) -> float:
    """ROUGE-L F-measure (``rouge_score``, no stemming), max over golds; 0.0 on empty text.
    rouge_score's tokenizer keeps only ``[a-z0-9]`` runs, so text in other scripts scores 0.0
    even when identical, and accented words split ("Müller": "m", "ller"); English only.

    LCS of "the cat sat on the mat" and "the cat lay on the mat" is 5 tokens of 6 on both sides,
    so P = R = F = 5/6.

    >>> round(rouge_l("the cat sat on the mat", ["the cat lay on the mat"]), 4)
    0.8333
    >>> rouge_l("", ["anything"])
    0.0
    """
    if not prediction.strip():
        return 0.0
    return max((_rouge_l_single(prediction, g) for g in as_gold_list(golds) if g.strip()),
               default=0.0)


def pltrdy_rouge_l_f(hypothesis: str, reference: str) -> float:
    """pltrdy's ``Rouge().get_scores(hypothesis, reference)`` ROUGE-L F (the PyPI ``rouge``
    package); 0.0 for a text of sentence marks only ("...", which it splits into no sentence),
    as the DynamicRAG reward's ``try/except`` did. The package rebuilds each LCS recursively, one
    call per word of both sentences, so two long sentences (about 1,000 words without a ".")
    pass Python's recursion limit: the seed's bare ``except`` scored them 0, the evaluation's
    crashed; here the limit is raised for that call and the score computed.

    The order matters: its summary-level LCS is not symmetric over multi-sentence texts
    ("falls sat the was far it happy. clouds rain falls." against "falls cat it clouds sat."
    gives 0.429 one way and 0.286 the other).

    >>> round(pltrdy_rouge_l_f("falls sat the was far it happy. clouds rain falls.",
    ...                        "falls cat it clouds sat."), 3)           # doctest: +SKIP
    0.429
    """
    try:
        from rouge import Rouge
    except ImportError as err:
        raise ImportError("the DynamicRAG ROUGE-L needs the 'rouge' package: pip install "
                          "'rouge>=1.0.1' (or choose the rouge_score implementation)") from err
    import sys

    def score() -> float:
        return Rouge(metrics=["rouge-l"]).get_scores(hypothesis, reference)[0]["rouge-l"]["f"]

    try:
        return score()
    except ValueError:   # "Collections must contain at least 1 sentence"
        return 0.0
    except RecursionError:
        depth = len(hypothesis.split()) + len(reference.split()) + 1000
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old, depth))
        try:
            return score()
        finally:
            sys.setrecursionlimit(old)


def rouge_l_pltrdy(prediction: str, golds: str | Sequence[str]) -> float:
    """ROUGE-L F as the DynamicRAG evaluation computed it: the PyPI ``rouge`` package
    (pltrdy), ``get_scores(gold, prediction)`` in that order (``metrics.rouge``; see
    :func:`pltrdy_rouge_l_f`), max over golds; 0.0 on empty text. Needs ``pip install rouge``.

    Unlike :func:`rouge_l` it is case-sensitive, keeps punctuation on its tokens ("Paris," is
    not "Paris") and takes the summary-level union LCS over sentences split on ".", so the
    figures differ: "Paris" vs "Paris, France" is 0.0 here and 0.667 with ``rouge_l``; "The cat
    sat on the mat. It was happy." vs "the cat lay on the mat" is 0.571 here, 0.667 there.
    Empty golds are skipped (the seed scored the whole example 0 when any gold was empty).

    >>> round(rouge_l_pltrdy("The cat sat on the mat. It was happy.",
    ...                      ["the cat lay on the mat"]), 3)                  # doctest: +SKIP
    0.571
    """
    if not prediction.strip():
        return 0.0
    return max((pltrdy_rouge_l_f(g, prediction) for g in as_gold_list(golds) if g.strip()),
               default=0.0)


METRICS: dict[str, Callable[[str, Sequence[str]], float]] = {
    "exact_match": exact_match,
    "token_f1": token_f1,
    "match_pred_in_gold": match_pred_in_gold,
    "match_gold_in_pred": match_gold_in_pred,
    "first_char_accuracy": first_char_accuracy,
    "rouge_l": rouge_l,
    "rouge_l_pltrdy": rouge_l_pltrdy,
}
"""Metric name -> ``fn(prediction, golds) -> float in [0, 1]``."""


def check_metric_names(names: Iterable[str], where: str = "metrics") -> None:
    """Refuse names that are not in :data:`METRICS`: a ``ConfigError`` naming the setting
    (``where``), the unknown names and the known ones, with the close matches as its hint.

    >>> check_metric_names(["exact_match", "token_f1"])
    >>> check_metric_names(["rougel"], where="set_metrics.eli5")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    orchestrator.errors.ConfigError: set_metrics.eli5: unknown ['rougel']; known: exact_match, ...
      hint: did you mean 'rouge_l' for 'rougel'?
    """
    unknown = list(dict.fromkeys(n for n in names if n not in METRICS))
    if not unknown:
        return
    close = {n: difflib.get_close_matches(n, METRICS, n=1, cutoff=0.6) for n in unknown}
    hint = ", ".join(f"'{m[0]}' for '{n}'" for n, m in close.items() if m)
    raise ConfigError(f"{where}: unknown {unknown}; known: {', '.join(sorted(METRICS))}",
                      hint=f"did you mean {hint}?" if hint else None)
