"""The generator's paragraph loss mask (the ``sft`` stage's ``masked_spans``, as the Self-RAG
pipeline sets it) on a really tokenised example with two paragraphs: each ``<paragraph>`` pairs
with the next ``</paragraph>``, so what lies between two passages keeps its loss (the seed's
``finetune.py`` masked from the first opening to the last closing token)."""

from stages.lib.train.vocab import IGNORE, mask_spans, span_ids
from stages.selfrag.tokens import PARAGRAPH_CLOSE, PARAGRAPH_OPEN, SPECIAL_TOKENS


def test_two_paragraphs_with_a_real_tokenizer(tmp_path):
    from stages.lib.testing.tiny import tiny_tokenizer  # noqa: PLC0415 (moves with the layout)
    from transformers import AutoTokenizer

    tiny_tokenizer(tmp_path, ["alpha beta gamma delta", "the answer is paris"])
    tok = AutoTokenizer.from_pretrained(tmp_path)
    added = tok.add_special_tokens({"additional_special_tokens": list(SPECIAL_TOKENS)})
    assert added == 15
    prompt = "### Instruction:\nq\n\n### Response:\n"
    target = ("[Retrieval]<paragraph>alpha beta</paragraph>[Relevant]the answer[Fully supported]"
              "[Retrieval]<paragraph>gamma delta</paragraph>[Irrelevant]is paris[Utility:5]")
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    ids = prompt_ids + tok(target, add_special_tokens=False)["input_ids"]
    spans = span_ids(tok, [[PARAGRAPH_OPEN, PARAGRAPH_CLOSE]])
    n = len(prompt_ids)
    labels = mask_spans(ids, [IGNORE] * n + ids[n:], spans)

    supervised = tok.decode([t for t, label in zip(ids, labels) if label != IGNORE])
    masked_in_target = tok.decode([t for t, label in zip(ids[n:], labels[n:]) if label == IGNORE])
    assert "alpha" not in supervised and "gamma" not in supervised
    assert masked_in_target.replace(" ", "") == "alphabetagammadelta"
    for kept in ("[Retrieval]", "<paragraph>", "</paragraph>", "[Relevant]", "the answer",
                 "[Fully supported]", "is paris", "[Utility:5]"):
        assert kept in supervised
    assert labels[:n] == [IGNORE] * n
