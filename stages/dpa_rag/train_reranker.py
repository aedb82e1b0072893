"""Stage ``dpa_rag.train_reranker``: external alignment, the reranker trained on the reader's
preference knowledge with three objectives weighted per step by MGDA-UB.

Seed step: ``train_bge_joined.py`` (SEEDS §3.2 step 5): BGE + a 2-way head on [CLS]
(:mod:`stages.dpa_rag.reranker_model`), AdamW lr 1e-5 (eps 1e-6, no weight decay: the
defaults of the seed's ``transformers.AdamW``) with no scheduler, batch 4, 10 epochs,
seed 42, 512 tokens, all three losses (:mod:`stages.dpa_rag.losses`) combined as Σ α_i·L_i with
α from the min-norm solver (:mod:`stages.dpa_rag.mgda`) on the losses' gradients w.r.t. the
encoder (not the head), α held constant. After each epoch: precision / recall / F1 of the
positive class on the train and valid rows' point-wise pairs; the epoch with the best valid F1 is
kept. Documents are rendered ``" Title: {title} Content: {text}"`` as the seed's strings were.

Fixes relative to the seed:
- its final "test" pass read the valid file (``--test_data_path`` was ignored), so its "test"
  numbers were valid numbers. This step reports valid P/R/F1 under their own name and has no test
  pass: the held-out evaluation is the reader's, downstream;
- its F1 crashed on 0/0 (no true positive with both kinds of error) and it saved no weights when
  the valid F1 stayed 0 (it kept an epoch only when F1 > 0). Here an undefined F1 is 0 and the
  first epoch is kept until a later one does strictly better;
- the head's width is the encoder's ``hidden_size`` (the seed hard-coded 1024).
Like the seed's data loader, the epoch's last batch may be smaller than ``batch_size``.

Checkpoints (model, optimizer, RNG, history) go to the step's scratch directory after every
epoch and every ``save_steps`` steps; a rerun resumes from the last one. With ``keep:
best_valid_f1`` the best epoch's weights are kept there too (``best.pt``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Literal

from annotated_types import Ge, Gt

from orchestrator.api import ConfigError, DataError, StageContext, nonsemantic, stage
from stages.dpa_rag.schemas import RerankerData
from stages.lib.data.row_template import RowTemplate
from stages.schemas import Model

LOSSES = ("cls", "rank", "scl")


@dataclass
class RerankerTrainConfig:
    # objectives (seed flags --cls_loss --rank_loss --scl_loss: the paper uses all three)
    losses: list[Literal["cls", "rank", "scl"]] = field(default_factory=lambda: list(LOSSES))
    weighting: Literal["mgda", "equal"] = "mgda"    # paper: MGDA-UB; equal: α_i = 1/n
    lr: Annotated[float, Gt(0)] = 1e-5              # paper: AdamW 1e-5, no scheduler
    batch_size: Annotated[int, Ge(1)] = 4           # paper: 4 queries per step
    epochs: Annotated[int, Ge(1)] = 10              # paper: 10
    max_steps: Annotated[int, Ge(0)] = 0            # > 0: stop after this many steps
    seed: Annotated[int, Ge(0)] = 42  # paper: 42
    max_length: Annotated[int, Ge(8)] = 512         # paper: model_max_length 512
    temperature: Annotated[float, Gt(0)] = 0.07     # paper: SupConLoss temperature 0.07
    base_temperature: Annotated[float, Gt(0)] = 0.07  # paper: SupConLoss base_temperature 0.07
    passage_template: RowTemplate = " Title: {title} Content: {text}"   # paper: the document string
    # paper: the [CLS] state (BGE is trained so); mean: for encoders trained with mean pooling
    pooling: Literal["cls", "mean"] = "cls"
    # paper: the epoch with the best valid F1 of the positive class; last: the final weights
    keep: Literal["best_valid_f1", "last"] = "best_valid_f1"
    eval_batch_size: Annotated[int, Ge(1)] = nonsemantic(32)
    logging_steps: Annotated[int, Ge(1)] = nonsemantic(10)
    save_steps: Annotated[int, Ge(0)] = nonsemantic(500)  # also checkpoint mid-epoch (0: no)

    def __post_init__(self):
        if not self.losses:
            raise ConfigError("losses: name at least one of cls, rank, scl")
        if len(set(self.losses)) != len(self.losses):
            raise ConfigError(f"losses: {self.losses} names a loss twice")


@stage("dpa_rag.train_reranker", version=2)
def train_reranker(data: RerankerData, model: Model, cfg: RerankerTrainConfig,
                   ctx: StageContext) -> Model:
    """The aligned reranker (encoder + head, see ``reranker_model``) trained from the encoder
    checkpoint ``model``, with ``training_stats.json``."""
    import json

    import torch

    from stages.dpa_rag import reranker_model
    from stages.lib.train import torch_state

    rows = data.rows()
    train = [r for r in rows if r["split"] == "train"]
    valid = [r for r in rows if r["split"] == "valid"]
    names = [n for n in LOSSES if n in cfg.losses]
    _check_rows(train, valid, names, cfg, ctx.step)

    torch.manual_seed(cfg.seed)                 # the head's initialisation, dropout
    reranker = reranker_model.build(model.path, cfg.passage_template, cfg.max_length, ctx.device,
                                    cfg.pooling)
    optimizer = _optimizer(reranker.parameters(), cfg.lr)
    per_epoch = math.ceil(len(train) / cfg.batch_size)
    total = per_epoch * cfg.epochs
    if cfg.max_steps:
        total = min(total, cfg.max_steps)

    ckpt, best_file = ctx.scratch / "checkpoint.pt", ctx.scratch / "best.pt"
    state = _resume(ckpt, reranker, optimizer, ctx.log)
    start, history, epochs = state["step"], state["history"], state["epochs"]
    best = _best_record(best_file, ctx.log) if cfg.keep == "best_valid_f1" else None
    if start:
        ctx.log.info("train_reranker: resuming at step %d of %d", start, total)
    ctx.log.info("train_reranker: %d train / %d valid rows, %d steps (%d per epoch), losses %s "
                 "weighted by %s", len(train), len(valid), total, per_epoch, names, cfg.weighting)

    reranker.train()
    batches = _batches(train, cfg.batch_size, cfg.seed, start)
    for step in ctx.progress(range(start, total), desc="train reranker"):
        epoch, batch = next(batches)
        losses = _batch_losses(reranker, batch, names, cfg)
        parts = {n: loss.item() for n, loss in losses.items()}
        if not all(math.isfinite(v) for v in parts.values()):
            raise RuntimeError(f"train_reranker: non-finite loss at step {step + 1}: {parts}")
        alpha = _update(reranker, optimizer, list(losses.values()), cfg.weighting)
        loss = sum(a * v for a, v in zip(alpha, parts.values()))
        history.append({"step": step + 1, "epoch": epoch + 1, "loss": loss, "parts": parts,
                        "alphas": dict(zip(names, alpha))})
        if (step + 1) % cfg.logging_steps == 0 or step + 1 == total:
            ctx.log.info("step %d/%d loss %.4f (%s) alpha (%s)", step + 1, total, loss,
                         ", ".join(f"{n} {v:.4f}" for n, v in parts.items()),
                         ", ".join(f"{n} {a:.3f}" for n, a in zip(names, alpha)))

        epoch_end = (step + 1) % per_epoch == 0 or step + 1 == total
        if epoch_end:
            stats = {"epoch": epoch + 1, "step": step + 1,
                     "train": _evaluate(reranker, train, cfg, ctx),
                     "valid": _evaluate(reranker, valid, cfg, ctx) if valid else None}
            epochs.append(stats)
            ctx.log.info("epoch %d: train P/R/F1 %s, valid P/R/F1 %s", epoch + 1,
                         _prf_text(stats["train"]), _prf_text(stats["valid"]))
            if best is not None and stats["valid"]["f1"] > best["f1"]:   # ties: the earlier
                best = {"epoch": epoch + 1, "f1": stats["valid"]["f1"]}
                torch_state.save({**best, "encoder": reranker.encoder.state_dict(),
                                  "head": reranker.head.state_dict()}, best_file)
        mid_save = cfg.save_steps and (step + 1) % cfg.save_steps == 0
        if (epoch_end or mid_save) and step + 1 < total:
            torch_state.save({"step": step + 1, "history": history, "epochs": epochs,
                              "encoder": reranker.encoder.state_dict(),
                              "head": reranker.head.state_dict(),
                              "optimizer": optimizer.state_dict(),
                              "rng": torch_state.rng_state()}, ckpt)

    kept = _restore_best(reranker, best, best_file, epochs, cfg, ctx)
    out = ctx.new_dir("model")
    reranker_model.save(reranker, out)
    (out / "training_stats.json").write_text(json.dumps({
        "losses": names, "weighting": cfg.weighting, "steps": total, "steps_per_epoch": per_epoch,
        "train_rows": len(train), "valid_rows": len(valid), "kept": kept, "epochs": epochs,
        "history": history}, indent=1))
    return out


def _restore_best(reranker, best: dict | None, best_file, epochs: list[dict],
                  cfg: RerankerTrainConfig, ctx: StageContext) -> dict:
    """Load the best epoch's weights back when ``keep: best_valid_f1``; the kept epoch."""
    import torch

    if best is None or best["epoch"] is None:
        return {"rule": cfg.keep, "epoch": epochs[-1]["epoch"] if epochs else None}
    saved = torch.load(best_file, map_location="cpu", weights_only=False)
    reranker.encoder.load_state_dict(saved["encoder"])
    reranker.head.load_state_dict(saved["head"])
    ctx.log.info("keeping epoch %d (valid F1 %.4f)", best["epoch"], best["f1"])
    return {"rule": cfg.keep, "epoch": best["epoch"], "valid_f1": best["f1"]}


