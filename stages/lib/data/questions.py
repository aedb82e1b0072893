"""Question readers: ``{id, dataset, question, answers: [str], gold: [str]}`` (plus ``ctxs`` when
the file already carries retrieved passages) from JSONL, a JSON array, Parquet (a Hugging Face
dataset saved with ``to_parquet``) or CSV/TSV (DPR's ``*.qa.csv``, a table with a header) in the
FlashRAG, DPR, Self-RAG, DynamicRAG, ALCE/ASQA, SQuAD, TriviaQA, KILT and BEIR shapes. Bad input
raises ``DataError`` naming the file and the line (row)::

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "q.jsonl"
    >>> _ = p.write_text('{"id": "nq_1", "question": "who?", "golden_answers": ["Ann"]}\\n')
    >>> read_questions(p)
    [{'id': 'nq_1', 'dataset': 'nq', 'question': 'who?', 'answers': ['Ann'], 'gold': []}]
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from itertools import chain, islice
from pathlib import Path
from typing import Any

from orchestrator.api import DataError
from stages.lib.data.corpus import DOC_ID_KEYS, title_text
from stages.lib.data.delimited import list_cell
from stages.lib.data.fields import check_mapped, renamed
from stages.lib.data.files import DELIMITED_SUFFIXES, iter_records, json_array, strip_gz
from stages.lib.data.surrogates import check_encodable

log = logging.getLogger(__name__)

# Field names accepted for each canonical field, first match wins.
QUESTION_KEYS = ("question", "Question", "query", "instruction", "text", "input")   # KILT: input
# ARC: answerKey; RAG-Instruct's evaluation files: golds (its scorer's field) and, for MedQA and
# OpenBookQA, answer_idx (the right option's letter; a letter key is taken first when the record
# has choices or options: _answers);
# AutoRAG's qa.parquet: generation_gt; PopQA's Hugging Face release: possible_answers (a JSON
# list written as a string: _string_list decodes it), last, so that a file with any other key
# reads as before
ANSWER_KEYS = ("answers", "golden_answers", "answer", "output", "answerKey", "golds",
               "generation_gt", "answer_idx", "possible_answers")
CTX_KEYS = ("ctxs", "docs", "retrieval_ctxs", "retrieval_result")
ID_KEYS = ("id", "_id", "qid", "q_id", "question_id", "query_id", "example_id", "sample_id")
DATASET_KEYS = ("dataset", "source", "dataset_name")   # dataset_name: Self-RAG's training data
GOLD_KEYS = ("gold", "positive_ctxs", "positive_passages", "retrieval_gt")
CHOICE_KEYS = ("choices", "options")    # ARC's choices; MedQA / OpenBookQA's options
LETTER_KEYS = ("answerKey", "answer_idx")   # the right option's letter: the gold when there are
                                            # options (ARC: answerKey; MedQA / OBQA: answer_idx)
# A set's own inputs, kept on the row under their names when they are text: RAG-Instruct's
# evaluation gives ConvFinQA its task instruction, its table and text (``context``) and the
# conversation so far (``previous_question``), and PubMedQA its abstract (``context``).
TEXT_KEYS = ("context", "instruction")
TEXT_LIST_KEYS = ("previous_question",)
# Every field a record may hold that the reader takes; any other (and a set input of another
# shape, such as HotpotQA's list ``context``) is dropped, and named in a warning.
READ_KEYS = frozenset(QUESTION_KEYS + ANSWER_KEYS + CTX_KEYS + ID_KEYS + DATASET_KEYS + GOLD_KEYS
                      + CHOICE_KEYS + ("retrieved_question", "qa_pairs", "annotations"))
# The keys of a shipped passage (``ctxs[]``) that :func:`_ctxs` reads; any other (DPR's and
# FiD's ``hasanswer``, a retriever's other scores) is dropped, and named in the warning.
CTX_READ_KEYS = frozenset(DOC_ID_KEYS + ("title", "text", "contents", "paragraph_text", "score",
                                         "socre"))
# File stems that name a split rather than a dataset (FlashRAG's ``{dataset}/{split}.jsonl``).
SPLIT_NAMES = {"train", "dev", "test", "val", "valid", "validation", "eval", "queries", "questions"}

_ID_PREFIX = re.compile(r"^([A-Za-z0-9]+)[_\-:]")
# Id prefixes read as a set's name (DynamicRAG's training file: ``nq_…``, ``hotpotqa_…``; SEEDS
# §1.2), the sets the recipes' per-set rules name (answer styles, metrics, closed and FEVER sets,
# RAG-Instruct's scoring, DPA-RAG's top-k) and their common short names. Any other prefix names no
# set: ARC's ``Mercury_SC_…`` / ``MCAS_…``, TriviaQA's ``tc_`` / ``qb_`` / ``sfq_`` (DynamicRAG's
# ``tc`` too: its style is the default one), WebQSP's ``WebQTest-0``, a UUID's first group.
KNOWN_SETS = frozenset({
    "nq", "tqa", "triviaqa", "hotpotqa", "2wikimultihopqa", "2wiki", "2wikimqa", "musique",
    "bamboogle", "popqa", "fever", "eli5", "asqa", "wow", "trex", "zsre", "squad", "msmarco",
    "webqsp", "webq", "webquestions", "arc", "obqa", "openbookqa", "pubhealth", "medqa",
    "pubmedqa", "convfinqa", "casehold", "strategyqa", "factscore"})


def _set_name(value: Any, key: str) -> bool:
    """Whether a record's ``dataset``, ``dataset_name`` or ``source`` value names its set. Any
    text does in the first two (``mmlu:anatomy``, ``kilt_tasks/nq``); a ``source`` only when it
    is a short name (RAG-Instruct's ``pubhealth``), not a URL or a sentence: TruthfulQA's
    ``source`` is the page each answer came from, and taken as a set name every question was a
    set of its own.

    >>> [_set_name(v, "source") for v in ("pubhealth", "https://en.wikipedia.org/wiki/A", " ")]
    [True, False, False]
    >>> _set_name("mmlu:anatomy", "dataset"), _set_name("", "dataset")
    (True, False)
    """
    if not isinstance(value, str) or not value.strip():
        return False
    return key != "source" or re.fullmatch(r"[^\s/:]{1,64}", value) is not None


def _dataset_from(qid: str, path: Path | None) -> str:
    """The dataset of a record without one: its id's prefix when that names a known set
    (:data:`KNOWN_SETS`), else the file's name (its folder's when the file is named after a
    split), so that one file is one set whatever its ids look like.

    >>> _dataset_from("nq_12", None), _dataset_from("train_3", Path("data/hotpotqa/train.jsonl"))
    ('nq', 'hotpotqa')
    >>> _dataset_from("Mercury_SC_41570", Path("arc_challenge.jsonl"))   # ARC's own ids
    'arc_challenge'
    >>> [_dataset_from(i, Path("triviaqa-dev.jsonl")) for i in ("tc_0", "sfq_2")]
    ['triviaqa-dev', 'triviaqa-dev']
    >>> _dataset_from("d0f2a6b8-1c3e-4f5a-9b7c-2e4d6f8a0b1c", Path("qa.parquet"))   # a uuid4
    'qa'
    """
    m = _ID_PREFIX.match(qid)
    if m and m.group(1).lower() in KNOWN_SETS:
        return m.group(1).lower()
    if path is None:
        return ""
    stem = path.name.split(".")[0]
    if stem.lower() in SPLIT_NAMES and path.parent.name:
        return path.parent.name
    return stem


# Answer objects the reader takes (any other object is refused, naming these):
# SQuAD's ``{text, answer_start}`` (HF ``squad``: lists; the original JSON: one object per
# answer), whose golds are the ``text`` values; TriviaQA's ``{value, aliases, ...}``, whose golds
# are ``value`` then ``aliases`` (its normalized_*, matched_wiki_entity_name and type are not).
SQUAD_ANSWER_KEYS = frozenset({"text", "answer_start"})
TRIVIAQA_ANSWER_KEYS = frozenset({"value", "aliases", "normalized_value", "normalized_aliases",
                                  "matched_wiki_entity_name",
                                  "normalized_matched_wiki_entity_name", "type"})
# KILT's ``output`` entries: ``{answer, provenance, meta}``, an entry with provenance only adds
# no answer (provenance names Wikipedia pages, not passages: it is not read as gold ids)
KILT_ANSWER_KEYS = frozenset({"answer", "provenance", "meta"})
ANSWER_OBJECTS = ("SQuAD's {text: [...], answer_start: [...]}, TriviaQA's "
                  "{value, aliases, normalized_aliases, ...} and KILT's {answer, provenance}")


def _string_list(value: Any, field: str, where: str, *, answers: bool = False) -> list[str]:
    """A str, a number or a (nested) list of them → a flat list of distinct non-empty strings.

    Nulls inside a list are skipped; other types (bools, and dicts unless ``answers`` says the
    field holds answers: then :func:`_answer_object` reads SQuAD's and TriviaQA's) are errors.
    An answers value that is a string holding a list of strings (PopQA's Hugging Face
    ``possible_answers``: JSON; pandas' ``['a', 'b']`` too, :func:`list_cell`) is that list.

    >>> _string_list({"text": ["Denver", "Denver Broncos", "Denver"], "answer_start": [3, 3, 9]},
    ...              "answers", "f line 1", answers=True)
    ['Denver', 'Denver Broncos']
    >>> _string_list('["politician", "political leader"]', "possible_answers", "f", answers=True)
    ['politician', 'political leader']
    >>> _string_list("[1, 2]", "answers", "f", answers=True)   # not a list of strings: the text
    ['[1, 2]']
    """
    out: list[str] = []
    if answers and isinstance(value, str):
        decoded = list_cell(value)
        if decoded is not None and all(isinstance(v, str) for v in decoded):
            value = decoded

    def add(v: Any, depth: int) -> None:
        if v is None or (isinstance(v, float) and v != v):  # a null, or NaN (a Parquet list's
            return                                           # missing value): nothing to add
        if isinstance(v, str):
            if v.strip():
                out.append(v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append(str(v))
        elif isinstance(v, list) and depth < 2:
            for item in v:
                add(item, depth + 1)
        elif isinstance(v, dict) and answers:
            out.extend(_answer_object(v, field, where))
        elif isinstance(v, dict):
            raise DataError(f"{where}: '{field}' must be a string or a list of strings, got an "
                            f"object with keys {', '.join(map(str, v))}; fix the record")
        else:
            raise DataError(f"{where}: '{field}' must be a string or a list of strings, got "
                            f"{type(v).__name__}; fix the record")

    add(value, 0)
    return list(dict.fromkeys(out))


def _answer_object(obj: dict, field: str, where: str) -> list[str]:
    """The gold answers of an answer object: SQuAD's ``text`` values, TriviaQA's ``value``
    then its ``aliases``, or KILT's ``answer``; an object of any other shape is refused, naming
    the shapes read.

    >>> _answer_object({"value": "Paris", "aliases": ["Paris", "City of Light"],
    ...                 "normalized_aliases": ["paris"], "type": "WikipediaEntity"}, "answer", "f")
    ['Paris', 'City of Light']
    >>> _answer_object({"answer": "Paris", "provenance": [{"wikipedia_id": "2"}]}, "output", "f")
    ['Paris']
    """
    keys = set(map(str, obj))
    if "text" in keys and keys <= SQUAD_ANSWER_KEYS:
        return _string_list(obj["text"], f"{field}.text", where)
    if "value" in keys and keys <= TRIVIAQA_ANSWER_KEYS:
        return list(dict.fromkeys(_string_list(obj["value"], f"{field}.value", where)
                                  + _string_list(obj.get("aliases"), f"{field}.aliases", where)))
    if keys and keys <= KILT_ANSWER_KEYS:
        return _string_list(obj.get("answer"), f"{field}.answer", where)
    raise DataError(f"{where}: '{field}' is an object with keys {', '.join(map(str, obj))}, "
                    f"not an answer shape the reader knows (it reads strings, lists of strings, "
                    f"{ANSWER_OBJECTS}); write the answer texts as a list of strings")


def _answers(rec: dict, where: str) -> tuple[list[str], str | None]:
    """Golds: ASQA's ``qa_pairs[*].short_answers`` when the record has them (ALCE's ASQA also
    carries the long-form reference in ``answer``, which must not become the gold), else the
    first of :data:`ANSWER_KEYS`. A multiple-choice record (``choices`` or ``options``) with a
    letter key (:data:`LETTER_KEYS`: ARC's ``answerKey``, MedQA / OpenBookQA's ``answer_idx``)
    has the letter as its gold (:func:`_option_letter`), whatever text ``answers`` / ``answer``
    hold beside it, as RAG-Instruct's evaluation (``eval/eval_sglang.py``) and Self-RAG's score
    the option letter; one without a letter key has the letter of the option its text gold
    names, if any (:func:`_text_letters`).

    >>> _answers({"choices": ["cold", "warm"], "answers": ["warm"], "answerKey": "B"}, "f")
    (['B'], 'answerKey')
    >>> _answers({"choices": ["cold", "warm"], "answers": ["Warm"]}, "f")
    (['B'], 'answers')
    >>> _answers({"answers": ["warm"], "answerKey": "B"}, "f")   # no options: the first key
    (['warm'], 'answers')
    """
    pairs = rec.get("qa_pairs")
    ckey = next((k for k in CHOICE_KEYS if rec.get(k) is not None), None)
    if ckey is not None:
        for key in LETTER_KEYS:
            letters = _string_list(rec.get(key), key, where)
            if letters:
                return [_option_letter(x, rec[ckey], key, where, ckey) for x in letters], key
    if pairs is None:
        for key in ANSWER_KEYS:
            if key in rec and rec[key] is not None:
                answers = _string_list(rec[key], key, where, answers=True)
                if ckey is not None:
                    answers = _text_letters(answers, _choices(rec[ckey], where, ckey))
                return answers, key
    if pairs is not None:
        if not isinstance(pairs, list):
            raise DataError(f"{where}: 'qa_pairs' must be a list of {{short_answers}}, got "
                            f"{type(pairs).__name__}; fix the record")
        out: list[str] = []
        for i, pair in enumerate(pairs):
            if not isinstance(pair, dict) or "short_answers" not in pair:
                raise DataError(f"{where}: qa_pairs[{i}] has no 'short_answers' (ASQA format); "
                                "fix the record")
            out += _string_list(pair["short_answers"], f"qa_pairs[{i}].short_answers", where)
        return list(dict.fromkeys(out)), "qa_pairs"
    return [], None


def _ctxs(value: Any, key: str, where: str) -> list[dict]:
    if not isinstance(value, list):
        raise DataError(f"{where}: '{key}' must be a list of passages {{id, title, text, score}}, got "
                        f"{type(value).__name__}; fix the record")
    out = []
    for i, c in enumerate(value):
        here = f"{where} {key}[{i}]"
        if not isinstance(c, dict):
            raise DataError(f"{here}: expected a passage object {{id, title, text, score}}, got "
                            f"{type(c).__name__}; fix the record")
        title, text = title_text(c, here)
        pid = next((c[k] for k in DOC_ID_KEYS if c.get(k) is not None), None)
        score = c.get("score", c.get("socre"))  # RAG-Instruct writes 'socre'
        if score is not None:
            try:
                score = float(score)
            except (TypeError, ValueError):
                raise DataError(f"{here}: 'score' must be a number, got {score!r}; "
                                "fix the record") from None
        out.append({"id": None if pid is None else str(pid), "title": title, "text": text,
                    "score": score})
    return out


def _gold(rec: dict, where: str) -> list[str]:
    if rec.get("gold") is not None:
        return _string_list(rec["gold"], "gold", where)
    if rec.get("retrieval_gt") is not None:   # AutoRAG: a list of lists of doc ids, all relevant
        return _string_list(rec["retrieval_gt"], "retrieval_gt", where)
    # DPR retriever-training JSON, Tevatron's positive_passages
    pos = rec.get("positive_ctxs", rec.get("positive_passages"))
    if isinstance(pos, list):
        ids = [next((c[k] for k in DOC_ID_KEYS if c.get(k) is not None), None)
               for c in pos if isinstance(c, dict)]
        return list(dict.fromkeys(str(i) for i in ids if i is not None))
    return []


def _option_letter(letter: str, choices: Any, key: str, where: str,
                   ckey: str = "choices") -> str:
    """The letter (A, B, ...) under which the prompts show the option ``letter`` names. ARC
    labels its options with ``label``, which on some items numbers them ("1" to "4", as the
    seed's ``arc.py`` remaps): the gold is then the letter at that label's place. Options
    without labels (a list, ``{A: text, ...}``) are named by their letter, in either case; a
    letter past the last option, or a number (counted from 0 or from 1?), is refused.

    >>> choices = {"text": ["wood", "iron"], "label": ["1", "2"]}
    >>> _option_letter("2", choices, "answerKey", "f"), _option_letter("b", ["a", "b"], "k", "f")
    ('B', 'B')
    >>> try:
    ...     _option_letter("1", ["a", "b"], "answer_idx", "f line 3")
    ... except DataError as e:
    ...     print(e.message.split(" (")[0])
    f line 3: 'answer_idx' is '1', a number, not an option's letter
    """
    labels = choices.get("label") if isinstance(choices, dict) else None
    if isinstance(labels, list):
        labels = [str(x) for x in labels]
        if letter not in labels:
            raise DataError(f"{where}: '{key}' is {letter!r}, which is none of the options' "
                            f"labels ({', '.join(labels)}); fix the record")
        return chr(ord("A") + labels.index(letter))
    n = len(_choices(choices, where, ckey))
    valid = [chr(ord("A") + i) for i in range(n)]
    named = f"A to {valid[-1]}" if n > 1 else "A" if n else "none: the options are empty"
    gold = letter.strip().upper()
    if re.fullmatch(r"[+-]?\d+(\.\d*)?", gold):
        raise DataError(f"{where}: '{key}' is {letter!r}, a number, not an option's letter "
                        f"(whether it counts from 0 or from 1 is unclear); write the right "
                        f"option's letter ({named}) in '{key}'")
    if gold not in valid:
        raise DataError(f"{where}: '{key}' is {letter!r}, not the letter of one of the "
                        f"{n} options in '{ckey}' ({named}); write the right option's letter "
                        f"in '{key}', or fix the options")
    return gold


def _text_letters(golds: list[str], texts: list[str]) -> list[str]:
    """The golds of a record with options and no letter key: the letters of the options whose
    text a gold is (after strip; the same case first, else any case); when no gold is an
    option's text, the golds as they are.

    >>> _text_letters([" Iron", "Fe"], ["wood", "iron"]), _text_letters(["steel"], ["wood"])
    (['B'], ['steel'])
    """
    keys = [t.strip() for t in texts]
    folded = [k.casefold() for k in keys]
    letters = []
    for gold in (g.strip() for g in golds):
        if gold in keys:
            letters.append(chr(ord("A") + keys.index(gold)))
        elif gold.casefold() in folded:
            letters.append(chr(ord("A") + folded.index(gold.casefold())))
    return list(dict.fromkeys(letters)) or golds


def _choices(value: Any, where: str, key: str = "choices") -> list[str]:
    """Multiple-choice options in order: a list of strings, ARC's ``{"text": [...],
    "label": [...]}`` (the gold ``answerKey`` names a label: :func:`_option_letter`), or
    MedQA / OpenBookQA's ``{"A": text, "B": text, ...}`` (letters from A, without a gap).

    >>> _choices({"text": ["cold", "warm"], "label": ["A", "B"]}, "f line 1")
    ['cold', 'warm']
    >>> _choices({"B": "warm", "A": "cold"}, "f line 1", "options")
    ['cold', 'warm']
    """
    if isinstance(value, dict) and set(value) != {"text", "label"}:
        letters = sorted(map(str, value))
        if letters != [chr(ord("A") + i) for i in range(len(letters))]:
            raise DataError(f"{where}: '{key}' as an object must map the letters A, B, ... "
                            f"(from A, without a gap) to the options' texts, got the keys "
                            f"{', '.join(letters)}; fix the record")
        value = [value[k] for k in sorted(value, key=str)]
    texts = value.get("text") if isinstance(value, dict) else value
    if not isinstance(texts, list) or not all(isinstance(t, (str, int, float)) for t in texts):
        raise DataError(f"{where}: '{key}' must be a list of strings, ARC's "
                        f"{{text: [...], label: [...]}} or {{A: text, B: text, ...}}, got "
                        f"{str(value)[:60]!r}; fix the record")
    return [str(t) for t in texts]


def _set_inputs(rec: dict, qkey: str) -> dict:
    """The set's own inputs the record carries in the shapes read (:data:`TEXT_KEYS` as
    strings, :data:`TEXT_LIST_KEYS` as lists of strings); ``instruction`` only when it is not
    the question. Another shape is left out (the reader then names the field as dropped).

    >>> _set_inputs({"question": "And 2008?", "instruction": "Use the table.",
    ...              "context": "2008: 12", "previous_question": ["2007? 10"]}, "question")
    {'context': '2008: 12', 'instruction': 'Use the table.', 'previous_question': ['2007? 10']}
    >>> _set_inputs({"question": "q", "context": [["Title", ["a sentence"]]]}, "question")
    {}
    """
    out = {k: rec[k] for k in TEXT_KEYS if k != qkey and isinstance(rec.get(k), str)}
    out.update({k: rec[k] for k in TEXT_LIST_KEYS if isinstance(rec.get(k), list)
                and all(isinstance(v, str) for v in rec[k])})
    return out


def normalize_question(rec: Any, *, where: str, require_answers: bool = True,
                       default_id: str = "", default_dataset: str | None = None,
                       path: Path | None = None) -> dict:
    """One question record in any supported shape → the canonical row.

    Returns ``{id, dataset, question, answers, gold}`` plus ``ctxs`` when the record carries
    retrieved passages (``ctxs``/``docs``/``retrieval_ctxs``/``retrieval_result``) and
    ``retrieved_question`` when it has one (DynamicRAG's retrieval query), ``choices`` (the
    options in letter order) from ``choices`` or ``options``, and the set inputs
    ``context``, ``instruction`` and ``previous_question`` (:func:`_set_inputs`). ``where``
    prefixes error messages (``"file line N"``).

    >>> normalize_question({"Question": "Who?", "qa_pairs": [{"short_answers": ["Al", "Bo"]}],
    ...                     "docs": [{"title": "T", "text": "x"}]}, where="f line 1", default_id="1")
    {'id': '1', 'dataset': '', 'question': 'Who?', 'answers': ['Al', 'Bo'], 'gold': [], 'qa_pairs': [['Al', 'Bo']], 'long_answers': [], 'ctxs': [{'id': None, 'title': 'T', 'text': 'x', 'score': None}]}
    """
    if not isinstance(rec, dict):
        raise DataError(f"{where}: expected a JSON object with a question and answers, got "
                        f"{type(rec).__name__}; write one object per line")
    qkey = next((k for k in QUESTION_KEYS if k in rec), None)
    if qkey is None:
        raise DataError(f"{where}: missing field 'question' (expected one of "
                        f"{', '.join(QUESTION_KEYS)}; the record has {', '.join(map(str, rec))}); "
                        "add it, or name the field that holds the question in the load "
                        "step's question_fields (steps.load.question_fields={question: FIELD})")
    question = rec[qkey]
    if not isinstance(question, str):
        raise DataError(f"{where}: '{qkey}' must be a string, got {type(question).__name__}; "
                        "fix the record")
    if not question.strip():
        raise DataError(f"{where}: '{qkey}' is empty; write the question or remove the record")
    extra = rec.get("input") if qkey == "instruction" else None   # Alpaca's / Tulu's input
    held = question.strip() == (extra or "").strip() or \
        question.rstrip().endswith("\n" + (extra or "").strip())   # its own last line already
    if isinstance(extra, str) and extra.strip() and not held:
        question = f"{question}\n{extra}"   # as load_chat joins them
    answers, akey = _answers(rec, where)
    if require_answers and not answers:
        what = "has no non-empty answer" if akey else "missing answers"
        raise DataError(f"{where}: {what} (expected one of {', '.join(ANSWER_KEYS)} or ASQA "
                        "qa_pairs[*].short_answers); add answers, name the field that holds "
                        "them (steps.load.question_fields={answers: FIELD}), or, for questions "
                        "without gold answers, set steps.load.require_answers=false")
    qid = next((rec[k] for k in ID_KEYS if rec.get(k) is not None), None)
    if qid is None:
        qid = default_id
    elif isinstance(qid, bool) or not isinstance(qid, (str, int)):
        raise DataError(f"{where}: question id must be a string or integer, got "
                        f"{type(qid).__name__}; fix the id")
    qid = str(qid)
    dataset = next((rec[k] for k in DATASET_KEYS if _set_name(rec.get(k), k)), None)
    if dataset is None:
        dataset = default_dataset if default_dataset is not None else _dataset_from(qid, path)
    row = {"id": qid, "dataset": dataset, "question": question, "answers": answers,
           "gold": _gold(rec, where)}
    if isinstance(rec.get("retrieved_question"), str) and rec["retrieved_question"].strip():
        row["retrieved_question"] = rec["retrieved_question"]   # DynamicRAG's retrieval query
    if akey == "qa_pairs":   # ASQA: ALCE's str-em and ROUGE-Lsum need both references
        row.update(_asqa_references(rec, where))
    okey = next((k for k in CHOICE_KEYS if rec.get(k) is not None), None)
    if okey is not None:   # ARC / OBQA / MedQA: the options the task instruction lists
        row["choices"] = _choices(rec[okey], where, okey)
    row.update(_set_inputs(rec, qkey))
    ckey = next((k for k in CTX_KEYS if rec.get(k) is not None), None)
    if ckey is not None:
        row["ctxs"] = _ctxs(rec[ckey], ckey, where)
    # the passages were checked as they were read (title_text)
    check_encodable({k: v for k, v in row.items() if k != "ctxs"}, where)
    return row


def _asqa_references(rec: dict, where: str) -> dict:
    """ASQA's references kept beside the golds: ``qa_pairs`` as one short-answer list per pair,
    and ``long_answers`` from ``annotations[].long_answer`` (else the record's string ``answer``).

    >>> _asqa_references({"qa_pairs": [{"short_answers": ["1990"]}, {"short_answers": ["Oslo"]}],
    ...                   "answer": "In 1990, in Oslo."}, "f line 1")
    {'qa_pairs': [['1990'], ['Oslo']], 'long_answers': ['In 1990, in Oslo.']}
    """
    pairs = [_string_list(p["short_answers"], f"qa_pairs[{i}].short_answers", where)
             for i, p in enumerate(rec["qa_pairs"])]
    longs = [a["long_answer"] for a in rec.get("annotations") or []
             if isinstance(a, dict) and isinstance(a.get("long_answer"), str) and a["long_answer"]]
    if not longs and isinstance(rec.get("answer"), str) and rec["answer"]:
        longs = [rec["answer"]]
    return {"qa_pairs": pairs, "long_answers": longs}


def warn_dropped(where: str, dropped: dict[str, int], records: int) -> None:
    """The warnings that name the fields a reader dropped (a field holding the ids, answers or
    gold passage ids under a name the reader does not take would be lost without a word): one
    for the records' fields, one for their shipped passages' keys (``ctxs[].hasanswer``)."""
    fields = {k: n for k, n in dropped.items() if "[]." not in k}
    passage = {k: n for k, n in dropped.items() if "[]." in k}
    if fields:
        log.warning("%s: field(s) not read, dropped: %s; if one holds the ids, answers or gold "
                    "passage ids, rename it, or map it with the load step's question_fields "
                    "(ids: %s; answers: %s; gold passage ids: %s)", where,
                    _counted(fields, records), "|".join(ID_KEYS), "|".join(ANSWER_KEYS),
                    "|".join(GOLD_KEYS))
    if passage:
        log.warning("%s: shipped passages' field(s) not read, dropped: %s; a passage keeps its "
                    "id, title, text and score only; if one holds the passage's id, text or "
                    "score, rename it (id: %s; text: text|contents|paragraph_text; score: "
                    "score)", where, _counted(passage, records), "|".join(DOC_ID_KEYS))


def _counted(dropped: dict[str, int], records: int) -> str:
    """The dropped fields and how many records had each, in one line.

    >>> _counted({"b": 1, "a": 2}, 3)
    'a (in 2 of 3 records), b (in 1 of 3 records)'
    """
    return ", ".join(f"{key} (in {n} of {records} records)" for key, n in sorted(dropped.items()))


def _dropped_passage_keys(rec: dict) -> list[str]:
    """The keys of a record's shipped passages that are not read, as ``ctxs[].KEY`` (the
    record was read: its passages are a list of objects).

    >>> _dropped_passage_keys({"docs": [{"text": "t", "hasanswer": True}, {"text": "u"}]})
    ['docs[].hasanswer']
    """
    ckey = next((k for k in CTX_KEYS if rec.get(k) is not None), None)
    if ckey is None:
        return []
    keys = set().union(*rec[ckey])   # every passage is a dict (_ctxs refused the record
    # otherwise): 2.4 µs for 40 passages, 6.4 as a generator of keys() (review 44)
    return sorted(f"{ckey}[].{key}" for key in keys - CTX_READ_KEYS)


def _repeated_id(path: Path, at: str, qid: str, first: tuple[str, bool], own: bool) -> DataError:
    """The error for question id ``qid`` at ``at`` that the record at ``first[0]`` has too;
    ``own`` (``first[1]``): whether the record has an id field, or its id was its number.

    >>> print(_repeated_id(Path("q.jsonl"), "line 2", "2", ("line 1", True), False).message)
    ... # doctest: +ELLIPSIS
    q.jsonl line 2: question id '2' repeats (first on line 1); line 2 has no id field, so ...
    """
    numbered = [a for a, has_id in (first, (at, own)) if not has_id]
    if not numbered:
        return DataError(f"{path} {at}: question id '{qid}' repeats (first on {first[0]}); "
                         "expected unique ids; de-duplicate the file")
    where = numbered[0]
    number = ("set name and element number" if where.startswith("set ") else
              "element number" if "element" in where else
              "row number" if where.startswith("row") else "line number")
    return DataError(f"{path} {at}: question id '{qid}' repeats (first on {first[0]}); "
                     f"{where} has no id field, so its id was taken from its {number}; give "
                     f"every record an id (one of {', '.join(ID_KEYS)}), unique in the file")


def read_questions(path: str | Path, *, require_answers: bool = True,
                   max_questions: int | None = None,
                   default_dataset: str | None = None,
                   fields: dict[str, str] | None = None,
                   dropped_counts: dict[str, int] | None = None) -> list[dict]:
    """Read a question set (JSONL, a JSON array, Parquet, CSV/TSV: DPR's ``*.qa.csv`` or a table
    with a header, :mod:`stages.lib.data.delimited`) into canonical rows.

    Accepted fields (first match wins): question ←
    ``question|Question|query|instruction|text|input`` (an ``instruction`` with a non-empty
    ``input``, as Alpaca's, is the two on two lines, unless it is the instruction's last line);
    answers ← ASQA
    ``qa_pairs[*].short_answers`` when present, else
    ``answers|golden_answers|answer|output|answerKey|golds|generation_gt|answer_idx|``
    ``possible_answers`` (string, number or list, or a string holding a list of strings, as
    PopQA's Hugging Face ``possible_answers``; an answer object is read too: SQuAD's
    ``{text, answer_start}`` gives its ``text`` values, TriviaQA's ``{value, aliases, ...}``
    its ``value`` then ``aliases``, KILT's ``{answer, provenance}`` its ``answer``; any other
    object is refused), and for ASQA records ``qa_pairs`` (one short-answer list per pair) and
    ``long_answers`` kept for ALCE's metrics; a record with ``choices``/``options`` and
    ``answerKey``/``answer_idx`` (ARC, MedQA, OpenBookQA) has that letter as its gold, before
    any answer text (a letter past the options, or a number, is refused), one without such a
    letter the letter of the option its answer text is, if any; ``retrieved_question``
    kept; ``ctxs|docs|retrieval_ctxs|retrieval_result`` → ``ctxs``; ``choices|options`` →
    ``choices``; ``context``, ``instruction`` (when not the question) and
    ``previous_question`` kept in the shapes :func:`_set_inputs` reads; gold passage ids ←
    ``gold`` (list or str), AutoRAG's ``retrieval_gt`` (lists of ids) or DPR
    ``positive_ctxs[*].passage_id`` (Tevatron's ``positive_passages[*].docid``); id ←
    ``id|_id|qid|q_id|question_id|query_id|example_id`` else the line (row) number, for a JSON
    array the element's index (1, 2, ...); dataset ← ``dataset|source``, else the id prefix when
    it names a known set (``nq_12`` → ``nq``, :data:`KNOWN_SETS`; not ARC's
    ``Mercury_SC_41570``), else the file stem (or its folder when the stem is a split name).
    Question ids must be unique. Any other field is dropped, and named in a warning, as is a
    shipped passage's key other than its id, title, text and score (``ctxs[].hasanswer``) (a field
    under a name the reader does not take, such as ``gold_ids``, would be lost without a word),
    unless ``fields`` maps it to one the reader takes (``{"gold": "gold_ids"}``, see
    :mod:`stages.lib.data.fields`). With ``dropped_counts``, the dropped fields are counted
    into it, for the caller to name in one warning (:func:`warn_dropped`), instead.
    """
    return list(iter_questions(path, require_answers=require_answers,
                               max_questions=max_questions, default_dataset=default_dataset,
                               fields=fields, dropped_counts=dropped_counts))


def iter_questions(path: str | Path, *, require_answers: bool = True,
                   max_questions: int | None = None,
                   default_dataset: str | None = None,
                   fields: dict[str, str] | None = None,
                   dropped_counts: dict[str, int] | None = None) -> Iterator[dict]:
    """:func:`read_questions` a row at a time, so that a caller can convert a large file (the
    DynamicRAG training file's 150,000 questions with 40 passages each) without holding it
    whole as Python objects; the warnings and the count are logged once the file is read."""
    path = Path(path)
    count = with_ctxs = 0
    seen: dict[str, tuple[str, bool]] = {}
    dropped: dict[str, int] = {}
    for at, rec, default_id, dataset in islice(_located(path, default_dataset), max_questions):
        where = f"{path} {at}"     # every record is a row, or an error
        if fields:
            check_mapped(rec, fields, ("question", "answers") if require_answers else
                         ("question",), where, "question_fields")
            rec = renamed(rec, fields)
        if not count and strip_gz(path) in DELIMITED_SUFFIXES and not rec.keys() & READ_KEYS:
            raise DataError(f"{path} line 1: read as the header ({', '.join(rec)}), which names "
                            "no field the reader takes; add a header row such as "
                            "question,answers (or map the columns with the load step's "
                            "question_fields)")
        row = normalize_question(rec, where=where, require_answers=require_answers,
                                 default_id=default_id, default_dataset=dataset, path=path)
        for key in chain(rec.keys() - READ_KEYS - row.keys(), _dropped_passage_keys(rec)):
            dropped[key] = dropped.get(key, 0) + 1
        own_id = any(rec.get(k) is not None for k in ID_KEYS)
        if row["id"] in seen:
            raise _repeated_id(path, at, row["id"], seen[row["id"]], own_id)
        seen[row["id"]] = (at, own_id)
        count += 1
        with_ctxs += "ctxs" in row
        yield row
    if dropped_counts is None:
        warn_dropped(str(path), dropped, count)
    else:   # a folder of sets warns once for all its files
        for key, n in dropped.items():
            dropped_counts[key] = dropped_counts.get(key, 0) + n
    log.info("read %d questions from %s%s", count, path,
             f" ({with_ctxs} with retrieved passages)" if with_ctxs else "")


def _located(path: Path, default_dataset: str | None) -> Iterator[tuple[str, Any, str, str | None]]:
    """``(where in the file, record, its default id, its default dataset)`` for each record.

    A record without an id is numbered by its line (row), an array's element by its index (a
    one-line array has every element on line 1). A JSON file holding one object of sets,
    ``{"popqa_longtail_w_gs": [...], "health_claims_processed": [...]}`` (RAG-Instruct's
    evaluation file), gives each set's records that set's name as their dataset (over a
    record's own ``source``, as the seed's loader does) and ids ``NAME_1``, ``NAME_2``... when
    they have none.
    """
    unit, records = iter_records(path, "questions", sets=True)
    array = json_array(path)
    first = next(records, None)
    if first is None:
        return
    line_no, rec = first
    if not array and _sets_of(rec) is not None and next(records, None) is None:
        for name, items in rec.items():
            for i, item in enumerate(items, 1):
                named = ({**{k: v for k, v in item.items() if k not in DATASET_KEYS},
                          "dataset": name} if isinstance(item, dict) else item)
                yield f"set '{name}' element {i}", named, f"{name}_{i}", name
        return
    for index, (line_no, rec) in enumerate(chain([first], records), 1):
        at = f"{unit} {line_no}" + (f", element {index}" if array else "")
        yield at, rec, str(index if array else line_no), default_dataset


def _sets_of(rec: Any) -> dict | None:
    """``rec`` when it is an object of sets (every value a list, no question field), else None.

    >>> _sets_of({"popqa": [{"question": "q"}], "arc": []}) is not None, _sets_of({"q": "a"})
    (True, None)
    """
    if (isinstance(rec, dict) and rec and not rec.keys() & set(QUESTION_KEYS)
            and all(isinstance(v, list) for v in rec.values())):
        return rec
    return None
