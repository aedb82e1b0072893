"""The trainer's ``checkpoint-<step>/`` directories in a run's scratch: which one to resume.

The scratch directory belongs to one task key (the key covers the config and the inputs'
content), so every checkpoint in it comes from the same config; but not from the same shape:
the key leaves out resources, so a run that died on 2 GPUs and is rerun on 1 would resume with
another effective batch, schedule and data position. ``run_shape.json`` records the shape
(processes, batch, accumulation, DeepSpeed) and checkpoints of another shape are dropped
(:func:`drop_other_shape`). A checkpoint half-written when the run died is dropped too.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

STAGING_DIR = "final"   # Trainer.save_model target before the plain checkpoint is written
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors",
                "pytorch_model.bin", "pytorch_model.bin.index.json")


def checkpoints(checkpoint_dir: str | Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every ``checkpoint-<step>`` directory, by step."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return []
    out = []
    for path in root.iterdir():
        name = path.name
        if path.is_dir() and name.startswith("checkpoint-") and name[11:].isdigit():
            out.append((int(name[11:]), path))
    return sorted(out)


def last_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The newest complete ``checkpoint-<step>`` directory (with ``trainer_state.json``), or None."""
    done = [(step, path) for step, path in checkpoints(checkpoint_dir)
            if (path / "trainer_state.json").is_file()]
    return max(done)[1] if done else None


def drop_incomplete(checkpoint_dir: Path, log: logging.Logger, kind: str) -> None:
    """Main process, before training: delete checkpoints newer than the last complete one (a
    crash while saving) and a staging save left by a crash while exporting."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    newest = last_checkpoint(checkpoint_dir)
    newest_step = int(newest.name[11:]) if newest else -1
    for step, path in checkpoints(checkpoint_dir):
        if step > newest_step:
            log.warning("%s: deleting incomplete checkpoint %s (no trainer_state.json)",
                        kind, path.name)
            shutil.rmtree(path, ignore_errors=True)
    shutil.rmtree(checkpoint_dir / STAGING_DIR, ignore_errors=True)


def drop_other_shape(checkpoint_dir: Path, shape: dict, log: logging.Logger, kind: str) -> None:
    """Main process, before training: delete the checkpoints a run of another ``shape`` wrote
    (resuming them would mix two runs: 2 steps of batch 4 then 6 of batch 2), then record
    ``shape`` as this run's."""
    record = checkpoint_dir / "run_shape.json"
    try:
        before = json.loads(record.read_text())
    except (OSError, ValueError):
        before = None
    found = checkpoints(checkpoint_dir)
    if found and before is not None and before != shape:
        changed = ", ".join(f"{k} {before.get(k)} -> {v}" for k, v in shape.items()
                            if before.get(k) != v)
        log.warning("%s: the checkpoints in %s were written by a run of another shape (%s): "
                    "starting again from step 0, as resuming would mix the two runs", kind,
                    checkpoint_dir, changed)
        for _, path in found:
            shutil.rmtree(path, ignore_errors=True)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    tmp = record.with_suffix(".tmp")
    tmp.write_text(json.dumps(shape))
    tmp.replace(record)


def finished_state(checkpoint: Path | None) -> dict | None:
    """The trainer state of ``checkpoint`` if it is the last step of its run and holds weights
    (the run died while writing its output: nothing is left to train)."""
    if checkpoint is None:
        return None
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return None
    if state.get("global_step", 0) < state.get("max_steps", 0) or state.get("max_steps", 0) <= 0:
        return None
    if not any((checkpoint / name).is_file() for name in WEIGHT_FILES):
        return None  # e.g. DeepSpeed shards only: let the trainer resume (one extra step)
    return state