def _check_rows(train: list[dict], valid: list[dict], names: list[str],
                cfg: RerankerTrainConfig, step: str) -> None:
    """DataError for data this step cannot train on, naming the setting to change."""
    where = f"dpa_rag.train_reranker (step '{step}')"
    if not train:
        raise DataError(f"{where}: no training rows (split == 'train'; {len(valid)} valid)",
                        hint="check the input of the step that builds the RerankerData, and its "
                             "valid_fraction (rows of the queries it holds out are 'valid')")
    if len(train) < cfg.batch_size:
        raise DataError(f"{where}: {len(train)} training rows, fewer than batch_size "
                        f"{cfg.batch_size}",
                        hint=f"lower steps.{step}.batch_size to {len(train)} or less; with so few "
                             "rows, more training questions help more (the step that builds the "
                             "RerankerData warned why it made few rows, if it did)")
    if cfg.keep == "best_valid_f1" and not valid:
        raise DataError(f"{where}: keep: best_valid_f1 needs valid rows (split == 'valid'); "
                        f"there are none", hint=f"set steps.{step}.keep: last")
    for row in train + valid:
        if row["cls_doc"] is None or row["cls_label"] not in (0, 1):
            raise DataError(f"{where}: row {row['id']!r} ({row['split']}) has no point-wise pair "
                            f"(cls_doc, cls_label in {{0, 1}}): label {row['cls_label']!r}")
    for row in train:
        lacks = None
        if "rank" in names and len(row["rank_list"] or []) < 2:
            lacks = "rank", "at least 2 documents in rank_list"
        pos, neg = len(row["positive"] or []), len(row["negative"] or [])
        if "scl" in names and not (pos and neg and pos + neg >= 3):
            # with one of each, no document has a same-label partner: the loss is constantly 0,
            # its gradient too, and MGDA would give it all the weight (nothing would train)
            lacks = "scl", "a positive, a negative, and two documents of one kind"
        if lacks:
            raise DataError(f"{where}: train row {row['id']!r} lacks what the {lacks[0]} loss "
                            f"needs: {lacks[1]}", hint=f"fix the data step, or drop "
                            f"{lacks[0]!r} from steps.{step}.losses")


