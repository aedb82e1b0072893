"""stages/lib/train/vocab.py: added tokens and the loss left out inside marker spans."""

from __future__ import annotations

import pytest

from orchestrator.api import ConfigError
from stages.lib.train.vocab import IGNORE, add_tokens, mask_spans, masked_dataset, span_ids

SPECIAL = ["[Retrieval]", "<paragraph>", "</paragraph>", "[Relevant]"]


def test_mask_spans_keeps_the_markers_and_what_lies_between_spans():
    ids = [1, 2, 7, 5, 8, 9, 6, 10, 5, 11, 6, 12]
    labels = [IGNORE, IGNORE] + ids[2:]
    assert mask_spans(ids, labels, [(5, 6)]) == [IGNORE, IGNORE, 7, 5, IGNORE, IGNORE, 6, 10, 5,
                                                 IGNORE, 6, 12]
    assert mask_spans([5, 8, 6, 7], [IGNORE, IGNORE, IGNORE, 7], [(5, 6)]) == [IGNORE] * 3 + [7]
    assert mask_spans([7, 5, 8, 9], [7, 5, 8, 9], [(5, 6)]) == [7, 5, IGNORE, IGNORE]  # cut span


def test_added_tokens_are_single_tokens_and_spans_are_masked_in_real_token_ids(tiny_lm):
    from datasets import Dataset
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_lm))
    before = len(tok)
    with pytest.raises(ConfigError, match="'<paragraph>' is .* tokens of the tokenizer, not one"):
        span_ids(tok, [("<paragraph>", "</paragraph>")])
    added = add_tokens(tok, SPECIAL)
    assert len(tok) == before + 4 and sorted(added.values()) == list(range(before, before + 4))
    (open_id, close_id), = span_ids(tok, [("<paragraph>", "</paragraph>")])
    target = "[Retrieval]<paragraph>Paris is big</paragraph>[Relevant] yes<paragraph>x y</paragraph>"
    ids = tok("Query: q", add_special_tokens=False)["input_ids"]
    prompt_len = len(ids)
    ids += tok(target, add_special_tokens=False)["input_ids"]
    data = Dataset.from_list([{"input_ids": ids, "labels": [IGNORE] * prompt_len + ids[prompt_len:]},
                              {"input_ids": ids[:prompt_len], "labels": [IGNORE] * prompt_len}])
    masked, removed = masked_dataset(data, [(open_id, close_id)])
    assert removed == 1 and len(masked) == 1
    kept = [t for t, label in zip(ids, masked[0]["labels"]) if label != IGNORE]
    assert tok.decode(kept) == "[Retrieval]<paragraph></paragraph>[Relevant] yes<paragraph></paragraph>"


def test_new_rows_from_pieces_start_as_the_mean_of_their_old_pieces(tiny_lm):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from stages.lib.train.vocab import resized_model

    base_tok = AutoTokenizer.from_pretrained(str(tiny_lm))
    pieces = {t: base_tok(t, add_special_tokens=False)["input_ids"] for t in SPECIAL}
    old = AutoModelForCausalLM.from_pretrained(str(tiny_lm)).get_input_embeddings().weight
    tok = AutoTokenizer.from_pretrained(str(tiny_lm))
    added = add_tokens(tok, SPECIAL)
    model = resized_model(tiny_lm, tok, "float32", 0, added, "pieces")
    emb = model.get_input_embeddings().weight
    for token, new_id in added.items():
        assert torch.allclose(emb[new_id], old[pieces[token]].mean(0))
    assert not torch.allclose(emb[added["[Retrieval]"]], emb[added["[Relevant]"]])  # told apart
    mean = resized_model(tiny_lm, tok, "float32", 0, added, "mean").get_input_embeddings().weight
    assert not torch.allclose(mean[added["[Retrieval]"]], emb[added["[Retrieval]"]])
