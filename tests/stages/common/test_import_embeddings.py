"""``import_embeddings``: .npy / safetensors + an id list become the index stage's artifact, which
``retrieve``'s search finds passages in; bad files are one-line errors."""

import json
import logging
import pickle

import numpy as np
import pyarrow as pa
import pytest

from orchestrator.api import DataError, File
from orchestrator.artifacts import Ref
from stages.common.import_embeddings import ImportEmbeddingsConfig, import_embeddings
from stages.common.retrieve import RetrieveConfig, search_and_attach
from stages.lib.models.search import ShardedIndex, read_meta
from stages.schemas import Embeddings, Passages
from tests.stages.conftest import PASSAGES

IDS = [p["id"] for p in PASSAGES]
EMB = np.random.default_rng(0).standard_normal((40, 8)).astype(np.float32)
EMB /= np.linalg.norm(EMB, axis=1, keepdims=True)


def _file(path):
    return File(Ref("file", File.type_name(), "hash", [str(path)]))


@pytest.fixture
def run(model_env, tmp_path):
    art, ctx = model_env
    corpus = art(Passages, PASSAGES)

    def run(vectors, ids=IDS, cfg=None):
        (tmp_path / "ids.txt").write_text("".join(f"{i}\n" for i in ids))
        out = import_embeddings(_file(vectors), _file(tmp_path / "ids.txt"), corpus,
                                cfg or ImportEmbeddingsConfig(normalize=True), ctx("import"))
        return art(Embeddings, out), corpus
    return run


def test_npy_directory_becomes_a_sharded_index_that_retrieve_searches(run, tmp_path):
    d = tmp_path / "vectors"
    d.mkdir()
    order = np.random.default_rng(1).permutation(40)          # not in corpus order
    np.save(d / "passages_00.npy", EMB[order[:25]].astype(np.float16))
    np.save(d / "passages_01.npy", EMB[order[25:]].astype(np.float16))
    (d / "README").write_text("ignored")
    index, corpus = run(d, ids=[IDS[i] for i in order])
    idx = ShardedIndex(index.path)
    assert [s.name for s in idx.shards] == ["shard-00000", "shard-00001"]
    assert read_meta(index.path) == {"dim": 8, "dtype": "float16", "imported": True,
                                     "normalize": True, "pooling": "mean"}
    assert np.load(idx.shards[1] / "emb.npy").dtype == np.float16
    got = search_and_attach(pa.table({"id": ["a"]}), EMB[[12]], idx, corpus,
                            RetrieveConfig(k=2), "cpu", logging.getLogger("t")).to_pylist()
    assert got[0]["ctxs"][0]["id"] == "p12"
    assert got[0]["ctxs"][0]["text"] == PASSAGES[12]["text"]


def test_safetensors_and_dtype_conversion(run, tmp_path):
    from safetensors.numpy import save_file

    save_file({"embeddings": EMB}, tmp_path / "emb.safetensors")
    index, _ = run(tmp_path / "emb.safetensors",
                   cfg=ImportEmbeddingsConfig(dtype="float16", chunk_rows=7))
    emb = np.load(index.path / "shard-00000" / "emb.npy")
    np.testing.assert_allclose(emb, EMB.astype(np.float16))
    assert json.loads((index.path / "shard-00000" / "meta.json").read_text())["normalize"] is False
    save_file({"a": EMB, "b": EMB}, tmp_path / "two.safetensors")
    with pytest.raises(DataError, match=r"2 tensors \['a', 'b'\]; set tensor: NAME"):
        run(tmp_path / "two.safetensors")
    run(tmp_path / "two.safetensors", cfg=ImportEmbeddingsConfig(tensor="b"))


@pytest.mark.parametrize("make, ids, message", [
    (lambda p: np.save(p / "v.npy", EMB), IDS[:39],
     r"ids.txt: 39 ids but the vectors have 40 rows \(per file: \[40\]\)"),
    (lambda p: np.save(p / "v.npy", EMB), ["zzz"] + IDS[1:],
     r"ids.txt: 1 of 40 ids are not in the corpus \(first: 'zzz' at line 1\)"),
    (lambda p: np.save(p / "v.npy", EMB), IDS[:39] + ["p0"], "the id 'p0' appears more than once"),
    (lambda p: np.save(p / "v.npy", EMB.astype(np.float64)), IDS,
     "v.npy: dtype float64, expected float16 or float32"),
    (lambda p: np.save(p / "v.npy", EMB.reshape(40, 2, 4)), IDS,
     r"v.npy: shape \(40, 2, 4\), expected \(rows, dim\)"),
    (lambda p: (np.save(p / "a.npy", EMB[:20]), np.save(p / "b.npy", EMB[20:, :4])), IDS,
     r"b.npy: dimension 4, expected 8 \(a.npy\)"),
    (lambda p: (p / "v.pkl").write_bytes(pickle.dumps((IDS, EMB))), IDS,
     r"v.pkl: pickles are refused: convert with numpy.save"),
    (lambda p: np.save(p / "v.npy", np.array(IDS, dtype=object), allow_pickle=True), IDS,
     "pickles are refused"),
    (lambda p: (p / "v.txt").write_text("1 2"), IDS, "no .npy or .safetensors file"),
])
def test_bad_inputs_are_one_line_errors(run, tmp_path, make, ids, message):
    d = tmp_path / "in"
    d.mkdir()
    make(d)
    with pytest.raises(DataError, match=message) as err:
        run(d, ids=ids)
    assert "\n" not in str(err.value)


def test_declared_dim_is_checked(run, tmp_path):
    np.save(tmp_path / "v.npy", EMB)
    with pytest.raises(DataError, match=r"dimension 8, expected 768 \(dim in the step's config\)"):
        run(tmp_path / "v.npy", cfg=ImportEmbeddingsConfig(dim=768))
