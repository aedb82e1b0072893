"""``new_token_init: normal``: new vocabulary rows drawn from N(0, initializer_range), what
``resize_token_embeddings`` did before transformers 4.46 (the Self-RAG seed's pinned 4.36);
the old rows are kept as they were."""

from __future__ import annotations

from tests.stages.lib.train.test_vocab import SPECIAL


def test_new_rows_are_drawn_around_zero_and_old_rows_kept(tiny_lm):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from stages.lib.train.vocab import add_tokens, resized_model

    base = AutoModelForCausalLM.from_pretrained(str(tiny_lm))
    old, std = base.get_input_embeddings().weight, base.config.initializer_range
    tok = AutoTokenizer.from_pretrained(str(tiny_lm))
    added = add_tokens(tok, SPECIAL)
    emb = resized_model(tiny_lm, tok, "float32", 0, added, "normal").get_input_embeddings().weight
    assert torch.equal(emb[:len(old)], old)
    new = emb[sorted(added.values())]
    mean = resized_model(tiny_lm, tok, "float32", 0, added, "mean").get_input_embeddings().weight
    assert abs(new.mean().item()) < std and 0.5 * std < new.std().item() < 1.5 * std
    assert not torch.allclose(new, mean[sorted(added.values())])   # not the mean's draw
