"""Reinforced-IR's own artifact types. Pseudo queries are ordinary ``Questions`` (``gold`` holds
the source passage id), so the shared retrieval and evaluation stages read them as they are."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from orchestrator.api import File, Table
from stages.lib.prompts import PromptFile
from stages.schemas import QUESTION_FIELDS, STR_LIST

FLOAT_LIST = pa.list_(pa.float32())


class Augmented(Table):
    """Questions with the generator's augmentations (``dpo_num`` samples, or one greedy)."""

    schema = pa.schema(QUESTION_FIELDS + [("augmentations", STR_LIST)])


class RetrieverData(Table):
    """Retriever training groups: a query, its augmentation, positive and mined negatives
    (``neg_answer``: mined with the augmentation's search), teacher scores once distilled."""

    schema = pa.schema([("id", pa.string()), ("query", pa.string()), ("augmentation", pa.string()),
                        ("pos", STR_LIST), ("neg", STR_LIST), ("neg_answer", STR_LIST),
                        ("pos_scores", FLOAT_LIST), ("neg_scores", FLOAT_LIST)])


# ---------------------------------------------------------------- prompt files
# Each type names the placeholders its stage fills in the file's ``user`` template; ``rag plan``
# refuses any other, and a file whose ``user`` lacks one the type ``needs`` (those without which
# the stage's result is meaningless; stages/lib/prompts.py: PromptFile).


class QueryPrompt(PromptFile):
    """Query synthesis from a passage: the task, the passage, the query and passage types, a
    sampled length, style and relation (``synthesis.constraints``: what the passage does to
    the query, "answers", "supports" or "refutes"), and the few-shot examples block
    (``{examples}``: only with synthesize's ``examples`` input, which then requires it)."""

    fills = ("task", "passage", "query_type", "passage_type", "relation", "length", "style",
             "examples")
    needs = {"passage": "the LLM never sees the passage its query must be answered by"}


class QualityPrompt(PromptFile):
    """Quality control of a synthetic query: the task, the query, its passage, and what the
    passage must do to it (``synthesis.quality_relation``: "answers", "supports or refutes")."""

    fills = ("task", "query", "passage", "relation")
    needs = {"query": "the LLM never sees the query it checks",
             "passage": "the LLM never sees the passage it checks the query against"}
    without = {name: "to keep every synthetic query unchecked, set synthesize's "
                     "quality_control: false" for name in ("query", "passage")}


class AugmentationPrompt(PromptFile):
    """The generator's augmentation of a query (a hypothetical answer): the task, the answer
    type and the query."""

    fills = ("task", "answer_type", "query")
    needs = {"query": "the generator never sees the query it augments"}


class DistillPrompt(PromptFile):
    """Listwise teacher ranking: the number of passages, the query and the numbered passages."""

    fills = ("num", "query", "passages")
    needs = {"query": "the teacher never sees the query it ranks the passages for",
             "passages": "the teacher never sees the passages it ranks"}


class QueryExamples(File):
    """Few-shot examples for query synthesis (``conf/prompts/reinforced_ir/query_examples.yaml``:
    passages with the query written for each; ``synthesis.load_examples``). ``rag plan`` reads
    and checks the file before any step runs."""

    @classmethod
    def check_source(cls, path: Path) -> None:
        from stages.reinforced_ir.synthesis import load_examples

        load_examples(path)

    def load(self):
        from stages.reinforced_ir.synthesis import load_examples

        return load_examples(self.path)
