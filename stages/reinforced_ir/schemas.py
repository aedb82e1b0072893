"""Reinforced-IR's own artifact types. Pseudo queries are ordinary ``Questions`` (``gold`` holds
the source passage id), so the shared retrieval and evaluation stages read them as they are."""

from __future__ import annotations

import pyarrow as pa

from orchestrator.api import Table
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
