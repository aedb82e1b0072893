"""``import_embeddings``: the order a folder's vector files are read in, and the ids file's BOM
and empty lines (data audit 43, finding 7)."""

import logging

import numpy as np
import pytest

from orchestrator.api import DataError
from stages.common.import_embeddings import ImportEmbeddingsConfig, import_embeddings
from stages.lib.models.search import ShardedIndex
from stages.schemas import Embeddings, Passages
from tests.stages.common.test_import_embeddings import _file
from tests.stages.conftest import PASSAGES

IDS = [p["id"] for p in PASSAGES][:12]


@pytest.fixture
def run(model_env, tmp_path):
    art, ctx = model_env
    corpus = art(Passages, PASSAGES)

    def run(vectors, ids_text: str):
        (tmp_path / "ids.txt").write_bytes(ids_text.encode("utf-8"))
        out = import_embeddings(_file(vectors), _file(tmp_path / "ids.txt"), corpus,
                                ImportEmbeddingsConfig(), ctx("import"))
        return ShardedIndex(art(Embeddings, out).path)
    return run


def _shards(tmp_path, n=12):
    """``emb_0.npy`` ... ``emb_11.npy``, one row each, row ``i`` all ``i``: in plain name order
    ``emb_10`` comes before ``emb_2``."""
    d = tmp_path / "vectors"
    d.mkdir()
    for i in range(n):
        np.save(d / f"emb_{i}.npy", np.full((1, 4), i, dtype=np.float32))
    return d


def test_numbered_shards_pair_with_their_ids(run, tmp_path, caplog):
    """Data audit 43, finding 7: a folder's files were read in plain name order (emb_10 before
    emb_2), so an id list written shard by shard paired p2 with emb_10's vector, and every check
    passed. Now they are read in natural order, and the log names the order with row counts."""
    d = _shards(tmp_path)
    with caplog.at_level(logging.INFO, logger="test.import"):
        index = run(d, "".join(f"{i}\n" for i in IDS))
    ids = index.ids().to_pylist()
    emb = np.concatenate([np.load(s / "emb.npy") for s in index.shards])
    assert [(i, int(row[0])) for i, row in zip(ids, emb)] == [(i, n) for n, i in enumerate(IDS)]
    assert "emb_0.npy (1), emb_1.npy (1), emb_2.npy (1), emb_3.npy (1)" in caplog.text
    assert "emb_9.npy (1), emb_10.npy (1), emb_11.npy (1)" in caplog.text


def test_ids_file_with_a_bom_and_a_trailing_empty_line(run, tmp_path):
    """Data audit 43, finding 7: an ids file saved with a UTF-8 byte-order mark failed with
    "'\\ufeffp0' ... not in the corpus", and one ending in an empty line with "13 ids but the
    vectors have 12 rows"; now the mark is dropped and the empty line is no id."""
    d = _shards(tmp_path)
    assert run(d, "\ufeff" + "\n".join(IDS) + "\n").ids().to_pylist() == IDS
    assert run(d, "\r\n".join(IDS) + "\r\n\r\n").ids().to_pylist() == IDS
    assert run(d, "\ufeff" + "\n".join(IDS) + "\n\n\n").ids().to_pylist() == IDS


def test_an_empty_line_among_the_ids_is_named(run, tmp_path):
    """Data audit 43, finding 7: an empty line before the last id was an id "" (then "13 ids
    but the vectors have 12 rows", or, with one id less, "'' not in the corpus"); now the error
    names the line."""
    d = _shards(tmp_path)
    with pytest.raises(DataError, match=r"ids.txt line 4: an empty line, expected one passage id "
                                        r"per line") as err:
        run(d, "\n".join(IDS[:3]) + "\n\n" + "\n".join(IDS[3:]) + "\n")
    assert "\n" not in str(err.value)
