"""``dpa_rag.train_reranker`` on a tiny random-init encoder, its per-step MGDA update, resume,
and ``dpa_rag.rerank`` with the trained model."""

import doctest
import json
import logging

import pytest
import torch
from safetensors.torch import load_file

from orchestrator.api import ConfigError, DataError, StageContext
from orchestrator.stage_config import check_step_config
from stages.dpa_rag import reranker_model
from stages.dpa_rag.mgda import min_norm_weights
from stages.dpa_rag.rerank import RerankConfig, rerank
from stages.dpa_rag.schemas import RerankerData
from stages.dpa_rag.train_reranker import RerankerTrainConfig, _update, train_reranker
from stages.schemas import Model, Retrieved
from tests.stages.conftest import PASSAGES, retrieved_rows

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = {"epochs": 2, "max_length": 48, "logging_steps": 1}


def reranker_rows(n_train=8, n_valid=4):
    """Query i: its own passage is aligned, the next ones worse, in order."""
    def row(i, split):
        doc = [{**PASSAGES[(i + j) % 40], "score": 1.0} for j in range(4)]
        train = split == "train"
        return {"id": f"q{i}", "query": f"Where was Entity {i} born?", "split": split,
                "cls_doc": doc[0] if i % 2 else doc[3], "cls_label": i % 2,
                "rank_list": doc if train else [], "positive": doc[:2] if train else [],
                "negative": doc[2:] if train else []}
    return [row(i, "train") for i in range(n_train)] + \
        [row(i, "valid") for i in range(n_train, n_train + n_valid)]


def make_ctx(tmp_path, name, scratch="scratch", cls=StageContext):
    return cls(name, 0, 1, tmp_path / f"work-{name}", tmp_path / scratch,
               logging.getLogger(f"test.{name}"))


def train(model_env, models, ctx, rows=None, **cfg):
    art, _ = model_env
    data = art(RerankerData, rows if rows is not None else reranker_rows())
    return train_reranker(data, art(Model, str(models["enc"])),
                          RerankerTrainConfig(**{**FAST, **cfg}), ctx)


def test_doctests():
    assert doctest.testmod(reranker_model).failed == 0


def test_config_defaults_are_the_papers_and_choices_are_checked():
    _, cfg = check_step_config(RerankerTrainConfig, {}, "steps.train_reranker")
    assert (cfg.losses, cfg.weighting, cfg.lr, cfg.batch_size, cfg.epochs, cfg.seed) == \
        (["cls", "rank", "scl"], "mgda", 1e-5, 4, 10, 42)
    assert (cfg.max_length, cfg.temperature, cfg.keep) == (512, 0.07, "best_valid_f1")
    assert cfg.passage_template == " Title: {title} Content: {text}"
    with pytest.raises(ConfigError, match="losses"):
        check_step_config(RerankerTrainConfig, {"losses": ["cls", "listwise"]}, "steps.t")
    with pytest.raises(ConfigError, match="at least one"):
        RerankerTrainConfig(losses=[])
    with pytest.raises(ConfigError, match="twice"):
        RerankerTrainConfig(losses=["cls", "cls"])


def test_the_optimiser_is_the_seeds_transformers_adamw(model_env, models, tmp_path,
                                                      monkeypatch):
    """train_bge_joined.py: ``transformers.AdamW(model.parameters(), lr=...)``, whose defaults
    are eps 1e-6 and no weight decay (torch's AdamW: 1e-8 and 0.01)."""
    made = []

    class Spy(torch.optim.AdamW):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self.defaults)

    monkeypatch.setattr(torch.optim, "AdamW", Spy)
    train(model_env, models, make_ctx(tmp_path, "opt"), max_steps=1, keep="last")
    (got,) = made
    assert (got["lr"], got["betas"], got["eps"], got["weight_decay"]) == \
        (1e-5, (0.9, 0.999), 1e-6, 0.0)


class _Fake:
    """A stand-in reranker: any two modules called encoder and head."""

    def __init__(self):
        torch.manual_seed(0)
        self.encoder, self.head = torch.nn.Linear(3, 2), torch.nn.Linear(2, 2)


def _losses(fake, x):
    h = fake.encoder(x)
    return [fake.head(h).pow(2).mean(), (h[:, 0] - 1).pow(2).mean(), h.sum() / 10]


