"""The trainer's ``checkpoint-<step>/`` directories in a run's scratch: which one to resume.

The scratch directory belongs to one task key (the key covers the config and the inputs'
content), so every checkpoint in it comes from the same run: no fingerprint is needed, only
care for a checkpoint half-written when the run died.
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
