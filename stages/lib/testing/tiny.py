"""Tiny random-init models for tests and smoke runs: same code path as real checkpoints.

Each builder writes an ordinary Hugging Face checkpoint directory (config, weights, tokenizer),
so stages load it with ``from_pretrained`` exactly as they load Llama-3-8B or MiniLM.
The tokenizer is a byte-level BPE trained on the given texts in well under a second, so it
round-trips any text (no unknown tokens) and carries a chat template like SmolLM2's.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> _ = tiny_causal_lm(d + "/lm", texts=["hello world"])   # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<pad>", "[CLS]", "[SEP]", "<unk>"]
DEFAULT_TEXTS = [
    "Query: Retrieved Content: Topic: Content: None [1], [2], [3] true false yes no Relevant:",
    "You are an expert at dynamically generating document identifiers. Answer with a short phrase.",
    "The quick brown fox jumps over the lazy dog. 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15",
]


def tiny_tokenizer(path: str | Path, texts: list[str] | None = None, vocab_size: int = 512):
    """Train a byte-level BPE tokenizer on ``texts`` (plus a few prompt words) and save it."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts or []) + DEFAULT_TEXTS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        unk_token="<unk>",
        cls_token="[CLS]",
        sep_token="[SEP]",
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(path))
    return fast


def tiny_causal_lm(path: str | Path, texts: list[str] | None = None, seed: int = 0,
                   hidden_size: int = 32, layers: int = 2) -> Path:
    """Write a 2-layer random-init ``LlamaForCausalLM`` with its tokenizer to ``path``."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    path = Path(path)
    tok = tiny_tokenizer(path, texts)
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
        max_position_embeddings=2048, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(cfg)
    model.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model.save_pretrained(str(path))
    return path


def tiny_encoder(path: str | Path, texts: list[str] | None = None, seed: int = 0,
                 hidden_size: int = 32, layers: int = 2) -> Path:
    """Write a 2-layer random-init ``BertModel`` (a dense encoder) with its tokenizer to ``path``."""
    import torch
    from transformers import BertConfig, BertModel

    path = Path(path)
    tok = tiny_tokenizer(path, texts)
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=4, max_position_embeddings=512,
        pad_token_id=tok.pad_token_id,
    )
    BertModel(cfg).save_pretrained(str(path))
    return path


def tiny_seq2seq(path: str | Path, texts: list[str] | None = None, seed: int = 0) -> Path:
    """Write a tiny random-init ``T5ForConditionalGeneration`` (the monoT5 code path) to ``path``."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    path = Path(path)
    tok = tiny_tokenizer(path, texts)
    torch.manual_seed(seed)
    cfg = T5Config(
        vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id,
    )
    T5ForConditionalGeneration(cfg).save_pretrained(str(path))
    return path


def tiny_classifier(path: str | Path, texts: list[str] | None = None,
                    labels: list[str] | None = None, seed: int = 0) -> Path:
    """Write a 2-layer random-init ``BertForSequenceClassification`` whose classes are ``labels``
    (``id2label``, in order; default NLI's entailment, neutral, contradiction) to ``path``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    path = Path(path)
    labels = list(labels or ["entailment", "neutral", "contradiction"])
    tok = tiny_tokenizer(path, texts)
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=512, pad_token_id=tok.pad_token_id,
        id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)},
    )
    BertForSequenceClassification(cfg).save_pretrained(str(path))
    return path
