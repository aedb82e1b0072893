"""Stage ``rag_instruct.exemplars``: exemplar instructions, each with a RAG paradigm and its
source documents D*.

Seed step: SEEDS 4.3 steps 2-3. The paper has GPT-4o pick knowledge-intensive exemplars from
instruction datasets (ShareGPT, Alpaca, WizardLM, ...) and retrieves each one's source documents
by relevance; no code for that step was released, only a 100-row sample
(``data_gen/examplar_data/data.json``: ``{context, source, example_question, task}``).
``select_from_data`` then samples up to 4,200 exemplars per task and keeps only the first
document of the ``normal1_2`` and ``normal1_3`` tasks (single-document support, useless document;
``generate_data.py`` lines 119-121); every other task keeps all the documents it comes with.

Two ways in, exactly one wired:

* ``released``: a file in the sample's format (JSON array, JSON lines or Parquet). ``task`` may
  be the paradigm's name, the seed's prompt key (``normal1_1``, ``normal1_1_v1``) or the file's
  words ("Single-Doc Answer"); ``context`` entries are ``{id, title, text}`` objects (``socre``
  read as ``score``) or plain strings.
* ``retrieved``: questions with their retrieved passages (the shared ``retrieve`` stage over the
  exemplar instructions). Each gets a paradigm from ``paradigms`` in turn (shuffled once by
  ``seed``) and its documents by ``select``:

  - ``relevance`` (the paper): the top-ranked documents, 1 or 2-4 of them;
  - ``has_answer``: documents that fit the paradigm by whether they contain one of the
    exemplar's gold answers (DPR's has_answer): the answer paradigms take the best-ranked
    answering document first, the others only documents without an answer. An exemplar with
    no fitting documents is left out (counted in the log). The ``reference`` teacher of
    ``rag_instruct.synthesize`` needs this, since it answers with the exemplar's own gold.

Fixes relative to the seed: the task names of the released sample are read (the seed looked up
``task[:-3]`` and failed on them); a plain-string context is the first string (the seed took
the second); the sampling is seeded.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Annotated, Literal

from annotated_types import Ge

from orchestrator.api import ConfigError, DataError, File, StageContext, stage
from stages.rag_instruct.paradigms import (
    PARADIGMS,
    assign,
    cap_per_paradigm,
    doc_count,
    paradigm_of,
)
from stages.rag_instruct.schemas import Exemplars
from stages.schemas import Retrieved

# the released tasks cut to their first document, as the seed's select_from_data cuts
# normal1_2 / normal1_3; the others keep every document they come with
FIRST_DOC_ONLY = ("single_doc_support", "useless_doc")


@dataclass
class ExemplarsConfig:
    # the paradigms given in turn to exemplars that come without one (all five, as the paper)
    paradigms: list[str] = field(default_factory=lambda: list(PARADIGMS))
    select: Literal["relevance", "has_answer"] = "relevance"  # paper: relevance
    per_paradigm: Annotated[int, Ge(1)] | None = 4200   # paper: up to 4,200 per task
    seed: Annotated[int, Ge(0)] = 42

    def __post_init__(self):
        unknown = [p for p in self.paradigms if p not in PARADIGMS]
        if unknown or not self.paradigms:
            raise ConfigError(f"paradigms: unknown {unknown}" if unknown else
                              "paradigms: empty", hint=f"known: {list(PARADIGMS)}")

    def plan_notes(self, resources: dict) -> list[str]:
        """``rag plan`` refuses a step that wires both ways in or neither (a ``released`` file
        from a source with no path, e.g. ``+rag_instruct=released_exemplars`` without
        ``data.exemplars``, is not wired); ``resources["inputs"]``: the wired input names.

        >>> ExemplarsConfig().plan_notes({"inputs": ["retrieved"]})
        []
        >>> ExemplarsConfig().plan_notes({"inputs": []})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        orchestrator.errors.ConfigError: wire exactly one of inputs.retrieved ... neither is wired
          hint: to read an exemplar file, give its path: data.exemplars=/path/to/file ...
        """
        if "inputs" not in resources:
            return []
        wired = {"retrieved", "released"} & set(resources["inputs"])
        if len(wired) == 1:
            return []
        if wired:
            raise ConfigError(WIRING + "both are wired", hint="set inputs.retrieved: null to read "
                              "the file, or inputs.released: null to retrieve")
        raise ConfigError(WIRING + "neither is wired", hint="to read an exemplar file, give its "
                          "path: data.exemplars=/path/to/file (with +rag_instruct="
                          "released_exemplars); to retrieve, wire inputs.retrieved")


WIRING = ("wire exactly one of inputs.retrieved (retrieved exemplar questions) and "
          "inputs.released (an exemplar file); ")


@stage("rag_instruct.exemplars", version=3)  # 3: has_answer tokenises as DPR
def exemplars(cfg: ExemplarsConfig, ctx: StageContext, retrieved: Retrieved | None = None,
              released: File | None = None) -> Exemplars:
    """Exemplars with a paradigm and source documents, at most ``per_paradigm`` of each."""
    if (retrieved is None) == (released is None):
        raise ConfigError(f"step '{ctx.step}': wire exactly one of inputs.retrieved (retrieved "
                          "exemplar questions) and inputs.released (an exemplar file)",
                          hint=f"set steps.{ctx.step}.inputs.retrieved: null to read the file")
    given: list[dict] = []
    if released is not None:
        rows = _read_released(released)
    else:
        given = retrieved.rows()
        rows = _from_retrieved(given, cfg)
        if not rows:
            _refuse_none_fit(given, cfg, ctx)
    if not rows:
        raise DataError(f"step '{ctx.step}': no exemplar has documents that fit its paradigm",
                        hint="check the retrieved passages, or use select: relevance")
    out = cap_per_paradigm(rows, cfg.per_paradigm, cfg.seed)
    _report(out, rows, given, cfg, ctx)
    return out


def _report(out: list[dict], rows: list[dict], given: list[dict], cfg: ExemplarsConfig,
            ctx: StageContext) -> None:
    """One log line: how many exemplars of the input were kept (``out``), by paradigm, and why
    the others were not: no retrieved document fits their paradigm (``given`` -> ``rows``; a
    WARNING, with the settings that help, when that is over a quarter of them) or the
    ``per_paradigm`` cap (``rows`` -> ``out``)."""
    total = len(given) if given else len(rows)
    counts = {p: sum(r["paradigm"] == p for r in out) for p in PARADIGMS}
    unfit, capped = (len(given) - len(rows)) if given else 0, len(rows) - len(out)
    why = f"; {capped} over the cap per_paradigm: {cfg.per_paradigm}" if capped else ""
    if unfit:
        no_answer = sum(not _answers(r) for r in given) if cfg.select == "has_answer" else 0
        why += (f"; {unfit} had no retrieved document that fits their paradigm (select: "
                f"{cfg.select}" + (f"; {no_answer} of {total} have no gold answer" if no_answer
                                   else "") + ")")
    warn = unfit * 4 > total
    if warn:
        most = max(len(r.get("ctxs") or []) for r in given)
        why += (f": to keep more, retrieve more candidate documents per exemplar (retrieval."
                f"exemplar_k; each had at most {most} here)" +
                (f", give exemplar questions whose answers the corpus holds, or set steps."
                 f"{ctx.step}.select=relevance (with steps.synthesize.teacher=llm: the reference "
                 "teacher answers with the gold)" if cfg.select == "has_answer" else ""))
    ctx.log.log(logging.WARNING if warn else logging.INFO, "%s: %d of %d kept, by paradigm %s%s",
                ctx.step, len(out), total, counts, why)


def _from_retrieved(rows: list[dict], cfg: ExemplarsConfig) -> list[dict]:
    """The exemplars with their paradigm's documents; one without any is left out (counted by
    :func:`_report`)."""
    rng = random.Random(cfg.seed)
    out = []
    for row, paradigm in zip(rows, assign(len(rows), cfg.paradigms, cfg.seed)):
        candidates = list(row.get("ctxs") or [])
        if cfg.select == "has_answer":
            docs = _fitting(candidates, row.get("answers") or [], paradigm, rng)
        else:
            docs = candidates[:doc_count(paradigm, len(candidates), rng)]
        if not docs:
            continue
        out.append({**{k: row.get(k) for k in ("id", "dataset", "question", "answers", "gold")},
                    "paradigm": paradigm, "docs": docs})
    return out


def _answers(row: dict) -> list[str]:
    """The row's non-blank gold answers.

    >>> _answers({"answers": ["Velmora", " "]}), _answers({"answers": None})
    (['Velmora'], [])
    """
    return [a for a in row.get("answers") or [] if a.strip()]


def _refuse_none_fit(rows: list[dict], cfg: ExemplarsConfig, ctx: StageContext) -> None:
    """The cause when no retrieved exemplar is kept, where it is not the documents: no rows, or
    ``select: has_answer`` over exemplar instructions without gold answers."""
    if not rows:
        raise DataError(f"step '{ctx.step}': no exemplar instructions (its input "
                        f"retrieved has no rows)", hint="check data.train_questions")
    if cfg.select == "has_answer" and not any(_answers(r) for r in rows):
        raise DataError(f"step '{ctx.step}': select: has_answer needs the exemplar "
                        f"instructions' gold answers, and none of the {len(rows)} has one",
                        hint="give each question `answers` in data.train_questions, or set "
                             f"steps.{ctx.step}.select=relevance with steps.synthesize."
                             "teacher=llm (the reference teacher needs answers too)")


def _fitting(candidates: list[dict], answers: list[str], paradigm: str,
             rng: random.Random) -> list[dict]:
    """The documents of a paradigm chosen by has_answer (see the module docstring)."""
    from stages.lib.metrics.answer_in_passages import has_answer

    p = PARADIGMS[paradigm]
    answering = [has_answer(answers, f"{d.get('title') or ''} {d['text']}") for d in candidates]
    if not p.answers:
        free = [d for d, a in zip(candidates, answering) if not a]
        return free[:doc_count(paradigm, len(free), rng)]
    first = next((i for i, a in enumerate(answering) if a), None)
    if first is None:
        return []
    rest = [d for i, d in enumerate(candidates) if i != first]
    n = doc_count(paradigm, len(candidates), rng)
    return [candidates[first]] + rest[:n - 1]


def _read_released(released: File) -> list[dict]:
    from stages.lib.data.files import iter_records

    out = []
    unit, records = iter_records(released.path, "released RAG-Instruct records")
    for line_no, rec in records:
        where = f"{released.path} {unit} {line_no}"
        if not isinstance(rec, dict):
            raise DataError(f"{where}: expected an object with example_question, task, context")
        paradigm = paradigm_of(str(rec.get("task") or ""))
        if paradigm is None:
            raise DataError(f"{where}: unknown task {rec.get('task')!r}",
                            hint=f"use a paradigm name ({', '.join(PARADIGMS)}), a seed prompt "
                                 "key (normal1_1) or the sample's words (Single-Doc Answer)")
        question = rec.get("example_question")
        if not isinstance(question, str) or not question.strip():
            raise DataError(f"{where}: 'example_question' must be a non-empty string")
        docs = [_doc(d, f"{where} context[{j}]") for j, d in enumerate(rec.get("context") or [])]
        if not docs:
            raise DataError(f"{where}: 'context' has no documents")
        if paradigm in FIRST_DOC_ONLY:
            docs = docs[:1]
        out.append({"id": f"ex{len(out)}", "dataset": str(rec.get("source") or "exemplars"),
                    "question": question, "answers": [], "gold": [d["id"] for d in docs],
                    "paradigm": paradigm, "docs": docs})
    return out


def _doc(value: object, where: str) -> dict:
    """A context entry as a passage: an object with text (``socre`` read as score) or a string.

    >>> _doc({"id": 7, "title": "T", "text": "x", "socre": "1.5"}, "f")
    {'id': '7', 'title': 'T', 'text': 'x', 'score': 1.5}
    >>> _doc("just text", "f")
    {'id': None, 'title': '', 'text': 'just text', 'score': None}
    """
    if isinstance(value, str):
        return {"id": None, "title": "", "text": value, "score": None}
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        raise DataError(f"{where}: expected a string or an object with 'text'")
    score = value.get("score", value.get("socre"))
    return {"id": None if value.get("id") is None else str(value["id"]),
            "title": str(value.get("title") or ""), "text": value["text"],
            "score": None if score is None else float(score)}
