"""stages.lib.models.generation: batched chat generation on a tiny Llama; seeded sampling; backend choice."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from orchestrator.errors import ConfigError
from stages.lib.models.generation import (TransformersGenerator, _GumbelSampler, load_generator,
                                          row_seed)
from stages.lib.testing.tiny import tiny_causal_lm

CONVS = [
    [{"role": "user", "content": "hello"}],
    [{"role": "system", "content": "You are an expert at dynamically generating document "
                                   "identifiers."},
     {"role": "user", "content": "Query: the quick brown fox jumps over the lazy dog [1], [2]"}],
    [{"role": "user", "content": "0 1 2 3"}],
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def lm_dir(tmp_path_factory):
    return tiny_causal_lm(tmp_path_factory.mktemp("lm") / "llama")


@pytest.fixture(scope="session")
def gen(lm_dir):
    return load_generator(str(lm_dir), backend="transformers")


def _unbatched_greedy(gen, conv, max_new_tokens):
    """One prompt, no padding, plain ``generate``: the reference for the batched path."""
    import torch

    ids = gen.tokenizer(gen.render(conv), add_special_tokens=False,
                        return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = gen.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                 max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=gen.eos_ids, pad_token_id=gen.tokenizer.pad_token_id)
    new = out[0, ids.shape[1]:].tolist()
    return new[:next((t for t, tok in enumerate(new) if tok in gen.eos_ids), len(new))]


def test_greedy_batched_left_padding_matches_unbatched(gen):
    got = gen.generate_ids(CONVS, max_new_tokens=12, batch_size=3)
    assert [len(g) for g in got] == [1, 1, 1]
    assert [g[0] for g in got] == [_unbatched_greedy(gen, c, 12) for c in CONVS]
    assert any(len(g[0]) > 0 for g in got)
    assert gen.generate_ids(CONVS, max_new_tokens=12, batch_size=1) == got
    texts = gen.chat(CONVS, max_new_tokens=12, batch_size=2)
    assert texts == [[gen.tokenizer.decode(g[0], skip_special_tokens=True).strip()] for g in got]


def test_greedy_n_gives_identical_copies(gen):
    got = gen.chat(CONVS[:1], max_new_tokens=5, n=3)
    assert len(got[0]) == 3 and len(set(got[0])) == 1


def test_sampling_is_seeded_per_conversation_not_per_batch(gen):
    kw = dict(max_new_tokens=10, temperature=1.0, n=4)
    a = gen.generate_ids(CONVS, seed=1, batch_size=4, **kw)
    b = gen.generate_ids(CONVS, seed=1, batch_size=32, **kw)
    c = gen.generate_ids(CONVS, seed=2, batch_size=4, **kw)
    assert a == b and a != c
    assert all(len(x) == 4 for x in a)
    assert len({tuple(t) for x in a for t in x}) > 3   # random weights, T=1: samples differ
    assert len(gen.chat(CONVS, seed=1, batch_size=4, **kw)[2]) == 4


def test_progress_wraps_batches_and_empty_input(gen):
    calls = []

    def progress(it):
        calls.append(len(it))
        return it

    gen.chat(CONVS, max_new_tokens=2, batch_size=2, progress=progress)
    assert calls == [2]
    assert gen.chat([], max_new_tokens=2) == []


def test_gumbel_sampler_draws_from_the_tempered_softmax():
    import torch

    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
    rows = [(i, 0) for i in range(4000)]
    sampler = _GumbelSampler(temperature=0.5, seed=3, rows=rows, prompt_len=0)
    picks = sampler(torch.zeros((len(rows), 1)), logits.repeat(len(rows), 1)).argmax(-1)
    freq = np.bincount(picks.numpy(), minlength=4) / len(rows)
    np.testing.assert_allclose(freq, torch.softmax(logits / 0.5, -1).numpy(), atol=0.03)


def test_gumbel_sampler_with_top_p_draws_from_the_nucleus():
    import torch

    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])   # at T 0.5: 0.865, 0.117, 0.016, 0.002
    rows = [(i, 0) for i in range(4000)]
    sampler = _GumbelSampler(temperature=0.5, seed=3, rows=rows, prompt_len=0, top_p=0.9)
    picks = sampler(torch.zeros((len(rows), 1)), logits.repeat(len(rows), 1)).argmax(-1)
    freq = np.bincount(picks.numpy(), minlength=4) / len(rows)
    nucleus = torch.softmax(logits[:2] / 0.5, -1).numpy()   # the first two reach 0.9
    np.testing.assert_allclose(freq, [*nucleus, 0.0, 0.0], atol=0.03)
    assert freq[2:].sum() == 0


def test_row_seed_is_stable_and_spread():
    # pinned: a seed that changed (another version, another process) would change every
    # seeded sample, and a cached one would no longer match a recomputed one
    assert row_seed(0, 1, 2, 3) == 1470200354583225620
    assert len({row_seed(0, i, j, 0) for i in range(50) for j in range(8)}) == 400


def test_argument_and_backend_errors(gen, lm_dir, tmp_path):
    with pytest.raises(ConfigError, match="max_new_tokens"):
        gen.chat(CONVS, max_new_tokens=0)
    with pytest.raises(ConfigError, match="temperature"):
        gen.chat(CONVS, max_new_tokens=1, temperature=-1)
    with pytest.raises(ConfigError, match=r"top_p must be in \(0, 1\], got 0"):
        gen.chat(CONVS, max_new_tokens=1, temperature=1.0, top_p=0)
    with pytest.raises(ConfigError, match="did you mean 'vllm'"):
        load_generator(str(lm_dir), backend="vlm")
    with pytest.raises(ConfigError, match="does not exist"):
        load_generator(str(tmp_path / "nope"))
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(ConfigError, match="pip install vllm"):
            load_generator(str(lm_dir), backend="vllm")
    assert isinstance(load_generator(str(lm_dir), backend="auto"), TransformersGenerator)


def test_the_models_own_repetition_penalty_does_not_leak_into_greedy_answers(lm_dir, tmp_path):
    """Before: with no penalty asked, transformers filled the field from the checkpoint's
    generation_config.json (Qwen2.5-Instruct's says 1.05), so greedy answers differed from
    vLLM's, which applies none."""
    import shutil

    from transformers import GenerationConfig

    penalised = tmp_path / "llama"
    shutil.copytree(lm_dir, penalised)
    GenerationConfig(repetition_penalty=3.0).save_pretrained(penalised)
    plain = load_generator(str(lm_dir), backend="transformers")
    other = load_generator(str(penalised), backend="transformers")
    assert other.model.generation_config.repetition_penalty == 3.0
    for conv in CONVS:
        assert other.generate_ids([conv], max_new_tokens=12) == \
            plain.generate_ids([conv], max_new_tokens=12)
