"""``dynamicrag.label`` at the released training file's scale: peak memory and time. Prints,
asserts nothing.

    python bench/bench_label.py                       # 20,000 questions x 40 passages
    python bench/bench_label.py --questions 150000    # the released file's 150k (12 GB of memory)

Setup (not timed): a synthetic ``Reranked`` table written by the orchestrator's writer:
``--questions`` questions, each with ``--passages`` passages of about 100 random words (like
psgs_w100) and a relevance label that is true with probability 0.1 (about 4 of 40, the spread
the expert reranker's labels have). The paper's settings, scaled to the number of questions:
BC rows in all = questions / 5 (30,000 of 150,000), each of the 15 length buckets capped at a
fifteenth of that, and 70/120 of the questions left after BC go to generator SFT, the rest to
DPO (70,000 SFT questions in the paper).

Measured, in a fresh subprocess that reports its own peak RSS (``VmHWM``): the stage function
called as the runner calls it, then its three outputs written with the orchestrator's writer.
The process' RSS right after its imports is shown too: the stage's own share is the difference.
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


def rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_input(root: Path, questions: int, passages: int) -> dict:
    from orchestrator.artifacts import write_artifact
    from stages.schemas import Reranked

    rng = random.Random(0)
    words = [f"w{i}" for i in range(30_000)]

    def batches():
        for lo in range(0, questions, 2_000):
            yield [{"id": f"q{q}", "dataset": "nq", "question": f"question {q}?",
                    "answers": [f"answer {q}"], "gold": [],
                    "ctxs": [{"id": f"p{q}-{i}", "title": f"title {i}",
                              "text": " ".join(rng.choices(words, k=100)),
                              "score": 1.0 / i, "relevant": rng.random() < 0.1,
                              "rerank_score": None} for i in range(1, passages + 1)]}
                   for q in range(lo, min(lo + 2_000, questions))]

    import pyarrow as pa

    tables = [pa.Table.from_pylist(rows, schema=Reranked.schema) for rows in batches()]
    ref = write_artifact(pa.concat_tables(tables), Reranked, root / "reranked", "bench.in", "key")
    return ref.to_json()


def run_label(ref: str, questions: int, out: str) -> dict:
    import logging

    from orchestrator.api import StageContext
    from orchestrator.artifacts import Ref, write_artifact
    from stages.dynamicrag.label import LabelConfig, label
    from stages.dynamicrag.schemas import BCTargets
    from stages.schemas import Reranked

    after_imports = rss_mib("VmRSS")
    total = max(15, questions // 5)
    cfg = LabelConfig(max_len=15, bucket_cap=total // 15, total_cap=total, n_sft=70 / 120)
    ctx = StageContext("label", 0, 1, Path(out) / "work", Path(out) / "scratch",
                       logging.getLogger("bench.label"))
    start = time.perf_counter()
    result = label(Reranked(Ref(**json.loads(ref))), cfg, ctx)
    stage_s = time.perf_counter() - start
    peak_stage = rss_mib("VmHWM")
    for name, cls, value in (("bc", BCTargets, result.bc), ("sft", Reranked, result.sft),
                             ("dpo", Reranked, result.dpo)):
        write_artifact(value, cls, Path(out) / name, "bench.out", "key")
    return {"after_imports_mib": after_imports, "stage_s": stage_s, "peak_stage_mib": peak_stage,
            "total_s": time.perf_counter() - start, "peak_mib": rss_mib("VmHWM")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=20_000)
    parser.add_argument("--passages", type=int, default=40)
    parser.add_argument("--child", nargs=3, metavar=("REF_JSON", "QUESTIONS", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        ref, questions, out = args.child
        sys.stdout.write(json.dumps(run_label(ref, int(questions), out)) + "\n")
        return
    with tempfile.TemporaryDirectory(prefix="bench_label_") as tmp:
        start = time.perf_counter()
        ref = write_input(Path(tmp), args.questions, args.passages)
        size = sum(Path(p).stat().st_size for p in ref["paths"]) / 2**20
        print(f"input: {args.questions:,} questions x {args.passages} passages, "
              f"{size:,.0f} MiB of Parquet (written in {time.perf_counter() - start:.0f} s)")
        got = subprocess.run([sys.executable, __file__, "--child", json.dumps(ref),
                              str(args.questions), tmp], check=True, capture_output=True,
                             text=True, cwd=REPO).stdout.splitlines()[-1]
        r = json.loads(got)
        print(f"label: {r['stage_s']:.1f} s, peak RSS {r['peak_stage_mib']:,.0f} MiB "
              f"({r['after_imports_mib']:,.0f} MiB after imports); with its outputs written: "
              f"{r['total_s']:.1f} s, peak {r['peak_mib']:,.0f} MiB")


if __name__ == "__main__":
    main()
