"""stages.lib.models.encoders: pooling, normalisation, length batching and order, on a tiny BERT."""

from __future__ import annotations

import numpy as np
import pytest

from stages.lib.models.encoders import Encoder, encode, length_batches
from stages.lib.testing.tiny import tiny_encoder

TEXTS = ["short", "a much longer text about the quick brown fox and the lazy dog " * 3,
         "medium length words here", "x", "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def encoder_dir(tmp_path_factory):
    return tiny_encoder(tmp_path_factory.mktemp("enc") / "bert", texts=TEXTS)


def _reference(model_dir, text, pooling):
    """One text, no padding, pooled by hand."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir)
    with torch.no_grad():
        hidden = model(**tok([text], return_tensors="pt")).last_hidden_state[0]
    return (hidden.mean(0) if pooling == "mean" else hidden[0]).numpy()


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_pooling_matches_unpadded_reference_and_keeps_order(encoder_dir, pooling):
    got = encode(encoder_dir, TEXTS, pooling=pooling, batch_size=2)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), 32)
    for i, text in enumerate(TEXTS):   # padding in a batch must not change a text's vector
        np.testing.assert_allclose(got[i], _reference(encoder_dir, text, pooling), atol=1e-5)


def test_batch_size_does_not_change_output(encoder_dir):
    enc = Encoder(encoder_dir)
    np.testing.assert_allclose(enc.encode(TEXTS, batch_size=1), enc.encode(TEXTS, batch_size=64),
                               atol=1e-5)


def test_normalize_gives_unit_vectors_and_progress_wraps_batches(encoder_dir):
    seen = []

    def progress(it):
        seen.append(len(it))
        return it

    got = encode(encoder_dir, TEXTS, normalize=True, batch_size=2, progress=progress)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert seen == [3]


def test_empty_input_and_bad_pooling(encoder_dir):
    assert encode(encoder_dir, []).shape == (0, 32)
    with pytest.raises(ValueError, match="pooling"):
        encode(encoder_dir, ["a"], pooling="max")


def test_truncation_caps_long_texts(encoder_dir):
    long = "the quick brown fox " * 400            # far beyond 512 tokens
    assert np.isfinite(encode(encoder_dir, [long], max_length=16)).all()


def test_length_batches_longest_first():
    assert length_batches([1, 5, 3, 4], 2) == [[1, 3], [2, 0]]
    assert length_batches([], 4) == []
