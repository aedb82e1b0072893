"""stages/lib/train/examples.py: rows -> TRL examples, errors naming the row; prompt cutting."""

from __future__ import annotations

import pytest

from orchestrator.api import DataError
from stages.lib.train.examples import dpo_examples, keep_prompt_end, prompt_tokens, sft_examples
from tests.stages.lib.train.conftest import chat_rows, pref_rows


def test_sft_examples_by_loss_mask():
    rows = chat_rows(2)
    completion = sft_examples(rows, "completion")
    assert [m["role"] for m in completion[0]["prompt"]] == ["system", "user"]
    assert completion[0]["completion"] == [{"role": "assistant", "content": "[1], [2]"}]
    assert sft_examples(rows, "all")[1] == {"messages": rows[1]["messages"]}


def test_sft_row_errors():
    with pytest.raises(DataError, match="empty"):
        sft_examples([], "completion")
    with pytest.raises(DataError, match="id 'x'.*no assistant turn"):
        sft_examples([{"id": "x", "messages": [{"role": "user", "content": "hi"}]}], "completion")
    trailing_user = [{"id": "y", "messages": chat_rows(1)[0]["messages"] + [
        {"role": "user", "content": "and?"}]}]
    with pytest.raises(DataError, match="last message must be the assistant"):
        sft_examples(trailing_user, "completion")
    assert sft_examples(trailing_user, "all")            # fine when every token is a target
    with pytest.raises(DataError, match="role 'bot'"):
        sft_examples([{"id": "z", "messages": [{"role": "bot", "content": "x"}]}], "completion")
    with pytest.raises(DataError, match="row 0 .id 'w'.: missing field 'messages'"):
        sft_examples([{"id": "w", "text": "hello"}], "completion")
    with pytest.raises(DataError, match=r"messages\[0\] \(user\) content must be a string"):
        sft_examples([{"messages": [{"role": "user", "content": 3}]}], "all")


def test_dpo_pairs_and_errors():
    row = pref_rows(1)[0]
    examples, identical = dpo_examples([row, {**row, "rejected": row["chosen"]}])
    assert identical == 1 and examples == [{k: row[k] for k in ("prompt", "chosen", "rejected")}]
    with pytest.raises(DataError, match="empty"):
        dpo_examples([])
    with pytest.raises(DataError, match="all 1 pairs have identical"):
        dpo_examples([{**row, "rejected": row["chosen"]}])
    with pytest.raises(DataError, match="missing field 'rejected'"):
        dpo_examples([{k: v for k, v in row.items() if k != "rejected"}])
    with pytest.raises(DataError, match="must end with a user turn"):
        dpo_examples([{**row, "prompt": row["prompt"] + row["chosen"]}])
    with pytest.raises(DataError, match="'chosen' must end with an assistant turn"):
        dpo_examples([{**row, "chosen": row["prompt"]}])


def test_keep_prompt_end_keeps_the_last_tokens_and_every_header(tiny_lm):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_lm))
    prompt = [{"role": "system", "content": "You are an expert. " * 20},
              {"role": "user", "content": "Query: question 3"}]
    full = prompt_tokens(tok, prompt)
    cut = keep_prompt_end(prompt, tok, 30)
    assert full > 60 and prompt_tokens(tok, cut) <= 30
    assert cut[1] == prompt[1] and [m["role"] for m in cut] == ["system", "user"]
    assert prompt[0]["content"].endswith(cut[0]["content"].strip())   # the end of the system text
    assert keep_prompt_end(prompt, tok, full) == prompt                # nothing to cut
    headers_and_question = prompt_tokens(tok, [{"role": "system", "content": ""}, prompt[1]])
    short = keep_prompt_end(prompt, tok, headers_and_question)         # the system text goes
    assert short == [{"role": "system", "content": ""}, prompt[1]]
    assert keep_prompt_end(prompt, tok, 5)[1]["content"] == ""         # headers are never cut
