"""GPUs this process may hand to tasks, found without importing torch."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def gpu_driver_present() -> bool:
    """An NVIDIA driver is loaded on this machine (device nodes or the driver's /proc entry)."""
    return Path("/proc/driver/nvidia/gpus").is_dir() or any(Path("/dev").glob("nvidia[0-9]*"))


def visible_gpus() -> list[int]:
    """GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` (only where a GPU driver is
    present: on a machine without one, ``CUDA_VISIBLE_DEVICES=0`` names no real device), else
    what ``nvidia-smi`` lists."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [int(x) for x in env.split(",") if x.strip().isdigit()]
        return ids if ids and gpu_driver_present() else []
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [int(x) for x in out.split() if x.strip().isdigit()]
