"""Retrieval at corpus scale: per-shard peak memory and throughput. Prints, asserts nothing.

    python bench/bench_scale.py              # 2,000,000 passages, 10,000 queries
    nice -n 15 python bench/bench_scale.py --passages 200000 --queries 2000   # a small run

Setup (not timed): a synthetic corpus of ``--passages`` passages (about 100 words of random
vocabulary each, like psgs_w100) written as a ``Passages`` table by the orchestrator's writer (so
in its bounded Parquet row groups), random unit-length ``--dim``-d embeddings (``--dtype``,
float32 by default; the ``index`` stage's default is float16) written in the ``index`` stage's
artifact format (``shard-00000/``... with ``emb.npy``, ``ids.txt``, ``meta.json``;
``--index-shards`` of them, 2 by default, as an ``index`` step with ``shards: 2`` writes them)
and ``--queries`` random query vectors. No encoder runs anywhere.

What is measured, each run in a fresh subprocess that reports its own peak RSS (``VmHWM``):

- **bare faiss**: one process loads every index shard into one ``faiss.IndexFlatIP`` and runs
  one ``search`` for all queries. Its seconds are the search call only (load and add reported
  apart); its memory is the whole index. It alternates with the 1-shard retrieve run,
  ``--repeats`` pairs (2 by default): on this 2-core machine two identical runs differ by up to
  15%, so the throughput ratio is the median of the pairs' ratios, each pair under the same load.
- **reading the whole corpus**: the peak RSS of reading the corpus' id, title and text columns,
  which every ``retrieve`` shard did before issue 8 (a reference, not a run).
- **retrieve, 1 shard / 2 shards**: what a ``retrieve`` task does after its question encoder,
  through the stage's own code (``stages.common.retrieve.search_and_attach``): read the task's
  question rows (``Questions(ref, start, stop)`` with the runner's shard bounds), search every
  index shard (exact search: one faiss scan of each float32 shard while a thread releases the
  pages read), fetch title and text for the hit passages only (``Table.take``; their ids cut
  from ``ids.txt`` in chunks), build ``ctxs``, then write the output table with the
  orchestrator's writer, as the runner does (its time is shown, not counted).
  The shards run one after another, each in its own process, so they do not contend.

What "2 shards" means here: ``retrieve`` shards over *questions* (``shard_by="questions"``);
each shard searches the whole index for its share of the questions. Nothing a shard holds grows
with the corpus or the index any more (before issue 8 every shard read the corpus' title and text
columns whole: the "reading the whole corpus" line). What it holds is a floor that does not
shrink with shards (the interpreter and libraries, one search block, the row groups being
decoded, what the allocators keep) plus what is proportional to its questions (hits, their text, the
output table), which 2 shards halve. So the 2-shard / 1-shard ratio tends to 0.5 only as the
per-question part outgrows the floor (more queries, larger k); the figures show both parts.

Targets (issue 8): per-shard peak RSS at 2 shards at most 0.6x the 1-shard figure; 1-shard
retrieve throughput (queries/s over search + fetch + ctxs) at least 0.9x bare faiss search.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
WORDS_PER_PASSAGE, CHARS_PER_PASSAGE, TITLE_CHARS = 100, 580, 24


def rss_mib(field: str = "VmHWM") -> float:
    """Peak resident memory of this process so far, MiB: ``VmHWM`` of /proc/self/status
    (``field="VmRSS"``: what it holds now).

    Not ``ru_maxrss``: after fork + exec it still holds the parent's size at the fork.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------- setup

