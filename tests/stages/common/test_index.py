"""Shared stages' configs refuse bad values at plan time (index itself runs in test_retrieve.py)."""

import pytest

from orchestrator.api import ConfigError
from orchestrator.stage_config import check_step_config
from stages.common.aggregate import AggregateConfig
from stages.common.index import IndexConfig
from stages.common.load import LoadConfig
from stages.common.prepare_model import PrepareModelConfig
from stages.common.retrieve import RetrieveConfig
from stages.dynamicrag.label import LabelConfig


@pytest.mark.parametrize("cls, values, message", [
    (IndexConfig, {"dtype": "float8"}, "steps.x.dtype: expected one of ['float16', 'float32']"),
    (IndexConfig, {"pooling": "max"}, "steps.x.pooling: expected one of ['mean', 'cls']"),
    (IndexConfig, {"max_length": 0}, "steps.x.max_length: expected a value >= 1, got 0"),
    (AggregateConfig, {"k": 0}, "steps.x.k: expected a value >= 1, got 0"),
    (PrepareModelConfig, {"package": "llama"}, "steps.x.package: expected one of ['minilm', 'smollm2']"),
    (RetrieveConfig, {"search": "fiass"}, "steps.x.search: expected one of ['exact', 'faiss']"),
    (RetrieveConfig, {"k": 0}, "steps.x.k: expected a value >= 1, got 0"),
    (LoadConfig, {"corpus_format": "csv"}, "steps.x.corpus_format: expected one of"),
    (LabelConfig, {"bucket_cap": 0}, "steps.x.bucket_cap: expected a value >= 1, got 0"),
])
def test_bad_values_are_plan_time_errors(cls, values, message):
    with pytest.raises(ConfigError) as err:
        check_step_config(cls, values, "steps.x")
    assert str(err.value.message).startswith(message)
