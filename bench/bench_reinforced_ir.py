"""Reinforced-IR's corpus-reading steps at corpus scale: peak memory and time. Prints, asserts
nothing.

    python bench/bench_reinforced_ir.py                          # 1,000,000 passages
    python bench/bench_reinforced_ir.py --passages 200000 --queries 2000   # a small run

Setup (not timed): a synthetic corpus of ``--passages`` passages (about 100 random words each,
as ``bench/bench_scale.py`` writes it; MS MARCO's 8.8M passages are shorter, about 330
characters), random unit embeddings of it in the ``index`` stage's format, a tiny random-init
encoder of the same width (queries are really encoded), and ``--queries`` pseudo queries, each
with a random source passage and three augmentations.

Measured, each step in a fresh subprocess that reports its own peak RSS (``VmHWM``), the stage
function called as the runner calls it: ``synthesize`` (its 15,000 passages, the paper's count,
asked of a stand-in LLM client that answers at once: the step's own work, not an LLM's),
``feedback`` (every query's source passage, embedded with its augmentations) and ``mine`` (the
query and its greedy augmentation each searched top ``--top-k``, 2,000 in the paper; one shard
holding all the queries). The RSS right after the imports is shown too.
"""

from __future__ import annotations

import argparse
import json
import logging
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

DIM, STEPS = 32, ("synthesize", "feedback", "mine")


def setup(work: Path, passages: int, queries: int) -> dict:
    from bench_scale import corpus_table, write_index

    from orchestrator.artifacts import write_artifact
    from stages.lib.testing.tiny import tiny_encoder
    from stages.reinforced_ir.schemas import Augmented
    from stages.schemas import Passages

    corpus = write_artifact(corpus_table(passages), Passages, work / "corpus", "load", "bench")
    write_index(work / "index", passages, DIM, shards=1)
    rng = random.Random(0)
    words = [f"w{i}" for i in range(500)]
    tiny_encoder(work / "enc", texts=words, hidden_size=DIM)
    rows = [{"id": f"pq{i}", "dataset": "bench", "question": " ".join(rng.choices(words, k=8)),
             "answers": [], "gold": [f"p{rng.randrange(passages)}"],
             "augmentations": [" ".join(rng.choices(words, k=12)) for _ in range(3)]}
            for i in range(queries)]
    augmented = write_artifact(rows, Augmented, work / "augmented", "augment", "bench")
    return {"corpus": corpus.to_json(), "augmented": augmented.to_json(),
            "index": str(work / "index"), "encoder": str(work / "enc")}


class InstantClient:
    """Stands in for the LLM endpoint: a query for every ask, "1" for every quality check."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def chat(self, conversations, **params):
        from stages.lib.endpoint import ChatReply

        return [ChatReply(["1" if params["max_tokens"] <= 8 else "what is it?"])
                for _ in conversations]


def run_step(step: str, job: dict, work: Path) -> dict:
    from orchestrator.api import StageContext
    from orchestrator.artifacts import Ref
    from stages.reinforced_ir.schemas import Augmented
    from stages.schemas import Embeddings, Model, Passages

    corpus = Passages(Ref(**job["corpus"]))
    augmented = Augmented(Ref(**job["augmented"]))
    encoder = Model(Ref("dir", Model.type_name(), "bench", [job["encoder"]]))
    ctx = StageContext(step, 0, 1, work / f"work-{step}", work / f"scratch-{step}",
                       logging.getLogger(f"bench.{step}"))
    call = {"synthesize": lambda: _synthesize(corpus, ctx),
            "feedback": lambda: _feedback(augmented, corpus, encoder, ctx),
            "mine": lambda: _mine(augmented, Embeddings(Ref("dir", Embeddings.type_name(),
                                                            "bench", [job["index"]])),
                                  corpus, encoder, ctx, job["top_k"])}[step]
    after_imports = rss_mib("VmRSS")
    start = time.perf_counter()
    out = call()
    return {"step": step, "rows": len(out), "s": time.perf_counter() - start,
            "after_imports_mib": after_imports, "peak_mib": rss_mib("VmHWM")}


def _prompt(cls, name: str):
    from orchestrator.artifacts import Ref

    path = REPO / "conf" / "prompts" / "reinforced_ir" / name
    return cls(Ref("file", cls.type_name(), "bench", [str(path)]))


def _synthesize(corpus, ctx):
    import stages.lib.endpoint as endpoint
    from stages.reinforced_ir.schemas import QualityPrompt, QueryPrompt
    from stages.reinforced_ir.synthesize import SynthesizeConfig, synthesize

    endpoint.open_client = lambda *a, **kw: InstantClient()
    return synthesize(corpus, _prompt(QueryPrompt, "query.yaml"),
                      _prompt(QualityPrompt, "quality.yaml"), SynthesizeConfig(), ctx)


def _feedback(augmented, corpus, encoder, ctx):
    from stages.reinforced_ir.feedback_pairs import FeedbackConfig, feedback
    from stages.reinforced_ir.schemas import AugmentationPrompt

    cfg = FeedbackConfig(require_gain=False, margin=100.0)   # keep pairs: a random encoder
    return feedback(augmented, corpus, encoder, _prompt(AugmentationPrompt, "augment.yaml"),
                    cfg, ctx)


def _mine(augmented, index, corpus, encoder, ctx, top_k: int):
    from stages.reinforced_ir.mine import MineConfig, mine

    return mine(augmented, index, corpus, encoder, MineConfig(top_k=top_k), ctx)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--top-k", type=int, default=2000)
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated, of " +
                        ", ".join(STEPS))
    parser.add_argument("--child", nargs=3, metavar=("STEP", "JOB", "WORK"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, job, work = args.child
        sys.stdout.write(json.dumps(run_step(step, json.loads(job), Path(work))) + "\n")
        return
    with tempfile.TemporaryDirectory(prefix="bench_rir_") as tmp:
        start = time.perf_counter()
        job = setup(Path(tmp), args.passages, args.queries) | {"top_k": args.top_k}
        print(f"setup: {args.passages:,} passages, {args.queries:,} queries "
              f"({time.perf_counter() - start:.0f} s)")
        for step in args.steps.split(","):
            got = subprocess.run([sys.executable, __file__, "--child", step, json.dumps(job),
                                  tmp], check=True, stdout=subprocess.PIPE, text=True,
                                 cwd=REPO).stdout.splitlines()[-1]
            r = json.loads(got)
            print(f"{step}: {r['rows']:,} rows in {r['s']:.1f} s, peak RSS "
                  f"{r['peak_mib']:,.0f} MiB ({r['after_imports_mib']:,.0f} MiB after imports)")


if __name__ == "__main__":
    main()