def random_text(rng, num_chars: int) -> bytes:
    """``num_chars`` bytes of random lowercase words separated by spaces."""
    import numpy as np

    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    vocab = [bytes(letters[rng.integers(0, 26, rng.integers(2, 10))]) for _ in range(8192)]
    words = rng.integers(0, len(vocab), num_chars // 4).tolist()
    return b" ".join([vocab[w] for w in words])[:num_chars]


def corpus_table(n: int, seed: int = 0):
    """``n`` passages: id ``p<i>``, a title and ~100 words of text cut from one random buffer."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    base = random_text(rng, 48 * 2**20)   # > one 64k-row chunk of text
    chunks = {"id": [], "title": [], "text": []}
    for lo in range(0, n, 65_536):
        m = min(65_536, n - lo)
        chunks["id"].append(pa.array([f"p{i}" for i in range(lo, lo + m)]))
        for name, width in (("title", TITLE_CHARS), ("text", CHARS_PER_PASSAGE)):
            start = int(rng.integers(0, len(base) - m * width))
            offsets = np.arange(m + 1, dtype=np.int32) * width
            chunks[name].append(pa.StringArray.from_buffers(
                m, pa.py_buffer(offsets), pa.py_buffer(base[start:start + m * width])))
    return pa.table({k: pa.chunked_array(v, pa.string()) for k, v in chunks.items()})


def write_index(root: Path, n: int, dim: int, shards: int, dtype: str = "float32",
                seed: int = 1) -> None:
    """Random unit vectors in the ``index`` stage's artifact format, ``shards`` shard dirs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for s in range(shards):
        lo, hi = s * n // shards, (s + 1) * n // shards
        d = root / f"shard-{s:05d}"
        d.mkdir(parents=True)
        emb = np.lib.format.open_memmap(d / "emb.npy", mode="w+", dtype=dtype,
                                        shape=(hi - lo, dim))
        for a in range(0, hi - lo, 262_144):
            block = rng.standard_normal((min(262_144, hi - lo - a), dim), dtype=np.float32)
            emb[a:a + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
        emb.flush()
        del emb
        (d / "ids.txt").write_text("".join(f"p{i}\n" for i in range(lo, hi)))
        meta = {"pooling": "mean", "normalize": True, "dtype": dtype, "dim": dim,
                "num_rows": hi - lo, "shard_index": s, "num_shards": shards}
        (d / "meta.json").write_text(json.dumps(meta))


def setup(work: Path, args) -> dict:
    import numpy as np

    from orchestrator.artifacts import write_artifact
    from stages.schemas import Passages, Questions

    start = time.perf_counter()
    corpus = write_artifact(corpus_table(args.passages), Passages, work / "corpus",
                            "load.corpus", "bench")
    write_index(work / "index", args.passages, args.dim, args.index_shards, args.dtype)
    q = np.random.default_rng(2).standard_normal((args.queries, args.dim), dtype=np.float32)
    np.save(work / "queries.npy", q / np.linalg.norm(q, axis=1, keepdims=True))
    rows = [{"id": f"q{i}", "dataset": "bench", "question": f"question {i}", "answers": [],
             "gold": []} for i in range(args.queries)]
    questions = write_artifact(rows, Questions, work / "questions", "load.eval", "bench")
    return {"corpus": corpus.to_json(), "questions": questions.to_json(),
            "index": str(work / "index"), "queries": str(work / "queries.npy"),
            "setup_s": time.perf_counter() - start,
            "index_mib": sum(p.stat().st_size for p in (work / "index").rglob("*")) / 2**20,
            "corpus_mib": Path(corpus.paths[0]).stat().st_size / 2**20}


# ----------------------------------------------------------------------------- workers

def worker_faiss(job: dict) -> dict:
    import faiss
    import numpy as np

    from stages.lib.models.search import shard_dirs

    start = time.perf_counter()
    q = np.load(job["queries"])
    index = None
    for d in shard_dirs(job["index"]):
        emb = np.load(d / "emb.npy", mmap_mode="r")
        if index is None:
            index = faiss.IndexFlatIP(emb.shape[1])
        for a in range(0, len(emb), 262_144):
            index.add(np.ascontiguousarray(emb[a:a + 262_144], dtype=np.float32))
    loaded, cpu = time.perf_counter(), time.process_time()
    index.search(q, job["k"])
    return {"load_s": loaded - start, "seconds": time.perf_counter() - loaded,
            "cpu_s": time.process_time() - cpu}


def worker_whole_corpus(job: dict) -> dict:
    """What every retrieve shard held before issue 8: the corpus' title and text columns whole."""
    from orchestrator.artifacts import Ref
    from stages.schemas import Passages

    start = time.perf_counter()
    Passages(Ref(**job["corpus"])).read(columns=["id", "title", "text"])
    return {"seconds": time.perf_counter() - start}


def worker_retrieve(job: dict) -> dict:
    import logging

    import numpy as np

    from orchestrator.artifacts import Ref, write_artifact
    from stages.common.retrieve import RetrieveConfig, search_and_attach
    from stages.lib.models.search import ShardedIndex
    from stages.schemas import Passages, Questions, Retrieved

    imports_rss = rss_mib()
    start, cpu = time.perf_counter(), time.process_time()
    questions = Questions(Ref(**job["questions"]), job["start"], job["stop"])
    corpus = Passages(Ref(**job["corpus"]))
    table = questions.read()
    q = np.load(job["queries"], mmap_mode="r")[job["start"]:job["stop"]]
    idx = ShardedIndex(job["index"])
    timed = {}
    search_rows = idx.search_rows

    def timed_search(*a, **kw):
        t = time.perf_counter()
        out = search_rows(*a, **kw)
        timed["search_s"] = time.perf_counter() - t
        timed["search_rss_mib"] = rss_mib()
        timed["floor_mib"] = rss_mib("VmRSS")   # held once the search returned, before a fetch
        return out

    idx.search_rows = timed_search
    out = search_and_attach(table, np.ascontiguousarray(q), idx, corpus,
                            RetrieveConfig(k=job["k"]), "cpu", logging.getLogger("bench"))
    done, cpu = time.perf_counter(), time.process_time() - cpu
    fetched_rss = rss_mib()
    write_artifact(out, Retrieved, Path(job["out"]), "retrieve.retrieved", "bench")
    return {"seconds": done - start, "cpu_s": cpu, "search_s": timed["search_s"],
            "fetch_s": done - start - timed["search_s"], "write_s": time.perf_counter() - done,
            "imports_rss_mib": imports_rss, "search_rss_mib": timed["search_rss_mib"],
            "floor_mib": timed["floor_mib"],
            "fetched_rss_mib": fetched_rss, "rows": out.num_rows}


def run_worker(job: dict) -> dict:
    """Run one job in a fresh interpreter; its JSON answer plus its own peak RSS."""
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"worker failed ({job['kind']}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- report

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=2_000_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--dtype", choices=["float32", "float16"], default="float32",
                        help="the index's storage; float16 (the index stage's default) is "
                             "searched in blocks converted to float32, bare faiss gets float32")
    parser.add_argument("--k", type=int, default=50, help="passages per query (retrieve's default)")
    parser.add_argument("--index-shards", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2,
                        help="pairs of (bare faiss, 1-shard retrieve) runs, alternating")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        job = json.loads(args.worker)
        workers = {"faiss": worker_faiss, "whole": worker_whole_corpus,
                   "retrieve": worker_retrieve}
        answer = workers[job["kind"]](job)
        print(json.dumps({**answer, "peak_rss_mib": rss_mib()}))
        return
    work = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=args.workdir))
    try:
        report(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(work: Path, args) -> None:
    data = setup(work, args)
    print(f"{args.passages:,} passages ({data['corpus_mib']:.0f} MiB Parquet), "
          f"{args.dim}-d {args.dtype} index in {args.index_shards} shard dirs "
          f"({data['index_mib']:.0f} MiB), {args.queries:,} queries, k={args.k}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"setup {data['setup_s']:.0f} s (not timed)")
    job = {**data, "k": args.k}
    whole = run_worker({**job, "kind": "whole"})

    def retrieve(shards: int, i: int, tag: str) -> dict:
        lo, hi = i * args.queries // shards, (i + 1) * args.queries // shards
        return run_worker({**job, "kind": "retrieve", "start": lo, "stop": hi,
                           "out": str(work / f"out-{shards}-{i}-{tag}")})

    # bare faiss and the 1-shard retrieve alternate, --repeats times: each pair's ratio sees
    # the same load on the machine; the ratio reported is the median of the pairs'
    bares, ones = [], []
    for r in range(args.repeats):
        bares.append(run_worker({**job, "kind": "faiss"}))
        ones.append(retrieve(1, 0, str(r)))
    runs = {1: [ones[0]], 2: [retrieve(2, i, "0") for i in range(2)]}
    print(f"{'run':<32}{'seconds':>9}{'CPU s':>8}{'queries/s':>11}{'peak RSS MiB':>14}   detail")
    for r, b in enumerate(bares):
        print(f"{f'bare faiss IndexFlatIP (pair {r + 1})':<32}{b['seconds']:>9.1f}"
              f"{b['cpu_s']:>8.1f}{args.queries / b['seconds']:>11.0f}"
              f"{b['peak_rss_mib']:>14.0f}   load+add {b['load_s']:.1f} s (not counted)")
    for r, one in enumerate(ones[1:], start=2):
        print(f"{f'retrieve 1 shard(s) (pair {r})':<32}{one['seconds']:>9.1f}{one['cpu_s']:>8.1f}"
              f"{one['rows'] / one['seconds']:>11.0f}{one['peak_rss_mib']:>14.0f}   "
              f"search {one['search_s']:.1f} s, fetch+ctxs {one['fetch_s']:.1f} s")
    bare_s = statistics.median(b["seconds"] for b in bares)
    bare_cpu = statistics.median(b["cpu_s"] for b in bares)
    for shards, parts in runs.items():
        for i, r in enumerate(parts):
            n = r["rows"]
            print(f"{f'retrieve {shards} shard(s) [{i}]':<32}{r['seconds']:>9.1f}{r['cpu_s']:>8.1f}"
                  f"{n / r['seconds']:>11.0f}{r['peak_rss_mib']:>14.0f}   "
                  f"search {r['search_s']:.1f} s, fetch+ctxs {r['fetch_s']:.1f} s, "
                  f"write {r['write_s']:.1f} s (not counted); peak RSS after imports "
                  f"{r['imports_rss_mib']:.0f}, search {r['search_rss_mib']:.0f}, "
                  f"fetch+ctxs {r['fetched_rss_mib']:.0f} MiB; held after the search "
                  f"{r['floor_mib']:.0f} MiB")
    print(f"{'(reading the whole corpus)':<32}{whole['seconds']:>9.1f}{'':>19}"
          f"{whole['peak_rss_mib']:>14.0f}   what each shard held before issue 8, not a run")
    one = min(ones, key=lambda r: r["peak_rss_mib"])
    per_shard = max(r["peak_rss_mib"] for r in runs[2])
    print(f"per-shard peak RSS, 2 shards / 1 shard: {per_shard / one['peak_rss_mib']:.2f} "
          f"(target <= 0.6)")
    two = max(runs[2], key=lambda r: r["peak_rss_mib"])
    above = [r["peak_rss_mib"] - r["floor_mib"] for r in (two, one)]
    print(f"above what a shard held once its search returned (interpreter, libraries, queries, "
          f"hits): {above[0]:.0f} / {above[1]:.0f} MiB = {above[0] / above[1]:.2f}")
    pairs = [b["seconds"] / o["seconds"] for b, o in zip(bares, ones)]
    print(f"retrieve throughput / bare faiss, 1 shard, per pair: "
          f"{', '.join(f'{x:.2f}' for x in pairs)}; median {statistics.median(pairs):.2f} "
          f"(target >= 0.9); 2 shards, summed seconds, against the median bare run: "
          f"{bare_s / sum(r['seconds'] for r in runs[2]):.2f}")
    cpu_pairs = [b["cpu_s"] / o["cpu_s"] for b, o in zip(bares, ones)]
    print(f"the same in CPU seconds (less sensitive to other load): 1 shard median "
          f"{statistics.median(cpu_pairs):.2f}; "
          f"2 shards {bare_cpu / sum(r['cpu_s'] for r in runs[2]):.2f}")


if __name__ == "__main__":
    main()
