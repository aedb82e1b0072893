"""The token a chat template closes an assistant turn with, so generation stops there.

A base checkpoint given a chat template (Llama-3-8B with LLaMA-Factory's llama3 template, the
DynamicRAG paper's generator; a Qwen2.5 base) keeps its base end-of-text token as EOS, while the
template ends each turn with another special token (``<|eot_id|>``, ``<|im_end|>``). Training
teaches the model to emit the template's token after its answer; a generator that stops only on
EOS then runs on into a new turn until ``max_new_tokens``. LLaMA-Factory makes the template's
token the trained model's stop word; we add it to the ids generation stops on (both backends)
and to a trained checkpoint's ``generation_config``.
"""

from __future__ import annotations

SENTINEL = "ragline-answer-end-probe"


def end_of_turn_id(tokenizer) -> int | None:
    """The id of the first special token the chat template writes after an assistant's answer,
    or None (no template, a template that does not render a plain user/assistant exchange, or
    nothing special after the answer).

    For ChatML (``...<|im_start|>assistant\\nANSWER<|im_end|>\\n``) it is ``<|im_end|>``'s id;
    for Llama-3, ``<|eot_id|>``'s; for a template that closes a turn with ``eos_token``, EOS.
    """
    if not getattr(tokenizer, "chat_template", None):
        return None
    chat = [{"role": "user", "content": "q"}, {"role": "assistant", "content": SENTINEL}]
    try:
        text = tokenizer.apply_chat_template(chat, tokenize=False)
    except Exception:   # noqa: BLE001 - a template with its own rules (a system turn first...)
        return None
    at = text.rfind(SENTINEL) if isinstance(text, str) else -1
    if at < 0:
        return None
    after = tokenizer(text[at + len(SENTINEL):], add_special_tokens=False)["input_ids"]
    special = set(tokenizer.all_special_ids)
    special |= {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    return next((i for i in after if i in special), None)


def as_id_list(eos) -> list[int]:
    """``generation_config.eos_token_id`` (an id, a list of ids or None) as a list.

    >>> as_id_list(None), as_id_list(2), as_id_list((2, 7))
    ([], [2], [2, 7])
    """
    return list(eos) if isinstance(eos, (list, tuple)) else ([] if eos is None else [eos])


def stop_ids(eos, tokenizer) -> list[int]:
    """The ids generation stops on: ``eos`` (an id, a list of ids or None, as
    ``generation_config.eos_token_id``), the tokenizer's EOS and the template's end of turn.

    >>> class Tok:                     # a base EOS (0), no chat template
    ...     eos_token_id, chat_template = 0, None
    >>> stop_ids(None, Tok()), stop_ids([0, 5], Tok())
    ([0], [0, 5])

    (With a template that ends turns with another token, its id comes last: tested with a
    ChatML tokenizer in ``tests/stages/lib/models/``.)
    """
    ids = as_id_list(eos)
    for extra in (tokenizer.eos_token_id, end_of_turn_id(tokenizer)):
        if extra is not None and extra not in ids:
            ids.append(extra)
    return ids