def test_mgda_update_descends_on_the_weighted_sum_with_encoder_gram_weights():
    x = torch.tensor([[1.0, 2.0, 0.0], [0.0, -1.0, 1.0]])
    fake = _Fake()
    before = [p.detach().clone() for p in (*fake.encoder.parameters(), *fake.head.parameters())]
    # by hand: each loss's gradient, the Gram matrix over the encoder's parameters only
    grads = [torch.autograd.grad(loss, [*fake.encoder.parameters(), *fake.head.parameters()],
                                 retain_graph=True, allow_unused=True)
             for loss in _losses(fake, x)]
    flat = [torch.cat([g.reshape(-1) for g in gs[:2]]) for gs in grads]
    gram = [[float(a @ b) for b in flat] for a in flat]
    alpha = min_norm_weights(gram)

    got = _update(fake, torch.optim.SGD(
        [*fake.encoder.parameters(), *fake.head.parameters()], lr=1.0), _losses(fake, x), "mgda")
    assert got == pytest.approx(alpha.tolist()) and sum(got) == pytest.approx(1.0)
    after = [*fake.encoder.parameters(), *fake.head.parameters()]
    for k, (p0, p1) in enumerate(zip(before, after)):
        step = sum(a * g[k] for a, g in zip(alpha, grads) if g[k] is not None)
        assert torch.allclose(p1.detach(), p0 - step, atol=1e-6), k


def test_equal_weighting_and_one_loss(model_env, models, tmp_path):
    out = train(model_env, models, make_ctx(tmp_path, "eq"), weighting="equal", max_steps=1,
                keep="last")
    h = json.loads((out / "training_stats.json").read_text())["history"]
    assert h[0]["alphas"] == pytest.approx({"cls": 1 / 3, "rank": 1 / 3, "scl": 1 / 3})
    out = train(model_env, models, make_ctx(tmp_path, "one", "s2"), losses=["rank"],
                max_steps=1, keep="last")
    h = json.loads((out / "training_stats.json").read_text())["history"]
    assert h[0]["alphas"] == {"rank": 1.0} and set(h[0]["parts"]) == {"rank"}


def test_train_then_rerank(model_env, models, tmp_path, caplog):
    art, _ = model_env
    caplog.set_level(logging.INFO)
    out = train(model_env, models, make_ctx(tmp_path, "train"))

    base, tuned = load_file(str(models["enc"] / "model.safetensors")), \
        load_file(str(out / "model.safetensors"))
    assert any(not torch.equal(base[k], tuned[k]) for k in base if k in tuned)
    assert load_file(str(out / "head.safetensors"))["weight"].shape == (2, 32)
    assert json.loads((out / "reranker.json").read_text())["max_length"] == 48
    assert "step 4/4 loss" in caplog.text and "alpha (cls" in caplog.text
    stats = json.loads((out / "training_stats.json").read_text())
    assert [h["step"] for h in stats["history"]] == [1, 2, 3, 4]
    for h in stats["history"]:
        assert set(h["parts"]) == {"cls", "rank", "scl"}
        assert sum(h["alphas"].values()) == pytest.approx(1.0)
        assert min(h["alphas"].values()) >= 0
        assert h["loss"] == pytest.approx(sum(h["alphas"][n] * h["parts"][n] for n in h["parts"]))
    assert [e["epoch"] for e in stats["epochs"]] == [1, 2]
    assert set(stats["epochs"][0]["valid"]) >= {"precision", "recall", "f1"}
    best = max(e["valid"]["f1"] for e in stats["epochs"])
    assert stats["kept"]["valid_f1"] == best and stats["kept"]["rule"] == "best_valid_f1"

    retrieved = art(Retrieved, retrieved_rows(k=6))
    model = art(Model, str(out))
    top3 = art(Retrieved, rerank(retrieved, model, RerankConfig(top_k=3),
                                 make_ctx(tmp_path, "rerank")))
    rows = top3.rows()
    reranker = reranker_model.load(out, "cpu")
    moved = 0
    for before, after in zip(retrieved.rows(), rows):
        texts = [reranker_model.render(reranker.passage_template, d) for d in before["ctxs"]]
        scores = reranker_model.score(reranker, [before["question"]] * 6, texts, 8)
        order = sorted(range(6), key=lambda i: -scores[i])[:3]
        assert [d["id"] for d in after["ctxs"]] == [before["ctxs"][i]["id"] for i in order]
        assert [d["score"] for d in after["ctxs"]] == [before["ctxs"][i]["score"] for i in order]
        assert [d["rerank_score"] for d in after["ctxs"]] == \
            pytest.approx([scores[i] for i in order], abs=1e-5)
        moved += order != [0, 1, 2]
    assert moved, "the reranker should reorder some question's passages"
    every = rerank(retrieved, model, RerankConfig(top_k=None), make_ctx(tmp_path, "all"))
    assert every.num_rows == retrieved.num_rows
    assert all(len(c) == 6 for c in every.column("ctxs").to_pylist())
    again = rerank(top3, model, RerankConfig(top_k=2), make_ctx(tmp_path, "again"))
    assert [[d["id"] for d in c] for c in again.column("ctxs").to_pylist()] == \
        [[d["id"] for d in r["ctxs"][:2]] for r in rows]     # a reranked input: one rerank_score
    # a set named in top_k_by_set keeps its own number (the paper's WebQSP: 2)
    mixed = [{**r, "dataset": "webqsp_test" if i % 2 else "nq"}
             for i, r in enumerate(retrieved_rows(k=6))]
    by_set = rerank(art(Retrieved, mixed), model, RerankConfig(top_k=3, top_k_by_set={"webqsp": 2}),
                    make_ctx(tmp_path, "by_set"))
    assert [len(c) for c in by_set.column("ctxs").to_pylist()] == \
        [2 if i % 2 else 3 for i in range(len(mixed))]
    with pytest.raises(ConfigError, match="not a DPA-RAG reranker"):
        rerank(retrieved, art(Model, str(models["enc"])), RerankConfig(),
               make_ctx(tmp_path, "plain"))