def _batches(rows: list[dict], batch_size: int, seed: int, start: int):
    """(epoch, rows) for every step from ``start`` on: each epoch a seeded shuffle, cut in
    batches (the last may be smaller), so a resumed run sees the batches it would have seen."""
    import random

    per_epoch = math.ceil(len(rows) / batch_size)
    epoch, skip = divmod(start, per_epoch)
    while True:
        order = list(range(len(rows)))
        random.Random(seed * 1000 + epoch).shuffle(order)
        for b in range(skip, per_epoch):
            yield epoch, [rows[i] for i in order[b * batch_size:(b + 1) * batch_size]]
        epoch, skip = epoch + 1, 0


def _batch_losses(reranker, batch: list[dict], names: list[str], cfg: RerankerTrainConfig):
    """The enabled losses of one batch, by name, in ``names`` order."""
    import torch

    from stages.dpa_rag.losses import cls_loss, rank_loss, scl_loss
    from stages.dpa_rag.reranker_model import render

    def pairs(column_lists):
        queries, passages, sizes = [], [], []
        for row, docs in zip(batch, column_lists):
            queries += [row["query"]] * len(docs)
            passages += [render(cfg.passage_template, d) for d in docs]
            sizes.append(len(docs))
        return queries, passages, sizes

    out = {}
    if "cls" in names:
        q, p, _ = pairs([[r["cls_doc"]] for r in batch])
        labels = torch.tensor([r["cls_label"] for r in batch], device=reranker.device)
        out["cls"] = cls_loss(reranker.logits(q, p), labels)
    if "rank" in names:
        q, p, sizes = pairs([r["rank_list"] for r in batch])
        out["rank"] = rank_loss(reranker.logits(q, p)[:, 1].split(sizes))
    if "scl" in names:
        q, p, sizes = pairs([list(r["positive"]) + list(r["negative"]) for r in batch])
        labels = [torch.tensor([1] * len(r["positive"]) + [0] * len(r["negative"]),
                               device=reranker.device) for r in batch]
        out["scl"] = scl_loss(reranker.embed(q, p).split(sizes), labels, cfg.temperature,
                              cfg.base_temperature)
    return out


