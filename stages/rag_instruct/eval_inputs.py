"""Stage ``rag_instruct.eval_inputs``: each evaluation question as RAG-Instruct's evaluation asks
it, between retrieval and the answering steps (SEEDS §4.6; the seed's ``eval/eval_sglang.py``
of FreedomIntelligence/RAG-Instruct, lines 115-202, as of commit 4b5ba25).

Per set, by a key naming the set's name (a whole word of it, ignoring case, as every rule keyed
by set name: :func:`stages.lib.data.set_names.names_set`):

* ``own_context_sets`` (PubMedQA): the question's own abstract (``context``) is its one
  passage, in place of the retrieved ones (the seed's ``item["paragraph"] = f'[1] {context}'``,
  lines 131-135); the prompt file's passage template numbers it ``[1]``.
* ``conversation_sets`` (ConvFinQA): the question becomes the set's ``instruction``, then its
  ``context`` (the report's table and text), the earlier questions of the conversation
  (``previous_question``, one a line) and the question, under the seed's section headers
  (:func:`conversation_question`, lines 119-129). The retrieved passages stay.
* ``choice_sets`` (ARC, OpenBookQA also as ``obqa``, MedQA, CaseHOLD): the options follow the
  question, one line each, ``A: text`` (:func:`with_options`, lines 148-202); the answer style of
  the prompt file asks for a letter. A row of any other set that has ``choices`` and only option
  letters as golds (:func:`stages.rag_instruct.scorer.letter_golds`) gets its options too, as
  ``rag_instruct.evaluate`` scores it as multiple choice (its answer style: the prompt file's for
  its set's name, else its ``choices`` style where the answering step is given the options).

Rows of other sets, and rows that lack the field a rule needs (a PubMedQA row without
``context``, a multiple-choice row without ``choices``), pass unchanged; the log counts the rows
each rule rewrote. ``choices`` and the other columns are kept, so ``rag_instruct.evaluate``
reads the options beside the answer.

Differences from the seed, and why: the task instructions it puts before these questions
(``TASK_INST``, "Given four answer candidates ...") are the prompt file's answer styles here,
in our own wording; a missing option D is not padded with an empty ``D:`` line; options are
lettered by position (the loader keeps them in label order: ARC's labels 1-4 become A-D, as the
seed maps them); CaseHOLD's ``holding_1``..``holding_4`` are not read (the loader reads ``choices``/``options``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.api import StageContext, stage
from stages.lib.data.set_names import names_set
from stages.lib.prompts import with_options
from stages.rag_instruct.scorer import CHOICE_SETS
from stages.schemas import Retrieved


@dataclass
class EvalInputsConfig:
    # a set whose name contains one of these keys as a whole word (ignoring case) gets that rule
    own_context_sets: list[str] = field(default_factory=lambda: ["pubmedqa"])
    conversation_sets: list[str] = field(default_factory=lambda: ["convfinqa"])
    # CaseHOLD too, as the seed (its options A-E); scored by letter: rag_instruct.evaluate
    choice_sets: list[str] = field(default_factory=lambda: list(CHOICE_SETS))


def conversation_question(question: str, instruction: str, context: str,
                          previous: Sequence[str]) -> str:
    """A conversational question with its instruction, its context and the conversation so far,
    in the seed's sections (an empty conversation keeps its header).

    >>> print(conversation_question("And in 2009?", "Answer from the table.", "year | revenue",
    ...                             ["What was it in 2008? 10"]))
    Answer from the table.
    <BLANKLINE>
    ### Context:
    year | revenue
    <BLANKLINE>
    ### Previous Questions and Answers:
    What was it in 2008? 10
    <BLANKLINE>
    ### Question:
    And in 2009?
    >>> conversation_question("Q?", "", "c", []).splitlines()
    ['### Context:', 'c', '', '### Previous Questions and Answers:', '', '### Question:', 'Q?']
    """
    head = f"{instruction}\n\n" if instruction else ""
    earlier = "".join(f"\n{p}" for p in previous)
    return (f"{head}### Context:\n{context}\n\n### Previous Questions and Answers:{earlier}"
            f"\n\n### Question:\n{question}")


def own_context(context: str) -> list[dict]:
    """A question's own text as its one passage.

    >>> own_context("Aspirin lowers fever.")
    [{'id': None, 'title': '', 'text': 'Aspirin lowers fever.', 'score': None}]
    """
    return [{"id": None, "title": "", "text": context, "score": None}]


def _named(keys: Sequence[str], dataset: str) -> bool:
    return any(names_set(key, dataset) for key in keys)


def _multiple_choice(row: dict, cfg: EvalInputsConfig) -> bool:
    """A row with ``choices`` whose set a ``choice_sets`` key names, or whose golds are all
    option letters.

    >>> cfg = EvalInputsConfig()
    >>> [_multiple_choice({"dataset": d, "choices": ["x", "y"], "answers": ["B"]}, cfg)
    ...  for d in ("obqa", "my_quiz")]
    [True, True]
    >>> _multiple_choice({"dataset": "nq", "choices": ["x", "y"], "answers": ["x"]}, cfg)
    False
    """
    from stages.lib.metrics.answer import as_gold_list
    from stages.rag_instruct.scorer import letter_golds, option_map

    if not row.get("choices"):
        return False
    return (_named(cfg.choice_sets, row.get("dataset") or "")
            or letter_golds(as_gold_list(row.get("answers")), option_map(row["choices"])))


def eval_input(row: dict, cfg: EvalInputsConfig) -> tuple[dict, str | None]:
    """``(row, rule)``: the row as the seed's evaluation asks it, and the rule that rewrote it
    (None: unchanged).

    >>> cfg = EvalInputsConfig()
    >>> row, rule = eval_input({"dataset": "pubmedqa_test", "question": "Does it?",
    ...                         "context": "It does.", "ctxs": [{"id": "7"}]}, cfg)
    >>> rule, row["ctxs"][0]["text"], len(row["ctxs"])
    ('own_context', 'It does.', 1)
    >>> eval_input({"dataset": "arc_challenge", "question": "Q?", "choices": ["x", "y"]},
    ...            cfg)[0]["question"]
    'Q?\\nA: x\\nB: y'
    >>> eval_input({"dataset": "medqa", "question": "Q?"}, cfg)[1] is None   # no choices
    True
    >>> eval_input({"dataset": "obqa_test", "question": "Q?", "choices": ["x", "y"]}, cfg)[1]
    'options'
    """
    dataset = row.get("dataset") or ""
    if _named(cfg.own_context_sets, dataset) and isinstance(row.get("context"), str):
        return {**row, "ctxs": own_context(row["context"])}, "own_context"
    if _named(cfg.conversation_sets, dataset) and isinstance(row.get("context"), str):
        question = conversation_question(row["question"], row.get("instruction") or "",
                                         row["context"], row.get("previous_question") or [])
        return {**row, "question": question}, "conversation"
    if _multiple_choice(row, cfg):
        return {**row, "question": with_options(row["question"], row["choices"])}, "options"
    return row, None


# 2: obqa is a choice set, and a row with choices and letter golds gets its options anywhere
@stage("rag_instruct.eval_inputs", version=3)  # 3: letter golds stripped
def eval_inputs(questions: Retrieved, cfg: EvalInputsConfig, ctx: StageContext) -> Retrieved:
    """Each evaluation question with the inputs its set gets in the paper's evaluation: PubMedQA
    its own abstract, ConvFinQA its context and conversation, multiple choice its options."""
    rows, counts = [], {}
    for row in questions.rows():
        row, rule = eval_input(row, cfg)
        rows.append(row)
        if rule:
            counts[rule] = counts.get(rule, 0) + 1
    ctx.log.info("%d questions; rewritten: %s", len(rows),
                 ", ".join(f"{rule} {n}" for rule, n in sorted(counts.items())) or "none")
    return rows