def test_mean_pooling_is_saved_with_the_reranker_and_used_when_scoring(model_env, models,
                                                                      tmp_path):
    out = train(model_env, models, make_ctx(tmp_path, "mean"), pooling="mean", max_steps=1,
                keep="last")
    reranker = reranker_model.load(out, "cpu")
    assert reranker.pooling == "mean"
    q, p = ["Where was Entity 1 born?"] * 2, ["Entity 1 was born in city 1.", "short"]
    mean = reranker.embed(q, p)
    reranker.pooling = "cls"
    assert not torch.allclose(mean, reranker.embed(q, p))   # the setting reaches the vectors


class _Crash(StageContext):
    """Dies after three training steps (after the checkpoint of step 3)."""

    def progress(self, iterable, total=None, desc=None):
        for i, item in enumerate(super().progress(iterable, total, desc)):
            if desc == "train reranker" and i == 3:
                raise RuntimeError("simulated crash")
            yield item


def test_resume_after_a_crash_gives_the_uninterrupted_result(model_env, models, tmp_path,
                                                             caplog):
    caplog.set_level(logging.INFO)
    whole = train(model_env, models, make_ctx(tmp_path, "whole", "s-whole"), save_steps=1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(model_env, models, make_ctx(tmp_path, "crash", "s-crash", _Crash), save_steps=1)
    resumed = train(model_env, models, make_ctx(tmp_path, "again", "s-crash"), save_steps=1)
    assert "resuming at step 3 of 4" in caplog.text
    for name in ("model.safetensors", "head.safetensors"):
        a, b = load_file(str(whole / name)), load_file(str(resumed / name))
        assert all(torch.allclose(a[k], b[k]) for k in a), name
    a, b = (json.loads((d / "training_stats.json").read_text()) for d in (whole, resumed))
    assert [h["loss"] for h in a["history"]] == pytest.approx([h["loss"] for h in b["history"]])
    assert a["epochs"] == b["epochs"] and a["kept"] == b["kept"]


def test_a_checkpoint_that_cannot_be_read_is_logged_and_training_starts_over(
        model_env, models, tmp_path, caplog):
    """A ``checkpoint.pt`` or ``best.pt`` cut short (a disk that filled) stopped every rerun
    with torch's ``PytorchStreamReader failed reading zip archive``, so the step could never
    finish; Reinforced-IR's retriever already started over (one resume file module now)."""
    whole = train(model_env, models, make_ctx(tmp_path, "whole", "s-whole"), save_steps=1)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(model_env, models, make_ctx(tmp_path, "crash", "s-cut", _Crash), save_steps=1)
    for name in ("checkpoint.pt", "best.pt"):
        (tmp_path / "s-cut" / name).write_bytes(b"PK\x03\x04 cut short")
    with caplog.at_level(logging.WARNING):
        again = train(model_env, models, make_ctx(tmp_path, "again", "s-cut"), save_steps=1)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for name in ("checkpoint.pt", "best.pt"):
        assert any(f"s-cut/{name} cannot be read" in m and "training starts over" in m
                   for m in warned), warned
    for name in ("model.safetensors", "head.safetensors"):
        a, b = load_file(str(whole / name)), load_file(str(again / name))
        assert all(torch.allclose(a[k], b[k]) for k in a), name


@pytest.mark.parametrize("rows, cfg, match", [
    ([r for r in reranker_rows() if r["split"] == "valid"], {}, r"no training rows"),
    (reranker_rows(n_train=3), {}, r"3 training rows, fewer than batch_size 4"),
    (reranker_rows(n_valid=0), {}, r"needs valid rows"),
    ([{**r, "negative": r["negative"][:1], "positive": r["positive"][:1]} for r in reranker_rows()],
     {}, r"scl loss needs"),
    ([{**r, "rank_list": r["rank_list"][:1]} for r in reranker_rows()], {}, r"rank loss needs"),
])
def test_data_errors_name_the_step_and_the_setting(model_env, models, tmp_path, rows, cfg,
                                                   match):
    with pytest.raises(DataError, match=match) as err:
        train(model_env, models, make_ctx(tmp_path, "bad"), rows=rows, **cfg)
    assert "step 'bad'" in str(err.value)
    assert "steps.bad." in err.value.hint or "valid_fraction" in err.value.hint
    if "fewer than batch_size" in match:   # the size that fits, and the better remedy
        assert "steps.bad.batch_size to 3 or less" in err.value.hint
        assert "more training questions help more" in err.value.hint
