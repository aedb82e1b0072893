"""A training file shaped like DynamicRAG's released one through its first steps: memory, time.

    python bench/bench_load.py                      # 10,000 questions, 40 passages each
    python bench/bench_load.py --questions 40000    # about 1 GB of JSON lines

The released training file (``DynamicRAG_training_data.jsonl``, 5.48 GB, about 150,000
questions) ships every question's retrieved passages, so ``load`` reads their text too. This
writes a file of that shape (``--questions`` records, each with ``retrieved_question``, an answer
and ``--passages`` ``ctxs`` of about 100 words; not timed), then runs, with ``rag run`` in a
fresh project folder, ``--repeats`` times, the first steps of the DynamicRAG recipe on it:
``load``, ``retrieve`` (every question keeps its shipped passages, as with
``conf/dynamicrag/shipped_passages.yaml``; one shard) and ``aggregate``, each step in its own
``rag run``. Prints each run's wall time and the peak resident memory of its ``rag`` process
(the step runs in it; ``wait4``'s ``ru_maxrss``), next to the file's and the output table's
sizes. Prints, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

RECIPE = """\
# load and retrieve on one training file that ships its passages (bench/bench_load.py)
sources:
  train_questions: {path}
steps:
  load:
    stage: load_data
    inputs: {{train: train_questions}}
    required: [train]
  retrieve_train:
    stage: retrieve
    inputs: {{questions: load.train}}
  aggregate:
    stage: aggregate
    inputs: {{primary: retrieve_train}}
"""


def write_training_file(path: Path, questions: int, passages: int, seed: int = 0) -> None:
    """``questions`` JSON lines shaped like DynamicRAG's released training data."""
    rng = random.Random(seed)
    vocab = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9)))
             for _ in range(8192)]
    with open(path, "w") as f:
        for i in range(questions):
            ctxs = [{"id": str(rng.randrange(21_000_000)),
                     "title": " ".join(rng.choices(vocab, k=3)),
                     "text": " ".join(rng.choices(vocab, k=100)), "score": rng.random(),
                     "has_answer": rng.random() < 0.3} for _ in range(passages)]
            question = " ".join(rng.choices(vocab, k=9))
            f.write(json.dumps({"id": f"nq_{i}", "question": question,
                                "retrieved_question": question + "?",
                                "answer": [" ".join(rng.choices(vocab, k=2))],
                                "ctxs": ctxs}) + "\n")


def run_step(project: Path, step: str) -> dict:
    """One ``rag run`` of ``step`` alone; its wall seconds and the process' peak RSS."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from orchestrator.cli import main; "
                             "sys.exit(main())", "run", "load.yaml", "--only", step, "--force",
                             step], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"bench_load: rag run --only {step} failed:\n{out[-3000:]}")
    output = "load.train" if step == "load" else step
    parts = sorted(project.glob(f"**/{output}*/part-00000.parquet"), key=os.path.getmtime)
    return {"seconds": seconds, "peak_mib": usage.ru_maxrss / 1024,
            "table_mib": parts[-1].stat().st_size / 2**20 if parts else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=int, default=10_000)
    ap.add_argument("--passages", type=int, default=40, help="ctxs per question (DynamicRAG: 40)")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_load_") as tmp:
        project = Path(tmp)
        data = project / "train.jsonl"
        write_training_file(data, args.questions, args.passages)
        (project / "load.yaml").write_text(RECIPE.format(path=data))
        size = data.stat().st_size / 2**20
        print(f"training file: {args.questions:,} questions x {args.passages} passages, "
              f"{size:,.0f} MiB of JSON lines", flush=True)
        for n in range(args.repeats):
            for step in ("load", "retrieve_train", "aggregate"):
                r = run_step(project, step)
                print(f"run {n + 1}, {step}: {r['seconds']:.1f} s, peak RSS "
                      f"{r['peak_mib']:,.0f} MiB ({r['peak_mib'] / size:.2f}x the file); "
                      f"output Parquet {r['table_mib']:,.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
