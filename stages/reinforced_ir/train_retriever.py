"""Stage ``reinforced_ir.train_retriever``: the RLGF update of the retriever.

Seed step: ``finetune/retriever`` (torchrun, SEEDS §5.4–5.5): Contriever, lr 1e-5, 1 epoch,
batch 16 per device, group size 16 with the teacher re-sort, temperature 0.02, ``m3_kd_loss``,
answer alignment at temperature 0.05, the norm regulariser, mean pooling, no normalisation.
The training loop is :mod:`stages.reinforced_ir.bi_encoder`; this file wires it: prepare, resume
point, train, export.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from annotated_types import Ge, Gt, Le

from orchestrator.api import DataError, StageContext, nonsemantic, stage
from stages.reinforced_ir.embed import EncoderConfig
from stages.reinforced_ir.schemas import RetrieverData
from stages.schemas import Model


@dataclass
class RetrieverTrainConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    lr: Annotated[float, Gt(0)] = 1e-5  # paper: 1e-5
    epochs: Annotated[int, Ge(1)] = 1       # paper: 1
    max_steps: Annotated[int, Ge(0)] = 0    # > 0: stop after this many steps
    batch_size: Annotated[int, Ge(1)] = 16  # queries per step (paper: 16 per device)
    group_size: Annotated[int, Ge(1)] = 16  # paper: 16 (positive + 15 negatives)
    temperature: Annotated[float, Gt(0)] = 0.02  # paper: 0.02
    answer_temperature: Annotated[float, Gt(0)] = 0.05  # paper: 0.05 (default)
    loss: Literal["m3_kd", "contrastive"] = "m3_kd"   # paper: m3_kd_loss with distillation
    warmup_ratio: Annotated[float, Ge(0), Le(1)] = 0.0
    weight_decay: Annotated[float, Ge(0)] = 0.0
    seed: Annotated[int, Ge(0)] = 0
    save_steps: Annotated[int, Ge(1)] = nonsemantic(1000)  # paper: every 1,000 steps
    logging_steps: Annotated[int, Ge(1)] = nonsemantic(10)


def _sides(cfg: EncoderConfig):
    """Apply the query prefix and the augmentation side to a batch's texts."""
    from stages.reinforced_ir.bi_encoder import Batch
    from stages.reinforced_ir.fusion import TOPIC_PREFIX

    def apply(batch: Batch) -> Batch:
        aug = [TOPIC_PREFIX + a for a in batch.augmentations]
        if cfg.augmentation_side == "query":
            aug = [cfg.query_prefix + a for a in aug]
        return Batch([cfg.query_prefix + q for q in batch.queries], batch.passages, aug)
    return apply


def _save(ckpt, model, optimizer, scheduler, step: int, history: list[dict]) -> None:
    """A checkpoint a rerun resumes from as if never stopped: the weights, optimizer and
    schedule, the step, the loss history so far, and the RNG states (the encoder trains with
    dropout, so the next steps' masks come from them)."""
    from stages.lib.train import torch_state

    torch_state.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                      "scheduler": scheduler.state_dict(), "step": step,
                      "history": list(history), "rng": torch_state.rng_state()}, ckpt)


def _resume(ckpt, model, optimizer, scheduler, log) -> tuple[int, list[dict]]:
    """(step, history) of the checkpoint at ``ckpt``, its states loaded; (0, []) without one,
    or with one that cannot be read (logged: the training starts over)."""
    from stages.lib.train import torch_state

    state = torch_state.load(ckpt, log, "train_retriever")
    if state is None:
        return 0, []
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch_state.restore_rng(state)
    return int(state["step"]), list(state.get("history") or [])


@stage("reinforced_ir.train_retriever", version=3)
def train_retriever(data: RetrieverData, encoder: Model, cfg: RetrieverTrainConfig,
                    ctx: StageContext) -> Model:
    """The encoder after one RLGF update, saved with its tokenizer and ``training_stats.json``."""
    import json

    import torch
    from transformers import get_linear_schedule_with_warmup

    from stages.reinforced_ir.bi_encoder import Embedder, batches, step_loss

    rows = data.rows()
    usable = [r for r in rows if r["pos"] and r["neg"]]
    if len(usable) < len(rows):
        # a group without negatives has no ranking to learn, and would be shorter than the
        # others (the loss indexes each query's group at r·G + i: later targets would shift)
        ctx.log.warning("train_retriever: %d of %d groups have no positive or no negative and "
                        "are left out", len(rows) - len(usable), len(rows))
    if not usable and rows:
        raise DataError(f"train_retriever: none of the {len(rows)} groups has a negative passage "
                        f"(the mine step found none)",
                        hint="on a small corpus, lower the mine step's fallback_lo/fallback_hi "
                             "(ranks 30-200 in the paper) to ranks the corpus has")
    rows = usable
    if len(rows) < cfg.batch_size:
        raise DataError(f"train_retriever: {len(rows)} training groups, fewer than batch_size "
                        f"{cfg.batch_size} (a batch is whole: the last partial one is dropped, as "
                        f"in the paper)",
                        hint=f"lower batch_size of step '{ctx.step}' (in a repeat block: "
                             f"repeat.<block>.steps.<step>.batch_size), or synthesize more queries")
    torch.manual_seed(cfg.seed)
    enc = cfg.encoder
    embed = Embedder(encoder.path, enc.pooling, enc.normalize, enc.max_length, ctx.device)
    per_epoch = len(rows) // cfg.batch_size
    total = cfg.max_steps or per_epoch * cfg.epochs
    params = [p for p in embed.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)
    ckpt = ctx.scratch / "checkpoint.pt"
    step, history = _resume(ckpt, embed.model, optimizer, scheduler, ctx.log)
    if step:
        ctx.log.info("train_retriever: resuming at step %d of %d", step, total)
    embed.model.train()
    sides = _sides(enc)
    bar = ctx.progress(range(step, total), desc="train retriever")
    it = (b for e in range(cfg.epochs if not cfg.max_steps else 10**9)
          for b in batches(rows, cfg.batch_size, cfg.group_size, cfg.seed, e))
    for _ in range(step):                       # skip what the checkpoint already trained
        next(it)
    for step in bar:
        loss, parts = step_loss(embed, next(it), cfg.group_size, cfg.temperature,
                                cfg.answer_temperature, cfg.loss, sides)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        history.append({"step": step + 1, "loss": loss.item(), **parts})
        if (step + 1) % cfg.logging_steps == 0 or step + 1 == total:
            ctx.log.info("step %d/%d loss %.4f (retrieval %.4f, answer %.4f, norm %.4f)",
                         step + 1, total, loss.item(), parts["retrieval"], parts["answer"], parts["norm"])
        if (step + 1) % cfg.save_steps == 0 and step + 1 < total:
            _save(ckpt, embed.model, optimizer, scheduler, step + 1, history)
    out = ctx.new_dir("model")
    embed.model.save_pretrained(out)
    embed.tokenizer.save_pretrained(out)
    (out / "training_stats.json").write_text(json.dumps(
        {"steps": total, "groups": len(rows), "history": history}, indent=1))
    return out
