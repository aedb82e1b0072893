"""What each step of a recipe last computed (key and key material), to explain a STALE step.

One small JSON file per recipe under ``<runs>/.state/``, written whole and renamed into place. A
damaged file reads as empty history, with a one-line warning: the cache is still used, but a step
to recompute is planned as never computed (MISSING) until the next run rewrites the file.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from orchestrator.atomic import write_text
from orchestrator.hashing import key_of

log = logging.getLogger("ragline")


def history_path(runs_dir: Path, recipe: Path) -> Path:
    return Path(runs_dir) / ".state" / f"{recipe.stem}.{key_of(str(recipe))[:8]}.json"


def load_history(runs_dir: Path, recipe: Path) -> dict:
    """``{step: {"key": ..., "material": {...}}}``; ``{}`` when missing or damaged."""
    path = history_path(runs_dir, recipe)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        _damaged(path, f"{type(e).__name__}: {' '.join(str(e).split())}")
        return {}
    if not isinstance(data, dict) or not all(_is_record(old) for old in data.values()):
        _damaged(path, "not a mapping of step -> {key, material}")
        return {}
    return data


def _is_record(old) -> bool:
    return (isinstance(old, dict) and isinstance(old.get("key"), str)
            and isinstance(old.get("material"), dict))


def _damaged(path: Path, why: str) -> None:
    log.warning("%s is damaged (%s); cached steps are still reused, but a step to recompute is "
                "planned as MISSING (never computed) instead of STALE with its cause until the "
                "next run rewrites the file", path, why)


def save_history(runs_dir: Path, recipe: Path, history: dict) -> None:
    path = history_path(runs_dir, recipe)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(history))
