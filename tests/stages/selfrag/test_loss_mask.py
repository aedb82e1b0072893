"""Paragraph loss mask on a really tokenised example with two paragraphs."""

import doctest

from stages.selfrag import loss_mask
from stages.selfrag.loss_mask import IGNORE, all_masked, paragraph_labels
from stages.selfrag.tokens import PARAGRAPH_CLOSE, PARAGRAPH_OPEN, SPECIAL_TOKENS


def test_doctests():
    assert doctest.testmod(loss_mask).failed == 0


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
    open_id, close_id = tok.convert_tokens_to_ids([PARAGRAPH_OPEN, PARAGRAPH_CLOSE])
    labels = paragraph_labels(ids, len(prompt_ids), open_id, close_id)

    supervised = tok.decode([t for t, l in zip(ids, labels) if l != IGNORE])
    masked_in_target = tok.decode([t for t, l in zip(ids[len(prompt_ids):], labels[len(prompt_ids):]) if l == IGNORE])
    assert "alpha" not in supervised and "gamma" not in supervised
    assert masked_in_target.replace(" ", "") == "alphabetagammadelta"
    for kept in ("[Retrieval]", "<paragraph>", "</paragraph>", "[Relevant]", "the answer", "is paris", "[Utility:5]"):
        assert kept in supervised
    assert labels[:len(prompt_ids)] == [IGNORE] * len(prompt_ids)


def test_all_masked_examples_are_detected():
    labels = paragraph_labels([5, 1, 2, 6], 0, open_id=5, close_id=6)
    assert labels == [5, IGNORE, IGNORE, 6] and not all_masked(labels)
    assert all_masked(paragraph_labels([1, 2], 2, 5, 6))
