"""Self-RAG's own artifact types."""

from __future__ import annotations

import pyarrow as pa

from orchestrator.api import Table
from stages.lib.prompts import PromptFile
from stages.schemas import QUESTION_FIELDS, STR_LIST


class SplitItems(Table):
    """Instructions with the critic's initial retrieval decision and utility, and the output
    split into sentences (``skipped``: too short to retrieve for)."""

    schema = pa.schema(QUESTION_FIELDS + [("decision", pa.string()), ("utility", pa.string()),
                                          ("sentences", STR_LIST),
                                          ("skipped", pa.list_(pa.bool_()))])


# ---------------------------------------------------------------- prompt files
# Each type names the placeholders its stage fills in the file's ``user`` template; ``rag plan``
# refuses any other (stages/lib/prompts.py: PromptFile).


class RetrievalPrompt(PromptFile):
    """The critic's Retrieve question: is retrieval needed for this instruction?"""

    fills = ("instruction",)


class UtilityPrompt(PromptFile):
    """The critic's IsUse question: how useful is this output for the instruction?"""

    fills = ("instruction", "output")


class IsRelPrompt(PromptFile):
    """The critic's IsRel question: is this evidence relevant to the instruction?"""

    fills = ("instruction", "evidence")


class SupportPrompt(PromptFile):
    """The critic's IsSup question: does the evidence support the output?"""

    fills = ("instruction", "evidence", "output")


class MultiRetrievalPrompt(PromptFile):
    """The critic's Retrieve question for a later sentence, given the preceding ones and the
    evidence retrieved for the previous sentence."""

    fills = ("instruction", "preceding", "evidence", "sentence")
