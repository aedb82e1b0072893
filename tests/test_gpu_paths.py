"""GPU-only code paths, checked on the CPU: the same logic driven with ``device="cpu"``, fakes
for DeepSpeed's partitioned parameters, and the stage registrations the GPU executors read."""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import os
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# What builds an inference engine in the stage's own process (vLLM, or transformers).
ENGINE_ENTRY_POINTS = {
    "stages.lib.endpoint": {"open_client"},
    "stages.lib.endpoint.client": {"open_client"},
    "stages.lib.models.generation": {"load_generator"},
    "stages.lib.models.reader": {"answer"},
}


def _module_path(module: str) -> Path:
    return Path(importlib.util.find_spec(module).origin)


def _engine_use(module: str, seen: set[str]) -> str | None:
    """The engine entry point ``module`` imports, itself or through a recipe helper module it
    imports (``stages.<recipe>.*`` other than ``stages.lib``, where the entry points live; a
    stage module is in ``seen`` from the start: it answers for its own stages)."""
    seen.add(module)
    for node in ast.walk(ast.parse(_module_path(module).read_text())):
        if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
            continue
        names = {a.name for a in node.names}
        used = names & ENGINE_ENTRY_POINTS.get(node.module, set())
        if used:
            return f"{node.module}.{sorted(used)[0]}"
        if (node.module.startswith("stages.") and not node.module.startswith("stages.lib")
                and node.module not in seen and importlib.util.find_spec(node.module)):
            found = _engine_use(node.module, seen)
            if found:
                return found
    return None


def test_every_stage_that_builds_an_engine_runs_as_one_process():
    # gpus: N > 1 on a "ranks" stage starts N torchrun ranks, each with its own engine on one
    # GPU; an engine stage must be one process that sees all N (tensor parallel).
    from orchestrator.registry import load_stages

    stages = load_stages()
    stage_modules = {s.module for s in stages.values()}
    bad = []
    for name, spec in sorted(stages.items()):
        if not spec.module.startswith("stages."):
            continue
        used = _engine_use(spec.module, stage_modules - {spec.module})
        if used and spec.multi_gpu != "one_process":
            bad.append(f"{name} ({spec.module} uses {used})")
    assert bad == [], ('register these with @stage(..., multi_gpu="one_process"): '
                       + ", ".join(bad))


def test_the_engine_check_finds_the_engine_stages():
    from orchestrator.registry import load_stages

    stages = load_stages()
    stage_modules = {s.module for s in stages.values()}
    engines = {n for n, s in stages.items() if s.module.startswith("stages.")
               and _engine_use(s.module, stage_modules - {s.module})}
    assert {"selfrag.infer", "selfrag.split", "dynamicrag.sample", "infer_topk",
            "rag_instruct.synthesize"} <= engines, engines


# ----------------------------------------------------------------------------- DeepSpeed, one GPU

