"""The resume file of a training loop written with torch itself (DPA-RAG's reranker,
Reinforced-IR's retriever; the HF Trainer's checkpoints are :mod:`checkpoints`'): saved whole or
not at all, read back or, when it cannot be read, named in the log and training starts over,
with the RNG states that make a resumed run go on as if it had never stopped (dropout masks,
shuffles).
"""

from __future__ import annotations

from pathlib import Path


def save(state: dict, path: Path) -> None:
    """``state`` written to ``path`` through a ``.partial`` file renamed into place: a kill
    while saving leaves the last whole one."""
    import torch

    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    partial.replace(path)


def load(path: Path, log, who: str) -> dict | None:
    """The state saved at ``path``; None without one, or with one that cannot be read (a disk
    that filled or failed): logged, the caller starts over."""
    import torch

    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:   # torch raises RuntimeError, EOFError, pickle errors, ...
        log.warning("%s: %s cannot be read (%s: %s); training starts over", who, path,
                    type(e).__name__, (str(e).splitlines() or [""])[0][:120])
        return None


def rng_state() -> dict:
    """The CPU generator's state, and each GPU's where there are GPUs."""
    import torch

    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    """Set the generators from a saved state's ``rng`` (:func:`rng_state`); a retriever file
    written before this module kept the CPU state bare under ``rng`` and the GPUs' under
    ``cuda_rng``."""
    import torch

    rng = state.get("rng")
    cpu, cuda = (rng.get("torch"), rng.get("cuda")) if isinstance(rng, dict) else \
        (rng, state.get("cuda_rng"))
    if cpu is not None:
        torch.set_rng_state(cpu)
    if cuda is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