def _update(reranker, optimizer, losses: list, weighting: str) -> list[float]:
    """One optimizer step on Σ α_i·L_i; returns α. With MGDA, each loss's gradient is taken
    once (w.r.t. every parameter), α comes from their Gram matrix over the encoder's
    parameters only, and the parameters' gradients are set to Σ α_i·∇L_i (the gradient of the
    weighted loss with α constant, without a fourth backward pass)."""
    import torch

    from stages.dpa_rag.mgda import combined, gram, min_norm_weights

    encoder = [p for p in reranker.encoder.parameters() if p.requires_grad]
    params = encoder + [p for p in reranker.head.parameters() if p.requires_grad]
    optimizer.zero_grad()
    if weighting == "equal" or len(losses) == 1:
        alpha = [1.0 / len(losses)] * len(losses)
        sum(a * loss for a, loss in zip(alpha, losses)).backward()
    else:
        grads = [torch.autograd.grad(loss, params, retain_graph=i < len(losses) - 1,
                                     allow_unused=True) for i, loss in enumerate(losses)]
        alpha = min_norm_weights(gram([g[:len(encoder)] for g in grads])).tolist()
        for p, grad in zip(params, combined(alpha, grads)):
            p.grad = grad
    optimizer.step()
    return alpha


def _optimizer(params, lr: float):
    """The seed's optimiser: ``transformers.AdamW(model.parameters(), lr=...)``
    (train_bge_joined.py) at that class's defaults, eps 1e-6 and no weight decay (torch's AdamW
    defaults are eps 1e-8 and weight decay 0.01). One difference is left: transformers adds eps
    before the bias correction, so its effective eps is eps / sqrt(1 - 0.999^t) (31 x 1e-6 at
    step 1, 1.26 x 1e-6 at step 1,000)."""
    import torch

    return torch.optim.AdamW(params, lr=lr, eps=1e-6, weight_decay=0.0)


def _evaluate(reranker, rows: list[dict], cfg: RerankerTrainConfig, ctx: StageContext) -> dict:
    """Precision, recall and F1 of the positive class (1) on the rows' point-wise pairs, the
    prediction being the larger logit; an undefined ratio (0/0) is 0."""
    from stages.dpa_rag.reranker_model import predict_logits, render

    logits = predict_logits(reranker, [r["query"] for r in rows],
                            [render(cfg.passage_template, r["cls_doc"]) for r in rows],
                            cfg.eval_batch_size)
    pred = logits.argmax(1).tolist()
    gold = [r["cls_label"] for r in rows]
    tp = sum(1 for p, g in zip(pred, gold) if p == 1 and g == 1)
    fp = sum(1 for p, g in zip(pred, gold) if p == 1 and g == 0)
    fn = sum(1 for p, g in zip(pred, gold) if p == 0 and g == 1)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "rows": len(rows),
            "predicted_aligned": sum(pred)}


def _prf_text(stats: dict | None) -> str:
    if stats is None:
        return "-"
    return f"{stats['precision']:.3f}/{stats['recall']:.3f}/{stats['f1']:.3f}"


def _resume(ckpt, reranker, optimizer, log) -> dict:
    """The scratch checkpoint's {step, history, epochs}, its states loaded; a fresh start
    without one, or with one that cannot be read (logged)."""
    from stages.lib.train import torch_state

    state = torch_state.load(ckpt, log, "train_reranker")
    if state is None:
        return {"step": 0, "history": [], "epochs": []}
    reranker.encoder.load_state_dict(state["encoder"])
    reranker.head.load_state_dict(state["head"])
    optimizer.load_state_dict(state["optimizer"])
    torch_state.restore_rng(state)
    return state


def _best_record(best_file, log) -> dict:
    """The best epoch so far, from ``best.pt`` itself (written atomically with its weights, so
    the record and the weights always agree, even after a crash between two saves)."""
    from stages.lib.train import torch_state

    saved = torch_state.load(best_file, log, "train_reranker")
    if saved is None:
        return {"epoch": None, "f1": -1.0}
    return {"epoch": saved["epoch"], "f1": saved["f1"]}
