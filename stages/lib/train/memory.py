"""GPU memory per device for one training step: an estimate to check a plan before it starts.

Pure arithmetic, no torch. The accounting is the ZeRO paper's (Rajbhandari et al., 2020) for the
model states, plus the stored activations of a decoder-only transformer and its output logits:

* **weights** ``P x w`` bytes, ``w`` = 4 for fp32 weights, 2 for 16-bit ones;
* **gradients** ``T x w`` (``T`` = trainable parameters: all of them, or the LoRA adapter's);
* **optimizer** AdamW: two moments per trainable parameter (4 bytes each, or 2 in pure bf16),
  plus a 4-byte fp32 master copy when the weights are 16-bit with fp32 master ("mixed", what
  DeepSpeed's ``bf16``/``fp16`` modes and LLaMA-Factory run);
* **reference** (DPO with full fine-tuning): a frozen second copy ``P x w`` (none with LoRA,
  where the reference is the adapter switched off, nor with precomputed reference log-probs);
* ZeRO stage 1 splits the optimizer states over the N GPUs, stage 2 also the gradients, stage 3
  also the weights (the reference copy too: TRL wraps it in the same ZeRO-3 engine);
* **activations** (16-bit, per token and layer): ``2 x (5h + 2kv + 4i)`` bytes kept for the
  backward pass (norm and projection inputs, q/k/v, attention output, the SwiGLU MLP's four
  ``i``-wide tensors; flash/SDPA attention keeps no ``s x s`` scores). With activation
  checkpointing only each layer's input (``2h``) is kept, and one layer at a time is recomputed;
* **logits**: ``tokens x vocab x 10`` bytes (16-bit logits, their fp32 copy for the loss, and the
  fp32 gradient), which at a 128k vocabulary and 16k tokens is about 20 GiB on its own. TRL 1.16
  and later never hold them: their fused LM head (``add_fused_lm_head``) projects one tile of
  4,096 tokens x 32,768 vocabulary rows at a time and accumulates the gradients in fp32; with
  ``fused_lm_head`` this part is that tile (16-bit, and its fp32 gradient in place, 6 bytes per
  entry) plus the fp32 gradient of the hidden states (``tokens x h x 4``) and, when the head
  trains (full fine-tuning), of its weight (``vocab x h x 4``): :func:`lm_head_bytes`;
* **overhead**: 10 % of the above for allocator fragmentation and communication buckets, plus
  1 GiB of CUDA context.

Tokens per device per micro-step = ``batch x seq_len`` (DPO: twice that, chosen and rejected go
through one forward pass). ``seq_len`` is the longest sequence allowed (``max_length``), so the
estimate is for the worst micro-batch, the one that decides whether training runs out of memory.

Worked example: Llama-3-8B (8.03e9 parameters, h=4096, kv=1024, i=14336, 32 layers, vocab
128,256), full fine-tuning in mixed precision (16 bytes of model state per parameter), the
paper's SFT micro-batch 2 x 8192 tokens with activation checkpointing, on 8 GPUs:

=========================  ========  ========  ========  ========
per GPU (GiB)               ZeRO-0    ZeRO-1    ZeRO-2    ZeRO-3
=========================  ========  ========  ========  ========
weights (2 B)                14.96     14.96     14.96      1.87
gradients (2 B)              14.96     14.96      1.87      1.87
optimizer (4 + 4 + 4 B)      89.75     11.22     11.22     11.22
activations                   6.44      6.44      6.44      6.44
logits                       19.57     19.57     19.57     19.57
total (x1.1 + 1 GiB)        161.2      74.9      60.5      46.1
=========================  ========  ========  ========  ========

Hand check of two cells: weights 8,030,261,248 x 2 B / 2^30 = 14.96 GiB; ZeRO-3 optimizer
8,030,261,248 x 12 B / 8 / 2^30 = 11.22 GiB. Logits: 2 x 8192 tokens x 128,256 x 10 B = 19.57
GiB. So plain data parallelism (ZeRO-0) cannot train it on 80 GB GPUs; ZeRO-1 only just fits.
DPO at the paper's settings (batch 1, chosen + rejected, a frozen reference copy) needs
177.7 / 91.3 / 76.9 / 48.1 GiB at ZeRO-0/1/2/3: on 80 GB GPUs only ZeRO-3 leaves headroom,
which is why the paper (and ``conf/deepspeed/zero3_bf16.json``) uses ZeRO-3 for both.

With TRL's fused LM head the logits row is 2.96 GiB instead (4,096 x 32,768 x 6 B + 16,384 x
4,096 x 4 B + 128,256 x 4,096 x 4 B), every total 18.3 GiB lower: SFT 143.0 / 56.6 / 42.2 /
27.8 GiB, DPO 159.4 / 73.0 / 58.6 / 29.8 GiB. ZeRO-0 still cannot train it; ZeRO-1 fits both.

    >>> shape = PRESETS["llama3-8b"]
    >>> est = estimate(shape, precision="mixed", zero_stage=3, gpus=8, batch=2, seq_len=8192,
    ...                activation_checkpointing=True)
    >>> round(est.total_gib, 1), est.fits(80)
    (46.1, True)
    >>> estimate(shape, precision="mixed", zero_stage=0, gpus=8, batch=2, seq_len=8192,
    ...          activation_checkpointing=True).fits(80)
    False
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

GIB = 1024 ** 3
PRECISIONS = ("fp32", "mixed", "bf16")
OVERHEAD_FRACTION = 0.10
CUDA_CONTEXT_BYTES = 1 * GIB
LOGIT_BYTES = 10          # 16-bit logits + fp32 copy for the loss + fp32 gradient
FUSED_TILE = (4096, 32768)  # TRL's fused LM head: tokens x vocabulary rows projected at once
FUSED_TILE_BYTES = 6      # the 16-bit tile and its fp32 gradient, computed in place


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a Llama-style decoder that the estimate needs."""

    params: int           # total parameter count
    hidden: int           # h
    layers: int
    intermediate: int     # i, the MLP width
    kv_dim: int           # key/value width: num_key_value_heads x head_dim
    vocab: int

    @classmethod
    def from_hf_config(cls, cfg: dict) -> ModelShape:
        """Sizes from a Hugging Face ``config.json`` (Llama, Mistral, Qwen2, SmolLM2 keys).

        The parameter count is computed from the sizes: embeddings (twice unless tied), per
        layer q/o (``h x h``), k/v (``h x kv``), the three MLP matrices (``h x i``) and two norms.
        """
        h, layers = int(cfg["hidden_size"]), int(cfg["num_hidden_layers"])
        i, vocab = int(cfg["intermediate_size"]), int(cfg["vocab_size"])
        heads = int(cfg["num_attention_heads"])
        kv_heads = int(cfg.get("num_key_value_heads") or heads)
        head_dim = int(cfg.get("head_dim") or h // heads)
        q_dim, kv = heads * head_dim, kv_heads * head_dim
        per_layer = 2 * h * q_dim + 2 * h * kv + 3 * h * i + 2 * h
        embeddings = vocab * h * (1 if cfg.get("tie_word_embeddings") else 2)
        return cls(params=per_layer * layers + embeddings + h, hidden=h, layers=layers,
                   intermediate=i, kv_dim=kv, vocab=vocab)

    def lora_params(self, r: int) -> int:
        """Trainable parameters of a rank-``r`` LoRA on every linear layer of every block.

        >>> PRESETS["llama3-8b"].lora_params(16)
        41943040
        """
        h, i, kv = self.hidden, self.intermediate, self.kv_dim
        per_layer = r * ((h + h) * 2 + (h + kv) * 2 + (h + i) * 3)
        return per_layer * self.layers


PRESETS = {
    # meta-llama/Meta-Llama-3-8B(-Instruct) config.json
    "llama3-8b": ModelShape.from_hf_config(dict(
        hidden_size=4096, num_hidden_layers=32, intermediate_size=14336, vocab_size=128256,
        num_attention_heads=32, num_key_value_heads=8, tie_word_embeddings=False)),
    # HuggingFaceTB/SmolLM2-135M-Instruct (the CPU demo's generator)
    "smollm2-135m": ModelShape.from_hf_config(dict(
        hidden_size=576, num_hidden_layers=30, intermediate_size=1536, vocab_size=49152,
        num_attention_heads=9, num_key_value_heads=3, tie_word_embeddings=True)),
}


def load_shape(spec: str) -> ModelShape:
    """A preset name (``llama3-8b``), a checkpoint directory, or a ``config.json`` path.

    Raises ``ValueError`` with what was expected.
    """
    if spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise ValueError(f"{spec!r} is neither a preset ({', '.join(PRESETS)}) nor a model "
                         "directory or config.json that exists")
    cfg = json.loads(path.read_text())
    missing = [k for k in ("hidden_size", "num_hidden_layers", "intermediate_size",
                           "vocab_size", "num_attention_heads") if k not in cfg]
    if missing:
        raise ValueError(f"{path}: not a decoder config this estimate understands "
                         f"(missing {', '.join(missing)})")
    return ModelShape.from_hf_config(cfg)


@dataclass(frozen=True)
class Estimate:
    """Bytes per GPU by kind; ``total`` adds the overhead."""

    weights: float
    gradients: float
    optimizer: float
    reference: float
    activations: float
    logits: float
    overhead: float

    @property
    def total(self) -> float:
        return sum(getattr(self, f.name) for f in fields(self))

    @property
    def total_gib(self) -> float:
        return self.total / GIB

    def fits(self, gpu_gib: float) -> bool:
        return self.total <= gpu_gib * GIB

    def describe(self) -> str:
        """One line: the total and its parts in GiB (parts that are zero left out)."""
        parts = ", ".join(f"{f.name} {getattr(self, f.name) / GIB:.1f}" for f in fields(self)
                          if getattr(self, f.name))
        return f"{self.total_gib:.1f} GiB per GPU ({parts})"


def state_bytes(precision: str) -> tuple[int, int, int]:
    """(weight, gradient, optimizer) bytes per parameter for a precision.

    >>> state_bytes("fp32"), state_bytes("mixed"), state_bytes("bf16")
    ((4, 4, 8), (2, 2, 12), (2, 2, 4))
    """
    if precision == "fp32":
        return 4, 4, 8          # fp32 weights (bf16 autocast or not), fp32 Adam moments
    if precision == "mixed":
        return 2, 2, 12         # 16-bit weights; fp32 master + two fp32 moments
    if precision == "bf16":
        return 2, 2, 4          # pure bf16: torch AdamW keeps its moments in the weights' dtype
    raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def activation_bytes(shape: ModelShape, tokens: int, checkpointing: bool) -> int:
    """Stored 16-bit activations of all layers for ``tokens`` tokens (see the module docstring).

    >>> activation_bytes(PRESETS["llama3-8b"], 16384, True) / GIB
    6.4375
    """
    per_token_layer = 2 * (5 * shape.hidden + 2 * shape.kv_dim + 4 * shape.intermediate)
    if not checkpointing:
        return tokens * shape.layers * per_token_layer
    return tokens * shape.layers * 2 * shape.hidden + tokens * per_token_layer


def lm_head_bytes(shape: ModelShape, tokens: int, fused: bool, head_trains: bool) -> int:
    """The output projection's memory for ``tokens`` tokens: the whole logits (``tokens x vocab x
    10``), or with TRL's fused LM head one tile and the fp32 gradient accumulators.

    >>> round(lm_head_bytes(PRESETS["llama3-8b"], 16384, False, True) / GIB, 2)
    19.57
    >>> round(lm_head_bytes(PRESETS["llama3-8b"], 16384, True, True) / GIB, 2)
    2.96
    """
    if not fused:
        return tokens * shape.vocab * LOGIT_BYTES
    tile = min(tokens, FUSED_TILE[0]) * min(shape.vocab, FUSED_TILE[1]) * FUSED_TILE_BYTES
    return tile + tokens * shape.hidden * 4 + (shape.vocab * shape.hidden * 4 if head_trains else 0)


def estimate(shape: ModelShape, *, precision: str = "mixed", zero_stage: int = 0, gpus: int = 1,
             batch: int = 1, seq_len: int = 2048, activation_checkpointing: bool = True,
             lora_r: int | None = None, reference_model: bool = False,
             sequences_per_example: int = 1, fused_lm_head: bool = False) -> Estimate:
    """GPU memory per device for one training micro-step.

    ``lora_r`` None is full fine-tuning; ``reference_model`` adds DPO's frozen copy (full
    fine-tuning only); ``sequences_per_example`` is 2 for DPO (chosen and rejected);
    ``fused_lm_head``: the trainer never holds the whole logits (TRL 1.16 and later).

    >>> e = estimate(PRESETS["llama3-8b"], precision="mixed", zero_stage=0, gpus=8, batch=2,
    ...              seq_len=8192)
    >>> round(e.weights / GIB, 2), round(e.optimizer / GIB, 2)
    (14.96, 89.75)
    """
    if zero_stage not in (0, 1, 2, 3):
        raise ValueError(f"zero_stage must be 0, 1, 2 or 3, got {zero_stage}")
    if gpus < 1 or batch < 1 or seq_len < 1:
        raise ValueError(f"gpus, batch and seq_len must be >= 1, got {gpus}, {batch}, {seq_len}")
    w, g, o = state_bytes(precision)
    trainable = shape.params if lora_r is None else shape.lora_params(lora_r)
    split = {k: (gpus if zero_stage >= k else 1) for k in (1, 2, 3)}
    weights = shape.params * w / split[3]
    if lora_r is not None:          # the adapter itself (the frozen base is counted above)
        weights += trainable * w / split[3]
    reference = shape.params * w / split[3] if reference_model and lora_r is None else 0.0
    tokens = batch * seq_len * sequences_per_example
    parts = dict(weights=weights, gradients=trainable * g / split[2],
                 optimizer=trainable * o / split[1], reference=reference,
                 activations=float(activation_bytes(shape, tokens, activation_checkpointing)),
                 logits=float(lm_head_bytes(shape, tokens, fused_lm_head, lora_r is None)))
    overhead = OVERHEAD_FRACTION * sum(parts.values()) + CUDA_CONTEXT_BYTES
    return Estimate(**parts, overhead=overhead)


DEFAULT_FIXES: list[tuple[str, dict]] = [
    ("activation checkpointing on", {"activation_checkpointing": True}),
    ("ZeRO stage 1", {"zero_stage": 1, "precision": "mixed"}),
    ("ZeRO stage 2", {"zero_stage": 2, "precision": "mixed"}),
    ("ZeRO stage 3", {"zero_stage": 3, "precision": "mixed"}),
    ("per-device batch 1", {"batch": 1}),
    ("LoRA r=16", {"lora_r": 16}),
]


def smallest_fit(shape: ModelShape, gpu_gib: float, fixes: list[tuple[str, dict]] | None = None,
                 **kwargs) -> str | None:
    """The label of the first change in ``fixes`` that makes the plan fit, or None.

    Each change keeps the earlier ones (checkpointing, then ZeRO over the same GPUs with
    DeepSpeed's mixed precision, then batch 1, then LoRA); changes that would not change anything
    (a lower ZeRO stage than the current one, a setting already on) are skipped.

    >>> smallest_fit(PRESETS["llama3-8b"], 80, precision="mixed", zero_stage=0, gpus=8,
    ...              batch=2, seq_len=8192)
    'ZeRO stage 1'
    """
    trial = dict(kwargs)
    for label, change in DEFAULT_FIXES if fixes is None else fixes:
        if change.get("zero_stage", 99) <= trial.get("zero_stage", 0):
            continue
        if all(trial.get(k) == v for k, v in change.items()):
            continue
        trial.update(change)
        if estimate(shape, **trial).fits(gpu_gib):
            return label
    return None
