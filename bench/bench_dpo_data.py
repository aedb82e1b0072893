"""DynamicRAG's DPO data steps, ``dynamicrag.reward`` and ``dynamicrag.pairs``, at the paper's
scale: peak memory and time. Prints, asserts nothing.

    python bench/bench_dpo_data.py                      # 10,000 questions
    python bench/bench_dpo_data.py --questions 50000    # the paper's DPO share of its 150k

Setup (not timed): a synthetic ``Trajectories`` table written by the orchestrator's writer:
``--questions`` questions, each with 40 reranked passages of about 100 random words and 8
sampled trajectories (the paper's ``n``: a selection of up to 8 passages and a 12-word answer;
one in eight answers is the gold).

Measured, each step in a fresh subprocess that reports its own peak RSS (``VmHWM``): the stage
function called as the runner calls it, with the reward components that need no model (ROUGE-L,
containment EM, length penalty: BERTScore and the LLM judge add their own model or requests),
then its output written with the orchestrator's writer, whose content hash is printed (two
versions of a step that print the same hash wrote the same bytes); ``pairs`` reads what
``reward`` wrote, with the paper's ``generator_cap`` of 10,000 scaled to the questions (a fifth).
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


def write_input(root: Path, questions: int) -> dict:
    import pyarrow as pa

    from orchestrator.artifacts import write_artifact
    from stages.dynamicrag.schemas import Trajectories

    rng = random.Random(0)
    words = [f"w{i}" for i in range(30_000)]
    tables = []
    for lo in range(0, questions, 1_000):
        rows = []
        for q in range(lo, min(lo + 1_000, questions)):
            gold = " ".join(rng.choices(words, k=2))
            trajs = []
            for _ in range(8):
                ids = sorted(rng.sample(range(1, 41), rng.randint(0, 8)))
                answer = gold if rng.random() < 0.125 else " ".join(rng.choices(words, k=12))
                trajs.append({"ids": ids, "selection": ", ".join(f"[{i}]" for i in ids),
                              "response": answer})
            rows.append({"id": f"q{q}", "dataset": "nq", "question": f"who wrote book {q}?",
                         "answers": [gold], "gold": [],
                         "ctxs": [{"id": f"p{q}-{i}", "title": f"title {i}",
                                   "text": " ".join(rng.choices(words, k=100)),
                                   "score": 1.0 / i, "relevant": rng.random() < 0.1,
                                   "rerank_score": None} for i in range(1, 41)],
                         "trajectories": trajs})
        tables.append(pa.Table.from_pylist(rows, schema=Trajectories.schema))
    return write_artifact(pa.concat_tables(tables), Trajectories, root / "trajectories",
                          "bench.in", "key").to_json()


def run(step: str, ref: dict, out: str, questions: int) -> dict:
    import logging

    from orchestrator.api import StageContext
    from orchestrator.artifacts import Ref, write_artifact
    from stages.dynamicrag.pairs import PairsConfig, pairs
    from stages.dynamicrag.reward import RewardConfig, reward
    from stages.dynamicrag.schemas import RerankerPrompt, Scored, Trajectories
    from stages.schemas import GeneratorPrompt, Preferences

    def prompt(cls, name):
        path = REPO / "conf" / "prompts" / "dynamicrag" / f"{name}.yaml"
        return cls(Ref("file", cls.type_name(), "bench", [str(path)]))

    ctx = StageContext(step, 0, 1, Path(out) / f"work-{step}", Path(out) / f"scratch-{step}",
                       logging.getLogger(f"bench.{step}"))
    after_imports = rss_mib("VmRSS")
    start = time.perf_counter()
    if step == "reward":
        result, kind = reward(Trajectories(Ref(**ref)), RewardConfig(), ctx), Scored
    else:
        result, kind = pairs(Scored(Ref(**ref)), prompt(RerankerPrompt, "reranker"),
                             prompt(GeneratorPrompt, "generator"),
                             PairsConfig(generator_cap=questions // 5), ctx), Preferences
    stage_s, peak_stage = time.perf_counter() - start, rss_mib("VmHWM")
    written = write_artifact(result, kind, Path(out) / step, "bench.out", "key")
    return {"after_imports_mib": after_imports, "stage_s": stage_s, "peak_stage_mib": peak_stage,
            "total_s": time.perf_counter() - start, "peak_mib": rss_mib("VmHWM"),
            "rows": sum(written.rows), "hash": written.content_hash, "ref": written.to_json()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=10_000)
    parser.add_argument("--child", nargs=4, metavar=("STEP", "REF_JSON", "OUT", "QUESTIONS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, ref, out, questions = args.child
        sys.stdout.write(json.dumps(run(step, json.loads(ref), out, int(questions))) + "\n")
        return
    with tempfile.TemporaryDirectory(prefix="bench_dpo_data_") as tmp:
        start = time.perf_counter()
        ref = write_input(Path(tmp), args.questions)
        size = sum(Path(p).stat().st_size for p in ref["paths"]) / 2**20
        print(f"input: {args.questions:,} questions x 40 passages x 8 trajectories, {size:,.0f} "
              f"MiB of Parquet (written in {time.perf_counter() - start:.0f} s)")
        for step in ("reward", "pairs"):
            got = subprocess.run([sys.executable, __file__, "--child", step, json.dumps(ref),
                                  tmp, str(args.questions)], check=True, stdout=subprocess.PIPE,
                                 text=True, cwd=REPO).stdout.splitlines()[-1]
            r = json.loads(got)
            print(f"{step}: {r['stage_s']:.1f} s, peak RSS {r['peak_stage_mib']:,.0f} MiB "
                  f"({r['after_imports_mib']:,.0f} MiB after imports); with its {r['rows']:,} "
                  f"rows written: {r['total_s']:.1f} s, peak {r['peak_mib']:,.0f} MiB; content "
                  f"hash {r['hash']}")
            ref = r["ref"]


if __name__ == "__main__":
    main()
