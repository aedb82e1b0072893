"""RAG-Instruct's per-set accuracy (SEEDS §4.6), as small pure functions.

The paper scores every evaluation set with one of four rules, chosen by the set's name
(the seed: ``eval/scorer.py`` of FreedomIntelligence/RAG-Instruct, as of commit 5fbc57f):

* ``open_qa`` (2WIKI, TriviaQA, WebQuestions, MuSiQue, PopQA): correct when a lowercased gold
  occurs in the lowercased output as a whole "word": preceded by a non-word character or the
  start, followed by a non-word character or the end (:func:`word_match`).
* ``choice`` (OpenBookQA, ARC-Challenge, MedQA, CaseHOLD; also any row whose options are given
  and whose golds are all option letters, :func:`letter_golds`): the output is cut to what follows
  ``## Response:`` when that marker is present; the predicted letter is the *first* standalone
  letter A-N / a-n (after ``is ``, a non-word character or the start, the article ``a``/``A``
  followed by a space excluded); without one, the option whose text occurs latest in the
  output; without that either, the option whose text is most similar to the output
  (``difflib`` ratio, the last of equals). Correct when the letter is one of the golds
  (:func:`predicted_letter`). A row's options are its ``options`` field, else the ``A. text``
  lines of its question (:func:`option_map`).
* ``numeric`` (ConvFinQA): when the first gold still has two or more characters once its
  ``0``, ``.`` and ``,`` are removed, those characters are removed from the output too and the
  stripped gold is word-matched; otherwise the open-QA rule (:func:`numeric_correct`).
* ``yes_no`` (PubMedQA, PubHealth, HotpotQA): a lone gold among yes / no / true / false / maybe
  is word-matched as is, anything else goes to the open-QA rule. For a lone gold this is the same
  test as open QA (the seed lowercases both sides either way); it is kept as its own rule so a
  set's scoring reads as the paper's.

Quirks of the seed kept on purpose, so the figures compare with the paper's: the letter search
runs on the output as written (a lowercase ``b`` is a hit, and is then not the gold ``B``), it
takes any letter up to N whatever the row's options (an output starting "I think..." predicts
"I"), and it takes the first hit (an earlier commit of the seed, 9daf290, took the last one).
ConvFinQA's digit stripping makes "250" match a gold of "25".

Where this differs from the seed, and why:

* A set matching none of the configured keys is scored with the open-QA rule; the seed raises
  ``ValueError('wrong')``. A run over a new set then gives a figure instead of stopping, and
  open QA is the seed's most general rule.
* The rule is picked by the longest configured key occurring in the set's name, ignoring case
  (:func:`scorer_for`); the seed compares against a fixed list of its own file names.
* Blank golds are dropped (the seed's regex makes an empty gold match every output), and a row
  with no gold left is not scored (the stage leaves it out of the accuracy; the seed counts it
  wrong). Golds are stripped of surrounding spaces (the seed's gold " Paris " does not
  match "It was Paris.").
* Options with an empty text take no part in the fallbacks (the seed pads a missing option D
  with "", which "occurs" at the end of every output and so always won the second fallback).
* A row with no letter hit and no options predicts nothing (``None``, wrong); the seed crashes.
* An empty output (nothing but whitespace after ``## Response:`` or in all) predicts nothing
  (``None``, wrong). In the seed the ``difflib`` fallback picks the last option for it (every
  ratio is 0 and the last of equals wins), so an empty answer earned credit on every question
  whose gold is the last option; here it earns none, as an answer that names no option should.
* CaseHOLD is a multiple-choice set here; the seed's scorer has no rule for it (it raises).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence

from stages.lib.data.set_names import names_set

OPEN_QA, CHOICE, NUMERIC, YES_NO = "open_qa", "choice", "numeric", "yes_no"
RULES = (OPEN_QA, CHOICE, NUMERIC, YES_NO)
YES_NO_GOLDS = ("yes", "no", "true", "false", "maybe")
RESPONSE_MARKER = "## Response:"
# the sets whose options follow the question (rag_instruct.eval_inputs) and whose reply is
# scored by its option letter (rag_instruct.evaluate): one list, so the two steps agree
CHOICE_SETS = ("openbookqa", "obqa", "arc", "medqa", "casehold")

# a standalone letter A-N / a-n: after "is ", 是 / 为 ("is" in Chinese), a non-word character or
# the start; not "a " / "A " (the article); followed by a non-word character or the end
_LETTER = re.compile(r"(?:is |是|为|\W|^)(?![aA] )([a-nA-N])(?:\W|$)")
# one option line of a question: "A. text", "(A) text", "A) text" or "A: text"
_OPTION_LINE = re.compile(r"\s*(?:\(([A-N])\)|([A-N])[.):])\s*(\S.*?)\s*")


def word_match(text: str, gold: str) -> bool:
    """``gold`` occurs in ``text`` with a non-word character (or the text's start / end) on
    each side; both as given (callers lowercase).

    >>> word_match("it was paris.", "paris"), word_match("the parisian view", "paris")
    (True, False)
    >>> word_match("about 3.5 m", "3.5"), word_match("c++ is old", "c++")
    (True, True)
    """
    return re.search(rf"(?:\W|^){re.escape(gold)}(?:\W|$)", text) is not None


def _golds(golds: str | Sequence[str] | None) -> list[str]:
    """The golds compared: stripped of surrounding spaces, blank ones dropped.

    >>> _golds([" Paris ", "", None, "  "]), _golds("B")
    (['Paris'], ['B'])
    """
    if golds is None:
        return []
    return [g.strip() for g in ([golds] if isinstance(golds, str) else golds) if g and g.strip()]


def open_qa_correct(prediction: str, golds: Sequence[str]) -> bool:
    """A lowercased gold is word-matched in the lowercased prediction.

    >>> open_qa_correct("The answer is Barack Obama.", ["barack obama", "Obama"])
    True
    >>> open_qa_correct("Obamacare was his.", ["Obama"])
    False
    """
    text = prediction.lower()
    return any(word_match(text, gold.lower()) for gold in _golds(golds))


def yes_no_correct(prediction: str, golds: Sequence[str]) -> bool:
    """A lone yes / no / true / false / maybe gold is word-matched; else the open-QA rule.

    >>> yes_no_correct("False. The claim is not supported.", ["false"])
    True
    >>> yes_no_correct("Not really", ["no"]), yes_no_correct("Yes, Paris.", ["Paris"])
    (False, True)
    """
    golds = _golds(golds)
    if len(golds) == 1 and golds[0] in YES_NO_GOLDS:
        return word_match(prediction.lower(), golds[0])
    return open_qa_correct(prediction, golds)


def _strip_digits(text: str) -> str:
    return text.replace("0", "").replace(".", "").replace(",", "")


def numeric_correct(prediction: str, golds: Sequence[str]) -> bool:
    """ConvFinQA: remove ``0``, ``.`` and ``,`` from the first gold; when two or more characters
    are left, remove them from the prediction too and word-match; else the open-QA rule.

    "0.25" -> "25"; "the change was 0.25%" -> "the change was 25%": correct.
    "1,200" -> "12"; "about 1200" -> "about 12": correct. "5.0" -> "5" (one character): the
    open-QA rule on "5.0", which "50" does not match.

    >>> numeric_correct("the change was 0.25%", ["0.25"]), numeric_correct("about 1200", ["1,200"])
    (True, True)
    >>> numeric_correct("50", ["5.0"]), numeric_correct("it is 5.0", ["5.0"])
    (False, True)
    """
    golds = [g.lower() for g in _golds(golds)]
    if not golds:
        return False
    stripped = _strip_digits(golds[0])
    if len(stripped) > 1:
        return word_match(_strip_digits(prediction.lower()), stripped)
    return open_qa_correct(prediction, golds)


def response_text(output: str) -> str:
    """What follows ``## Response:`` (up to a second one), or the whole output without it.

    >>> response_text("### Instruction: ... ### Response: B"), response_text("B")
    (' B', 'B')
    """
    return output.split(RESPONSE_MARKER)[1] if RESPONSE_MARKER in output else output


def parse_options(question: str) -> dict[str, str]:
    """Options written in a question as lines ``A. text``, ``(A) text``, ``A) text`` or
    ``A: text`` (letters A-N); the first line of each letter counts, empty ones none.

    >>> parse_options("Which gas?\\nA: oxygen\\n(B) carbon dioxide\\nC) helium\\nD:")
    {'A': 'oxygen', 'B': 'carbon dioxide', 'C': 'helium'}
    """
    options: dict[str, str] = {}
    for line in question.splitlines():
        found = _OPTION_LINE.fullmatch(line)
        if found:
            options.setdefault(found.group(1) or found.group(2), found.group(3))
    return options


def option_map(options, question: str = "") -> dict[str, str]:
    """A row's options as {letter: text}: its ``options`` field (a dict letter -> text, ARC's
    ``{"label": [...], "text": [...]}``, or a list read as A, B, C...), else
    :func:`parse_options` of the question. Missing (None) texts are dropped; a field with none
    left counts as absent.

    >>> option_map(["red", "blue"]), option_map({"A": "red", "B": None})
    ({'A': 'red', 'B': 'blue'}, {'A': 'red'})
    >>> option_map({"label": ["A", "B"], "text": ["red", "blue"]})
    {'A': 'red', 'B': 'blue'}
    >>> option_map(None, "Pick one:\\nA. red\\nB. blue")
    {'A': 'red', 'B': 'blue'}
    """
    if isinstance(options, Mapping) and set(options) == {"label", "text"}:
        options = dict(zip(options["label"], options["text"]))
    elif isinstance(options, Sequence) and not isinstance(options, str):
        options = {chr(ord("A") + i): text for i, text in enumerate(options)}
    given = {}
    if isinstance(options, Mapping):
        given = {str(k): str(v) for k, v in options.items() if v is not None}
    return given or parse_options(question or "")


def predicted_letter(output: str, options: Mapping[str, str]) -> str | None:
    """The option letter an output picks, by the seed's three tries in order (on the text after
    ``## Response:`` when present):

    1. the first standalone letter A-N / a-n (not the article "a "):
       "The answer is (C), not B" -> "C";
    2. else the option whose text occurs latest in the lowercased output:
       "Oxygen? no, carbon dioxide" -> "B" (carbon dioxide at 12 is after oxygen at 0);
    3. else the option with the highest ``difflib`` ratio to the lowercased output (the last of
       equals): "carbon dioxid" vs "oxygen" 0.21, vs "carbon dioxide" 2·13/27 = 0.96 -> "B".

    >>> opts = {"A": "oxygen", "B": "carbon dioxide"}
    >>> predicted_letter("The answer is (C), not B", opts)
    'C'
    >>> predicted_letter("Oxygen? no, carbon dioxide", opts)
    'B'
    >>> predicted_letter("carbon dioxid", opts)
    'B'
    >>> predicted_letter("a guess", {}) is None
    True

    An empty output picks nothing (the seed's fallback gave it the last option):

    >>> predicted_letter(" \\n", opts) is None, predicted_letter("### Response:  ", opts) is None
    (True, True)
    """
    text = response_text(output)
    if not text.strip():
        return None
    hit = _LETTER.search(text)
    if hit:
        return hit.group(1)
    text = text.lower()
    texts = {letter: option.lower() for letter, option in options.items() if option.strip()}
    occurring = {letter: text.rindex(t) for letter, t in texts.items() if t in text}
    if occurring:
        return max(occurring, key=occurring.get)       # the first of equals, as the seed's sort
    best, best_ratio = None, 0.0
    for letter, option in texts.items():
        ratio = difflib.SequenceMatcher(None, option, text).ratio()
        if ratio >= best_ratio:
            best, best_ratio = letter, ratio
    return best


def letter_golds(golds: Sequence[str] | None, options: Mapping[str, str]) -> bool:
    """Whether a row is a multiple-choice one by its own fields: it has options and each of its
    (non-blank) golds, compared as written, is one of their letters. Such a row gets the
    ``choice`` rule whatever its set's name (a set ``obqa`` or ``my_quiz`` not among the keys).

    >>> opts = {"A": "wood", "B": "iron"}
    >>> letter_golds(["B"], opts), letter_golds(["iron"], opts), letter_golds(["C"], opts)
    (True, False, False)
    >>> letter_golds(["A"], {}), letter_golds([], opts), letter_golds(["B", " "], opts)
    (False, False, True)
    """
    golds = _golds(golds)
    return bool(options) and bool(golds) and all(g in options for g in golds)


def choice_correct(prediction: str, golds: Sequence[str], options: Mapping[str, str]) -> bool:
    """The predicted letter (:func:`predicted_letter`) is one of the golds, compared as written.

    >>> choice_correct("### Response: B", ["B"], {}), choice_correct("b", ["B"], {})
    (True, False)
    """
    letter = predicted_letter(prediction, options)
    return letter is not None and letter in _golds(golds)


def scorer_for(dataset: str, cfg) -> str:
    """The rule for a set: that of the longest key of ``cfg.choice_sets``, ``cfg.numeric_sets``,
    ``cfg.yes_no_sets`` that names the set (a whole word of its name, ignoring case: "medqa"
    does not name "pubmedqa", nor "arc" "msmarco"; on equal lengths in that order); ``open_qa``
    when none does.

    >>> from types import SimpleNamespace
    >>> cfg = SimpleNamespace(choice_sets=["arc", "medqa"], numeric_sets=["convfinqa"],
    ...                       yes_no_sets=["pubmedqa"])
    >>> [scorer_for(d, cfg) for d in ["arc_challenge", "ConvFinQA_test", "pubmedqa", "msmarco"]]
    ['choice', 'numeric', 'yes_no', 'open_qa']
    """
    found = [(len(key), rule)
             for rule, keys in ((CHOICE, cfg.choice_sets), (NUMERIC, cfg.numeric_sets),
                                (YES_NO, cfg.yes_no_sets))
             for key in keys if names_set(key, dataset)]
    return max(found, key=lambda length_rule: length_rule[0])[1] if found else OPEN_QA


def score(rule: str, prediction: str, golds: Sequence[str],
          options: Mapping[str, str] | None = None) -> bool:
    """Whether ``prediction`` is correct under ``rule`` (one of :data:`RULES`); ``options``
    ({letter: text}) is used by the ``choice`` rule only. No gold: False.

    >>> score("open_qa", "It is Paris.", ["paris"]), score("choice", "(A)", ["B"], {"A": "x"})
    (True, False)
    """
    if rule == CHOICE:
        return choice_correct(prediction, golds, options or {})
    if rule == NUMERIC:
        return numeric_correct(prediction, golds)
    if rule == YES_NO:
        return yes_no_correct(prediction, golds)
    if rule == OPEN_QA:
        return open_qa_correct(prediction, golds)
    raise ValueError(f"unknown scoring rule {rule!r}; known: {', '.join(RULES)}")
