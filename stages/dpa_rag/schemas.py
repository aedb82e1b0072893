"""DPA-RAG's own artifact types. Augmented queries are ordinary questions (two more columns), so
the shared ``retrieve`` stage reads them as they are and passes the extra columns through."""

from __future__ import annotations

import pyarrow as pa

from orchestrator.api import Table
from stages.lib.prompts import PromptFile
from stages.schemas import CTX, QUESTION_FIELDS

_SOURCE = [("source_id", pa.string()), ("kind", pa.string())]


class Augmented(Table):
    """Training queries and their augmentations: ``kind`` is ``original`` or the augmentation
    (``rephrase``, ``complexity``, ``decompose``, ``constraint``, ``sparql``); ``source_id`` the
    original query's id; ``answers``/``gold`` are the original's."""

    schema = pa.schema(QUESTION_FIELDS + _SOURCE)


class Knowledge(Table):
    """One row per (query, retrieved document): the reader's answer without any document
    (``before``) and with this document alone (``after``), each scored against the golds, and
    the outcome ``category``: ``aligned`` (wrong -> right), ``unaligned`` (right -> wrong),
    ``both_correct`` or ``both_incorrect``. ``rank`` is the document's 1-based retrieval rank."""

    schema = pa.schema(QUESTION_FIELDS + _SOURCE + [
        ("doc", CTX), ("rank", pa.int32()),
        ("before", pa.string()), ("before_em", pa.float32()), ("before_f1", pa.float32()),
        ("after", pa.string()), ("after_em", pa.float32()), ("after_f1", pa.float32()),
        ("category", pa.string())])


class RerankerData(Table):
    """Reranker training rows, one per query (the released ``train_bge_joined.py`` format with
    documents as passages, rendered by the training step): ``split`` is ``train`` or ``valid``;
    ``cls_doc``/``cls_label`` the point-wise pair (1 = positive, 0 = negative); ``rank_list``
    documents in preference order, best first (pair-wise); ``positive``/``negative`` the
    contrastive groups. Valid rows carry only the point-wise pair."""

    schema = pa.schema([("id", pa.string()), ("query", pa.string()), ("split", pa.string()),
                        ("cls_doc", CTX), ("cls_label", pa.int32()),
                        ("rank_list", pa.list_(CTX)), ("positive", pa.list_(CTX)),
                        ("negative", pa.list_(CTX))])


# ---------------------------------------------------------------- prompt files
# Each type names the placeholders its stage fills in the file's ``user`` template; ``rag plan``
# refuses any other, and a file whose ``user`` lacks one the type ``needs`` (those without which
# the stage's result is meaningless; stages/lib/prompts.py: PromptFile).


class PrealignPrompt(PromptFile):
    """Pre-alignment: the question, the passages shown, and the 1-based position of the one
    passage the model is asked about."""

    fills = ("question", "passages", "position")
    needs = {"question": "the reader never sees the question the document should help answer",
             "passages": "the reader never sees the documents",
             "position": "the reader is not told which document its Yes/No target is about"}
    formats_passages = True


class QueryAugmentPrompt(PromptFile):
    """A query augmentation (rephrase, complexity, decompose, constraint, SPARQL): the question."""

    fills = ("question",)
    needs = {"question": "the LLM never sees the query it rewrites"}
    without = {"question": "to leave this augmentation out, remove its kind from the augment "
                           "step's kinds"}
