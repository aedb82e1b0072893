"""Self-RAG's own artifact types."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from orchestrator.api import File, Table
from stages.lib.prompts import PromptFile
from stages.schemas import QUESTION_FIELDS, STR_LIST


class SplitItems(Table):
    """Instructions with the critic's initial retrieval decision and utility, and the output
    split into sentences (``skipped``: too short to retrieve for)."""

    schema = pa.schema(QUESTION_FIELDS + [("decision", pa.string()), ("utility", pa.string()),
                                          ("sentences", STR_LIST),
                                          ("skipped", pa.list_(pa.bool_()))])


class TaskInstructions(File):
    """The task instructions file (``conf/prompts/selfrag/task_instructions.yaml``: a task
    family's name to its instruction; :func:`stages.selfrag.instructions.read_task_instructions`).
    ``rag plan`` reads and checks it before any step runs."""

    @classmethod
    def check_source(cls, path: Path) -> None:
        from stages.selfrag.instructions import read_task_instructions

        read_task_instructions(path)

    def load(self) -> dict[str, str]:
        from stages.selfrag.instructions import read_task_instructions

        return read_task_instructions(self.path)


# ---------------------------------------------------------------- prompt files
# Each type names the placeholders its stage fills in the file's ``user`` template; ``rag plan``
# refuses any other, and a file whose ``user`` lacks one the type ``needs`` (those without which
# the stage's result is meaningless; stages/lib/prompts.py: PromptFile).


class RetrievalPrompt(PromptFile):
    """The critic's Retrieve question: is retrieval needed for this instruction?"""

    fills = ("instruction",)
    needs = {"instruction": "the critic never sees the instruction it judges"}


class UtilityPrompt(PromptFile):
    """The critic's IsUse question: how useful is this output for the instruction?"""

    fills = ("instruction", "output")
    needs = {"instruction": "the critic never sees the instruction the output responds to",
             "output": "the critic never sees the output it rates"}


class IsRelPrompt(PromptFile):
    """The critic's IsRel question: is this evidence relevant to the instruction?"""

    fills = ("instruction", "evidence")
    needs = {"instruction": "the critic never sees the instruction the evidence should be "
                            "relevant to",
             "evidence": "the critic never sees the evidence it judges"}


class SupportPrompt(PromptFile):
    """The critic's IsSup question: does the evidence support the output (one sentence of a
    response, after its preceding sentences)?"""

    fills = ("instruction", "preceding", "evidence", "output")
    needs = {"evidence": "the critic never sees the evidence that should support the output",
             "output": "the critic never sees the output it checks"}


class MultiRetrievalPrompt(PromptFile):
    """The critic's Retrieve question for a later sentence, given the preceding ones and the
    evidence first retrieved for the instruction and its whole output."""

    fills = ("instruction", "preceding", "evidence", "sentence")
    needs = {"evidence": "the critic never sees the evidence it decides to keep using or not",
             "sentence": "the critic never sees the sentence it decides retrieval for"}
