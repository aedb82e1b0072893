"""Reply token texts join to the decoded text, with a SentencePiece-style (Metaspace) tokenizer
as Llama-2's: a ``▁word`` piece decoded on its own loses its space."""

from __future__ import annotations

from pathlib import Path

import pytest

from stages.lib.endpoint import EndpointConfig, open_client
from stages.lib.endpoint.local import token_texts

TEXTS = ["Paris is big. It is the capital of France, and the capital is old.",
         "What is the capital of country 1? Paris is the capital.",
         "The quick brown fox jumps over the lazy dog."]
SPECIAL = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "[Relevant]"]
TEMPLATE = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] "
            "+ '<|im_end|>\n' }}{% endfor %}"
            "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def metaspace_tokenizer(path: Path | None = None):
    """A BPE trained with a Metaspace pre-tokenizer and decoder (``▁`` marks a word start)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(TEXTS, trainer=trainers.BpeTrainer(
        vocab_size=200, special_tokens=SPECIAL, show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>", pad_token="<unk>",
                                   additional_special_tokens=["[Relevant]"])
    fast.chat_template = TEMPLATE
    if path is not None:
        fast.save_pretrained(str(path))
    return fast


def llama_byte_fallback_tokenizer():
    """Llama-2's fast layout: BPE with byte fallback, ``▁`` prepended, one leading space stripped."""
    from tokenizers import Tokenizer, decoders, models, normalizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"<0x{b:02X}>": 3 + b for b in range(256)})
    merges = [("▁", "c"), ("▁c", "a"), ("▁ca", "f"), ("▁", "i"), ("▁i", "s")]
    for a, b in merges:
        vocab.setdefault(a, len(vocab))
        vocab.setdefault(b, len(vocab))
        vocab.setdefault(a + b, len(vocab))
    tok = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>", byte_fallback=True,
                               fuse_unk=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                           normalizers.Replace(" ", "▁")])
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>",
                                   eos_token="</s>")


def test_metaspace_pieces_keep_their_spaces():
    tok = metaspace_tokenizer()
    ids = tok.encode("Paris is big. It is the capital.", add_special_tokens=False)
    alone = "".join(tok.decode([t]) for t in ids)
    assert " " not in alone                                 # the bug: "Parisisbig.Itisthecapital."
    pieces = token_texts(tok, ids)
    assert len(pieces) == len(ids)
    assert "".join(pieces) == tok.decode(ids) == "Paris is big. It is the capital."
    rel = tok.convert_tokens_to_ids("[Relevant]")           # a reflection token stays a piece
    with_token = ids[:2] + [rel] + ids[2:4]
    pieces = token_texts(tok, with_token)
    assert pieces[2].strip() == "[Relevant]"
    assert "".join(pieces) == tok.decode(with_token, skip_special_tokens=False)


def test_a_character_split_over_byte_tokens_comes_whole_with_its_last_byte():
    tok = llama_byte_fallback_tokenizer()
    ids = tok.encode("is café", add_special_tokens=False)
    assert tok.convert_ids_to_tokens(ids) == ["▁is", "▁caf", "<0xC3>", "<0xA9>"]
    assert [tok.decode([t]) for t in ids] == ["is", "caf", "\ufffd", "\ufffd"]
    assert token_texts(tok, ids) == ["is", " caf", "", "é"]
    assert token_texts(tok, ids[:3]) == ["is", " caf", "\ufffd"]   # cut inside: as decoded
    assert token_texts(tok, []) == []


@pytest.mark.usefixtures("one_torch_thread")
def test_transformers_backend_reply_tokens_join_to_the_decoded_completion(tmp_path):
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tok = metaspace_tokenizer(tmp_path / "lm")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    model = LlamaForCausalLM(cfg)
    model.generation_config = GenerationConfig(bos_token_id=tok.bos_token_id,
                                               eos_token_id=tok.eos_token_id,
                                               pad_token_id=tok.pad_token_id)
    model.save_pretrained(str(tmp_path / "lm"))
    conv = [{"role": "user", "content": "What is the capital of country 1?"}]
    ecfg = EndpointConfig(backend="transformers", model=str(tmp_path / "lm"), max_tokens=16)
    with open_client(ecfg, tmp_path / "cache") as llm:
        reply, = llm.chat([conv], logprobs_of=("[Relevant]",))
        gen = llm.backend.gen
        ids = gen.generate_ids([conv], max_new_tokens=16)[0][0]
    tokens = reply.tokens[0]
    assert len(tokens) == len(ids) == len(reply.logprobs[0])
    joined = "".join(tokens)
    assert joined == gen.tokenizer.decode(ids, skip_special_tokens=False)
    assert joined.count(" ") >= 2, joined          # the check means something: words were spaced
    assert reply.text == gen.tokenizer.decode(ids, skip_special_tokens=True).strip()
