"""On a CPU, TRL's fused LM head scores only the positions that have a label.

TRL's SFT and DPO trainers compute each token's log-probability through a fused LM head
(``trl.trainer.utils.add_fused_lm_head``) that projects the hidden states onto the vocabulary
in tiles. On CUDA and XPU it projects only the positions whose label is not ``-100``; on every
other device it projects all of them, so that compiled backends (Neuron) see the same tile
shapes on every batch. A CPU compiles nothing, and in RAG training most positions are the
prompt's (the passages), which carry no label: SmolLM2-135M with LoRA, 4 rows of 400 tokens
of which 12 are targets, took 20.7–22.7 s per forward and backward with every position
projected, 11.0–12.4 s with the targets only, and gave the same loss, entropy and gradients
(bit for bit). The projection of a position without a label is masked out of every output,
so skipping it changes nothing but the time.

TRL decides this per call through its module-level ``_use_triton(device)``; while
:func:`labelled_positions_only` is open that decision also says yes for a CPU. The kernel that
computes the log-probabilities keeps its own check (it has no Triton on a CPU and uses torch
operations there either way). A TRL without that name is left alone: TRL 1.16 is the first that
has it (1.14, the newest for Python 3.10, has no fused LM head), so an older TRL trains on a CPU
at the slower speed above.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

_NAME = "_use_triton"


@contextlib.contextmanager
def labelled_positions_only() -> Iterator[bool]:
    """Within the block, a CPU forward with ``fused_lm_head=True`` projects only labelled
    positions. Yields whether TRL offered the switch (False: nothing was changed)."""
    try:
        from trl.trainer import utils
    except ImportError:
        yield False
        return
    original = getattr(utils, _NAME, None)
    if original is None:
        yield False
        return

    def compact(device) -> bool:
        return device.type == "cpu" or original(device)

    setattr(utils, _NAME, compact)
    try:
        yield True
    finally:
        if getattr(utils, _NAME) is compact:
            setattr(utils, _NAME, original)
