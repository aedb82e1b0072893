"""Self-RAG's own artifact types."""

from __future__ import annotations

import pyarrow as pa

from orchestrator.api import Table
from stages.schemas import QUESTION_FIELDS, STR_LIST


class SplitItems(Table):
    """Instructions with the critic's initial retrieval decision and utility, and the output
    split into sentences (``skipped``: too short to retrieve for)."""

    schema = pa.schema(QUESTION_FIELDS + [("decision", pa.string()), ("utility", pa.string()),
                                          ("sentences", STR_LIST),
                                          ("skipped", pa.list_(pa.bool_()))])
