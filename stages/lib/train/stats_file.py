"""The ``training_stats.json`` in a trained model's artifact: what the run did (steps, losses,
examples kept), not how long it took, where its scratch was or whether it resumed. The file is
part of the artifact's content hash, so weights trained again to the same bytes (a ``--force``,
a resumed run, a lost cache entry) keep their hash, and the steps after them stay cached. The
times are in the step's log and in ``status.json``."""

from __future__ import annotations

import json

RUN_ONLY = ("runtime_s", "train_runtime_s", "out_dir", "resumed_from_step")


def stats_file_text(stats: dict) -> str:
    """The file's text: ``stats`` without the keys that differ from one run to the next.

    >>> print(stats_file_text({"steps": 2, "runtime_s": 3.2, "out_dir": "/scratch/x/model"}))
    {
     "steps": 2
    }
    """
    return json.dumps({k: v for k, v in stats.items() if k not in RUN_ONLY}, indent=1)
