"""What each step of a recipe last computed (key and key material), to explain a STALE step.

One small JSON file per recipe under ``<runs>/.state/``; a damaged file reads as empty history.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from orchestrator.hashing import key_of


def history_path(runs_dir: Path, recipe: Path) -> Path:
    return Path(runs_dir) / ".state" / f"{recipe.stem}.{key_of(str(recipe))[:8]}.json"


def load_history(runs_dir: Path, recipe: Path) -> dict:
    try:
        data = json.loads(history_path(runs_dir, recipe).read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def save_history(runs_dir: Path, recipe: Path, history: dict) -> None:
    path = history_path(runs_dir, recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(history))
    os.replace(tmp, path)
