"""``dpa_rag.preference``'s own work at scale: peak memory and time. Prints, asserts nothing.

    python bench/bench_preference.py                     # 4,000 queries x 100 documents
    python bench/bench_preference.py --queries 26500     # a shard of the paper's 212k at 8 GPUs

Setup (not timed): a synthetic ``Retrieved`` table written by the orchestrator's writer:
``--queries`` questions, each with one gold answer and ``--docs`` retrieved passages of about
100 random words (psgs_w100's length; the paper reads the DPR top 100).

Measured, in a fresh subprocess that reports its own peak RSS (``VmHWM``): the stage function
called as the runner calls it, with a stand-in reader that answers every conversation at once
(the step's own work: conversations built, answers scored, rows made; not an LLM's), then its
output written with the orchestrator's writer, whose content hash is printed: two versions of
the stage that print the same hash wrote the same bytes.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import rss_mib  # noqa: E402


def write_input(root: Path, queries: int, docs: int) -> dict:
    import pyarrow as pa

    from orchestrator.artifacts import write_artifact
    from stages.schemas import Retrieved

    rng = random.Random(0)
    words = [f"w{i}" for i in range(30_000)]
    tables = []
    for lo in range(0, queries, 1_000):
        rows = [{"id": f"q{q}", "dataset": "nq", "question": f"who wrote book {q}?",
                 "answers": [rng.choice(words)], "gold": [],
                 "ctxs": [{"id": f"p{q}-{i}", "title": f"title {i}",
                           "text": " ".join(rng.choices(words, k=100)), "score": 1.0 / i}
                          for i in range(1, docs + 1)]}
                for q in range(lo, min(lo + 1_000, queries))]
        tables.append(pa.Table.from_pylist(rows, schema=Retrieved.schema))
    return write_artifact(pa.concat_tables(tables), Retrieved, root / "retrieved", "bench.in",
                          "key").to_json()


class InstantReader:
    """Answers with a word of the last passage shown (right now and then), or "unknown"."""

    def chat(self, conversations, **params):
        return [[c[-1]["content"].split()[-3] if "title" in c[-1]["content"] else "unknown"]
                for c in conversations]


def run(ref: dict, out: str) -> dict:
    import logging

    import stages.lib.models.generation as generation
    from orchestrator.api import StageContext
    from orchestrator.artifacts import Ref, write_artifact
    from stages.dpa_rag.preference import PreferenceConfig, preference
    from stages.dpa_rag.schemas import Knowledge
    from stages.schemas import GeneratorPrompt, Model, Retrieved

    generation.load_generator = lambda *a, **kw: InstantReader()
    prompt = GeneratorPrompt(Ref("file", GeneratorPrompt.type_name(), "bench",
                                 [str(REPO / "conf" / "prompts" / "common" / "rag.yaml")]))
    ctx = StageContext("preference", 0, 1, Path(out) / "work", Path(out) / "scratch",
                       logging.getLogger("bench.preference"))
    after_imports = rss_mib("VmRSS")
    start = time.perf_counter()
    result = preference(Retrieved(Ref(**ref)), prompt, PreferenceConfig(), ctx,
                        model=Model(Ref("dir", Model.type_name(), "bench", [out])))
    stage_s, peak_stage = time.perf_counter() - start, rss_mib("VmHWM")
    written = write_artifact(result, Knowledge, Path(out) / "knowledge", "bench.out", "key")
    return {"after_imports_mib": after_imports, "stage_s": stage_s, "peak_stage_mib": peak_stage,
            "total_s": time.perf_counter() - start, "peak_mib": rss_mib("VmHWM"),
            "rows": sum(written.rows), "hash": written.content_hash}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=4_000)
    parser.add_argument("--docs", type=int, default=100)
    parser.add_argument("--child", nargs=2, metavar=("REF_JSON", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.stdout.write(json.dumps(run(json.loads(args.child[0]), args.child[1])) + "\n")
        return
    with tempfile.TemporaryDirectory(prefix="bench_preference_") as tmp:
        start = time.perf_counter()
        ref = write_input(Path(tmp), args.queries, args.docs)
        size = sum(Path(p).stat().st_size for p in ref["paths"]) / 2**20
        print(f"input: {args.queries:,} queries x {args.docs} documents, {size:,.0f} MiB of "
              f"Parquet (written in {time.perf_counter() - start:.0f} s)")
        got = subprocess.run([sys.executable, __file__, "--child", json.dumps(ref), tmp],
                             check=True, stdout=subprocess.PIPE, text=True,
                             cwd=REPO).stdout.splitlines()[-1]
        r = json.loads(got)
        print(f"preference: {r['stage_s']:.1f} s, peak RSS {r['peak_stage_mib']:,.0f} MiB "
              f"({r['after_imports_mib']:,.0f} MiB after imports); with its {r['rows']:,} rows "
              f"written: {r['total_s']:.1f} s, peak {r['peak_mib']:,.0f} MiB; content hash "
              f"{r['hash']}")


if __name__ == "__main__":
    main()
