"""Added tokens on a model whose embedding matrix is padded beyond its tokenizer (Qwen2.5:
151,936 rows for 151,665 tokens; Phi-3): the matrix keeps its rows, and the rows the added
tokens take, never trained, are drawn as ``new_token_init`` says (audit_train41, finding 3)."""

from __future__ import annotations

import json

import pytest

from tests.stages.lib.train.conftest import FAST
from tests.stages.lib.train.test_vocab import SPECIAL

PADDING = 64
MARK = 7.0   # what the padding rows hold here, to tell them from a fresh draw


def padded_lm(path, tied: bool, padding: int = PADDING):
    """A tiny Llama whose embeddings (and untied output layer) have ``padding`` rows beyond its
    tokenizer, set to ``MARK``; returns (path, number of tokens)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from stages.lib.testing.tiny import tiny_tokenizer

    tok = tiny_tokenizer(path)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok) + padding, hidden_size=32, intermediate_size=64,
                      num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                      tie_word_embeddings=tied, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        model.get_input_embeddings().weight[len(tok):] = MARK
        model.get_output_embeddings().weight[len(tok):] = MARK
    model.save_pretrained(str(path))
    return path, len(tok)


def resized(path, init: str):
    from transformers import AutoTokenizer

    from stages.lib.train.vocab import add_tokens, resized_model

    tok = AutoTokenizer.from_pretrained(str(path))
    added = add_tokens(tok, SPECIAL)
    return resized_model(path, tok, "float32", 0, added, init), sorted(added.values())


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
def test_padded_matrix_keeps_its_rows_and_the_added_rows_follow_new_token_init(tmp_path, tied):
    import torch

    path, n = padded_lm(tmp_path / "lm", tied)
    drawn = {}
    for init in ("mean", "normal"):
        model, ids = resized(path, init)
        assert ids == list(range(n, n + len(SPECIAL)))
        assert model.config.vocab_size == n + PADDING
        for table in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
            assert table.shape[0] == n + PADDING                       # not shrunk to n + 4
            assert bool((table[n + len(SPECIAL):] == MARK).all())      # the rest: padding kept
            new, own = table[ids], table[:n]
            assert not bool((new == MARK).any())                       # padding rows redrawn
            if init == "mean":   # around the mean of the model's own tokens' rows
                assert torch.allclose(new, own.mean(0).expand_as(new), atol=1e-3)
            else:                # N(0, initializer_range)
                std = model.config.initializer_range
                assert abs(new.mean().item()) < std and 0.5 * std < new.std().item() < 1.5 * std
        drawn[init] = model.get_input_embeddings().weight[ids]
    assert not torch.allclose(drawn["mean"], drawn["normal"])


def test_padded_matrix_with_pieces_keeps_its_rows(tmp_path):
    import torch
    from transformers import AutoTokenizer

    path, n = padded_lm(tmp_path / "lm", tied=False)
    base = AutoTokenizer.from_pretrained(str(path))
    model, ids = resized(path, "pieces")
    emb = model.get_input_embeddings().weight
    assert emb.shape[0] == n + PADDING
    for token, new_id in zip(SPECIAL, ids):
        pieces = base(token, add_special_tokens=False)["input_ids"]
        assert torch.allclose(emb[new_id], emb[pieces].mean(0))


def test_tokens_beyond_the_padding_grow_the_matrix_and_all_follow_new_token_init(tmp_path):
    """Two padding rows, four tokens: two take padding rows, two are new rows; all four are drawn
    from the model's own tokens, not from an average that counts the padding."""
    import torch

    path, n = padded_lm(tmp_path / "lm", tied=False, padding=2)
    model, ids = resized(path, "mean")
    for table in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
        assert table.shape[0] == n + len(SPECIAL) == model.config.vocab_size
        assert torch.allclose(table[ids], table[:n].mean(0).expand(len(ids), -1), atol=1e-3)


def test_sft_on_a_padded_model_saves_a_checkpoint_that_loads_with_the_same_shapes(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from stages.lib.train import SftConfig, sft_train

    path, n = padded_lm(tmp_path / "lm", tied=False)
    rows = [{"id": f"q{i}", "messages": [
        {"role": "user", "content": f"Query: question {i}"},
        {"role": "assistant", "content": f"[Retrieval]<paragraph>c{i}</paragraph>[Relevant]"}]}
        for i in range(4)]
    out = tmp_path / "out"
    sft_train(path, rows, out, SftConfig(special_tokens=SPECIAL, max_steps=1,
                                         **{**FAST, "lr": 1e-5}))
    ids = json.loads((out / "special_tokens.json").read_text())
    assert sorted(ids.values()) == list(range(n, n + len(SPECIAL)))
    assert json.loads((out / "config.json").read_text())["vocab_size"] == n + PADDING
    model = AutoModelForCausalLM.from_pretrained(str(out))
    assert len(AutoTokenizer.from_pretrained(str(out))) == n + len(SPECIAL)
    for table in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
        assert table.shape[0] == n + PADDING
        assert bool(((table[sorted(ids.values())] - MARK).abs() > 1).all())  # not padding


@pytest.mark.parametrize("tied", [True, False], ids=["tied", "untied"])
@pytest.mark.parametrize("init", ["mean", "normal"])
def test_without_padding_the_rows_are_transformers_own_draw(tmp_path, tied, init):
    """The Llama-2 paper recipe's case: the matrix equals the tokenizer; ``resized_model`` gives
    bit for bit what ``resize_token_embeddings(len(tokenizer))`` gave before the fix."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    from stages.lib.train.vocab import add_tokens

    path, n = padded_lm(tmp_path / "lm", tied, padding=0)
    model, ids = resized(path, init)
    tok = AutoTokenizer.from_pretrained(str(path))
    add_tokens(tok, SPECIAL)
    reference = AutoModelForCausalLM.from_pretrained(str(path))
    set_seed(0)
    reference.resize_token_embeddings(len(tok), mean_resizing=init != "normal")
    got, want = model.state_dict(), reference.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)
    assert model.get_input_embeddings().num_embeddings == n + len(SPECIAL)
