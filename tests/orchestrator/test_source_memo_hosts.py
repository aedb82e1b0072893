"""``rag gc`` forgot the remembered hashes of source files it could not see, in a cache other
hosts use too (a review of 51e65eb): a checkpoint on another host's node-local disk was then read
whole again by that host's next run. In a cache that another host's runs dir uses, gc forgets
only files whose folder exists here (a file removed from it); alone, every file that is gone."""

from __future__ import annotations

import json

from orchestrator.hashing import SourceMemo
from orchestrator.store import Store
from tests.conftest import rag

ELSEWHERE = "/scratch-on-host-b/llama3_8b/model-00001.safetensors"


def _memo(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    root = Store.for_runs(runs).root
    gone = tmp_path / "gone.txt"
    gone.write_text("g")
    memo = SourceMemo(root / "sources.json")
    memo.hash(gone)
    memo.memo[ELSEWHERE] = [4976698672, 1, 1, "0123abcd"]
    memo.changed = True
    memo.save()
    gone.unlink()
    return runs, root


def test_a_shared_cache_keeps_another_hosts_files(tmp_path):
    runs, root = _memo(tmp_path)
    (root / "runs-dirs").mkdir(parents=True)
    (root / "runs-dirs" / "b.json").write_text(json.dumps({"path": "/home/b/runs",
                                                           "host": "host-b"}))
    assert rag("gc", runs=runs) == 0
    assert list(json.loads((root / "sources.json").read_text())) == [ELSEWHERE]


def test_a_cache_of_this_host_alone_forgets_every_file_gone(tmp_path):
    runs, root = _memo(tmp_path)
    assert rag("gc", runs=runs) == 0
    assert json.loads((root / "sources.json").read_text()) == {}
