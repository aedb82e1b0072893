"""Which failures have a failed step's inputs hashed again (a review of e265dd0): a TimeoutError
from an endpoint, transformers' "Can't load tokenizer" (an OSError for a missing file) and a
stage's own pyarrow conversion error made every byte of every input be read again (a corpus,
a 16 GB checkpoint), on every failure of such a step. A decoder's errors still do."""

from __future__ import annotations

import pytest


def _not_damage():
    import pyarrow as pa

    class RequestException(IOError):   # requests' base class (requests is not always installed)
        pass

    try:
        pa.array(["0.0?"], pa.float64())
    except pa.ArrowException as e:
        conversion = e
    return [TimeoutError("the judge endpoint did not answer in 60 s"),
            ConnectionError("Connection refused"),
            RequestException("Max retries exceeded with url: /v1/chat/completions"),
            OSError("Can't load tokenizer for '/models/x'. If you were trying to load it from "
                    "'https://huggingface.co/models', make sure you don't have a local "
                    "directory with the same name."),
            OSError("/models/x does not appear to have a file named config.json."),
            conversion]


def _damage():
    import pyarrow as pa

    return [OSError("Couldn't deserialize thrift: TProtocolException: Invalid data"),
            OSError("Corrupt snappy compressed data."), OSError("Unexpected end of stream"),
            pa.ArrowInvalid("Parquet magic bytes not found in footer. Either the file is "
                            "corrupted or this is not a parquet file."),
            pa.ArrowInvalid("Invalid base64 input: character is not valid base64 character")]


@pytest.mark.parametrize("which", range(6))
def test_failures_that_are_not_damage_cost_no_re_hash(which):
    from orchestrator.task import may_be_damage

    exc = _not_damage()[which]
    assert may_be_damage(exc) is False, exc


@pytest.mark.parametrize("which", range(5))
def test_a_decoders_failures_still_do(which):
    from orchestrator.task import may_be_damage

    exc = _damage()[which]
    assert may_be_damage(exc) is True, exc