DIST_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def test_single_process_launch_sets_a_world_of_one_and_restores_the_environment():
    import socket

    from stages.lib.train.hooks import single_process_launch

    env = {"PATH": "/bin", "MASTER_ADDR": "10.0.0.1"}
    with single_process_launch(env):
        assert {k: env[k] for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE")} == {
            "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}
        assert env["MASTER_ADDR"] == "10.0.0.1"        # set by the user: kept
        with socket.socket() as s:                     # the port is free to bind
            s.bind(("127.0.0.1", int(env["MASTER_PORT"])))
    assert env == {"PATH": "/bin", "MASTER_ADDR": "10.0.0.1"}


def test_single_process_launch_leaves_a_launchers_variables_alone():
    from stages.lib.train.hooks import single_process_launch

    launched = {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2", "MASTER_ADDR": "h",
                "MASTER_PORT": "29500"}
    env = dict(launched)
    with single_process_launch(env):
        assert env == launched
    assert env == launched


def test_deepspeed_on_one_gpu_runs_with_the_variables_of_a_world_of_one(tmp_path, monkeypatch):
    # Finetune.prepare on "cuda" with a DeepSpeed config, as a gpus: 1 step runs it (in-process,
    # no torchrun); the CUDA check and the deepspeed package are faked, nothing is trained
    import sys
    import types
    from importlib.machinery import ModuleSpec

    import torch

    from stages.lib.testing.tiny import tiny_causal_lm
    from stages.lib.train import SftConfig, TrainHooks
    from stages.lib.train.finetune import Finetune

    for k in DIST_VARS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    fake = types.ModuleType("deepspeed")
    fake.__spec__ = ModuleSpec("deepspeed", None)
    monkeypatch.setitem(sys.modules, "deepspeed", fake)
    model = tiny_causal_lm(tmp_path / "lm")
    cfg = SftConfig(deepspeed=str(REPO / "conf/deepspeed/zero3_bf16.json"))
    with Finetune("sft", model, tmp_path / "out", cfg, TrainHooks(device="cuda")) as ft:
        ft.prepare()
        assert ft.setup.deepspeed == cfg.deepspeed
        assert (os.environ["RANK"], os.environ["LOCAL_RANK"], os.environ["WORLD_SIZE"]) == (
            "0", "0", "1")
        assert os.environ["MASTER_ADDR"] == "127.0.0.1" and int(os.environ["MASTER_PORT"]) > 0
    assert not [k for k in DIST_VARS if k in os.environ]


# ----------------------------------------------------------------------------- ZeRO-3 parameters

class FakeZero3:
    """DeepSpeed ZeRO-3 as the code under test sees it: a partitioned parameter is an empty
    tensor with ``ds_id``/``ds_numel``; ``zero.GatheredParameters`` makes it whole inside and
    keeps rank 0's writes (``modifier_rank=0``) when it partitions it again."""

    def __init__(self):
        self.gathered: list[tuple[int, object]] = []
        self.zero = types.SimpleNamespace(GatheredParameters=self.gathered_parameters)

    @staticmethod
    def partition(param) -> None:
        import torch

        param.ds_id, param.ds_numel, param.whole = id(param), param.numel(), param.data
        param.data = torch.empty(0, dtype=param.dtype)

    @contextlib.contextmanager
    def gathered_parameters(self, params, modifier_rank=None):
        import torch

        self.gathered.append((len(params), modifier_rank))
        for p in params:
            p.data = p.whole
        yield
        for p in params:
            if modifier_rank is not None:
                p.whole = p.data
            p.data = torch.empty(0, dtype=p.dtype)


def _fake_lm(tied: bool):
    import torch

    class LM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.embed = torch.nn.Embedding(5, 3)
            self.head = torch.nn.Linear(3, 5, bias=False)
            if tied:
                self.head.weight = self.embed.weight

        def get_input_embeddings(self):
            return self.embed

        def get_output_embeddings(self):
            return self.head

    return LM()


@pytest.mark.parametrize("tied", [True, False])
def test_new_rows_from_pieces_under_zero3_are_written_into_the_gathered_weights(tied,
                                                                                monkeypatch):
    import sys

    import torch

    from stages.lib.train.vocab import embeddings_from_pieces

    zero3 = FakeZero3()
    monkeypatch.setitem(sys.modules, "deepspeed", zero3)
    model = _fake_lm(tied)
    tables = list({id(p): p for p in (model.embed.weight, model.head.weight)}.values())
    expected = []
    for weight in tables:
        w = weight.detach().clone()
        w[4] = w[[0, 2]].mean(0)
        expected.append(w)
        FakeZero3.partition(weight)
    embeddings_from_pieces(model, {4: [0, 2]})
    assert zero3.gathered == [(1, 0)] * len(tables)
    for weight, want in zip(tables, expected):
        assert weight.numel() == 0                      # partitioned again
        assert torch.equal(weight.whole, want)


def test_new_rows_from_pieces_without_deepspeed_write_the_weights_directly():
    import torch

    from stages.lib.train.vocab import embeddings_from_pieces

    model = _fake_lm(tied=False)
    embeddings_from_pieces(model, {4: [1]})
    assert torch.equal(model.embed.weight[4], model.embed.weight[1])
    assert torch.equal(model.head.weight[4], model.head.weight[1])


def test_parameter_counts_under_zero3_are_the_full_sizes(tmp_path):
    import torch

    from stages.lib.train import SftConfig, TrainHooks
    from stages.lib.train.finetune import Finetune

    model = torch.nn.Linear(4, 3)                      # 12 + 3
    model.bias.requires_grad_(False)
    for p in model.parameters():
        FakeZero3.partition(p)
    trainer = types.SimpleNamespace(
        model=model, train_dataset=[{}] * 2, remove_callback=lambda cb: None,
        add_callback=lambda cb: None,
        accelerator=types.SimpleNamespace(free_memory=lambda: None))
    with Finetune("sft", tmp_path, tmp_path / "out", SftConfig(), TrainHooks()) as ft:
        ft.build_trainer(lambda setup: (trainer, None), num_examples=2)
        assert (ft.trainable, ft.total) == (12, 15)


# ----------------------------------------------------------------------------- search

def test_exact_search_on_cuda_scores_query_block_queries_at_a_time(monkeypatch):
    # the CUDA branch, run on the CPU: .to(device) keeps the tensor where it is
    import numpy as np
    import torch

    from stages.lib.models.search import exact_search

    rng = np.random.default_rng(0)
    emb = rng.standard_normal((700, 16)).astype(np.float16)
    q = rng.standard_normal((37, 16)).astype(np.float32)
    unblocked = exact_search(q, emb, k=5, block_rows=200, device="cpu")
    monkeypatch.setattr(torch.Tensor, "to", lambda self, *a, **kw: self)
    scored, topk = [], torch.topk

    def recording_topk(scores, *a, **kw):
        scored.append(tuple(scores.shape))
        return topk(scores, *a, **kw)

    monkeypatch.setattr(torch, "topk", recording_topk)
    s, i = exact_search(q, emb, k=5, block_rows=200, query_block=8, device="cuda")
    assert max(rows for rows, _ in scored) == 8
    assert len(scored) == 4 * 5                         # 4 corpus blocks x 5 query blocks
    np.testing.assert_array_equal(i, unblocked[1])
    np.testing.assert_allclose(s, unblocked[0], rtol=1e-5, atol=1e-5)


def test_faiss_search_sets_nprobe_on_every_replica():
    faiss = pytest.importorskip("faiss")
    import numpy as np

    from stages.lib.models.search import faiss_search

    rng = np.random.default_rng(0)
    emb = rng.standard_normal((400, 8)).astype(np.float32)
    replicas, parts = faiss.IndexReplicas(), []
    for _ in range(2):
        ivf = faiss.index_factory(8, "IVF8,Flat", faiss.METRIC_INNER_PRODUCT)
        ivf.train(emb)
        ivf.add(emb)
        replicas.addIndex(ivf)
        parts.append(ivf)
    faiss_search(emb[:3], emb, k=4, nprobe=5, index=replicas)
    assert [faiss.extract_index_ivf(p).nprobe for p in parts] == [5, 5]


def test_faiss_with_gpus_sets_search_parameters_with_its_gpu_parameter_space(monkeypatch):
    # index_cpu_to_all_gpus over several GPUs returns an IndexReplicas of GPU indexes: only
    # GpuParameterSpace sets their nprobe (ParameterSpace raises, and the error was ignored)
    faiss = pytest.importorskip("faiss")
    import numpy as np

    from stages.lib.models.search import faiss_search

    calls = []

    class GpuParameterSpace:
        def set_index_parameter(self, index, name, value):
            calls.append((type(index).__name__, name, value))
            faiss.ParameterSpace().set_index_parameter(index, name, value)

    monkeypatch.setattr(faiss, "GpuParameterSpace", GpuParameterSpace, raising=False)
    emb = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
    replicas = faiss.IndexReplicas()
    flat = faiss.IndexFlatIP(8)
    flat.add(emb)
    replicas.addIndex(flat)
    faiss_search(emb[:2], emb, k=3, nprobe=7, index=replicas)
    assert ("IndexReplicas", "nprobe", 7) in calls
