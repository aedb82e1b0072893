"""Expert relevance labels for (question, passage) pairs: monoT5, cross-encoder, LLM, has-answer.

DynamicRAG's expert (SEEDS.md 1.3 step 3) is monoT5: input ``Query: {q} Document: {d} Relevant:``,
one decoder step, label "true"/"false". Here the score is the softmax over the logits of the first
tokens of "true" and "false" at that step, and the label is ``score > threshold`` (0.5: "true"
beats "false"). The seed takes the argmax over the whole vocabulary; for a trained monoT5 the
two agree, since "true"/"false" are the only tokens it puts mass on.

Every method returns one ``(label, score)`` per pair, in input order::

    >>> score_relevance("has_answer", None, ["who wrote hamlet?"],
    ...                 ["Hamlet is a tragedy by William Shakespeare."],
    ...                 answers=[["Shakespeare"]])
    [(True, 1.0)]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from orchestrator.api import ConfigError
from stages.lib.metrics.answer_in_passages import has_answer
from stages.lib.prompts import Prompt, messages

log = logging.getLogger(__name__)

METHODS = ("monot5", "cross_encoder", "causal_lm", "has_answer")
MONOT5_TEMPLATE = "Query: {q} Document: {d} Relevant:"


# ----------------------------------------------------------------------------- model helpers

def _wrap(progress: Callable | None, iterable: Iterable) -> Iterable:
    return progress(iterable) if progress is not None else iterable


def _batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def _first_token(tokenizer, word: str) -> int:
    ids = tokenizer.encode(word, add_special_tokens=False)
    if not ids:
        raise ConfigError(f"the tokenizer encodes {word!r} as no token")
    return ids[0]


def _variant_ids(tokenizer, words: Sequence[str]) -> list[int]:
    """First-token ids of ``words`` with and without a leading space (deduplicated)."""
    ids: list[int] = []
    for w in words:
        for variant in (w, " " + w):
            tid = _first_token(tokenizer, variant)
            if tid not in ids:
                ids.append(tid)
    return ids


def _dtype(device):
    import torch
    return torch.float16 if device.type == "cuda" else torch.float32


def _score_monot5(model_dir, questions, passages, batch_size, max_length, device, progress):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    # float32 on a GPU too, as the seed's reranker.py loads it: T5 overflows in float16, and a
    # label near 0.5 could flip (the cross-encoder and LLM methods run in float16 on a GPU)
    model = AutoModelForSeq2SeqLM.from_pretrained(str(model_dir), dtype=torch.float32)
    model.to(device).eval()
    true_id, false_id = _first_token(tok, "true"), _first_token(tok, "false")
    if true_id == false_id:
        raise ConfigError(f"{model_dir}: 'true' and 'false' start with the same token")
    start_id = model.config.decoder_start_token_id
    if start_id is None:
        start_id = tok.pad_token_id
    texts = [MONOT5_TEMPLATE.format(q=q, d=d) for q, d in zip(questions, passages)]
    scores = [0.0] * len(texts)
    with torch.inference_mode():
        for idx in _wrap(progress, _batches([len(t) for t in texts], batch_size)):
            enc = tok([texts[i] for i in idx], padding=True, truncation=True,
                      max_length=max_length, return_tensors="pt").to(device)
            dec = torch.full((len(idx), 1), start_id, dtype=torch.long, device=device)
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                           decoder_input_ids=dec).logits[:, 0, :].float()
            p = torch.softmax(logits[:, [true_id, false_id]], dim=-1)[:, 0]
            for i, s in zip(idx, p.tolist()):
                scores[i] = s
    return scores


def _score_cross_encoder(model_dir, questions, passages, batch_size, max_length, device,
                         progress):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir),
                                                               dtype=_dtype(device))
    model.to(device).eval()
    num_labels = model.config.num_labels
    scores = [0.0] * len(questions)
    lengths = [len(q) + len(d) for q, d in zip(questions, passages)]
    with torch.inference_mode():
        for idx in _wrap(progress, _batches(lengths, batch_size)):
            enc = tok([questions[i] for i in idx], [passages[i] for i in idx], padding=True,
                      truncation=True, max_length=max_length, return_tensors="pt").to(device)
            logits = model(**enc).logits.float()
            if num_labels == 1:
                p = torch.sigmoid(logits[:, 0])
            else:
                p = torch.softmax(logits, dim=-1)[:, 1]
            for i, s in zip(idx, p.tolist()):
                scores[i] = s
    return scores


def _score_causal_lm(model_dir, questions, passages, batch_size, max_length, device, progress,
                     prompt):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    if not tok.chat_template:
        raise ConfigError(f"{model_dir}: relevance method 'causal_lm' needs a chat model "
                          f"(the tokenizer has no chat template)")
    model = AutoModelForCausalLM.from_pretrained(
        str(model_dir), dtype=torch.bfloat16 if device.type == "cuda" else torch.float32)
    model.to(device).eval()
    yes, no = _variant_ids(tok, ["yes", "Yes"]), _variant_ids(tok, ["no", "No"])
    yes = [t for t in yes if t not in no]
    if not yes or not no:
        raise ConfigError(f"{model_dir}: cannot tell 'yes' from 'no' by their first token")
    prompts = []
    for q, d in zip(questions, passages):
        ids = tok.encode(d, add_special_tokens=False)
        if len(ids) > max_length:   # truncate the passage, never the question or the template
            d = tok.decode(ids[:max_length])
        msgs = messages(prompt, question=q, passage=d)
        prompts.append(tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True))
    scores = [0.0] * len(prompts)
    with torch.inference_mode():
        for idx in _wrap(progress, _batches([len(p) for p in prompts], batch_size)):
            enc = tok([prompts[i] for i in idx], padding=True, add_special_tokens=False,
                      return_tensors="pt").to(device)
            logits = model(**enc).logits[:, -1, :].float()
            logp = torch.log_softmax(logits, dim=-1)
            p_yes = torch.logsumexp(logp[:, yes], dim=-1)
            p_no = torch.logsumexp(logp[:, no], dim=-1)
            p = torch.sigmoid(p_yes - p_no)
            for i, s in zip(idx, p.tolist()):
                scores[i] = s
    return scores


_SCORERS = {"monot5": _score_monot5, "cross_encoder": _score_cross_encoder,
            "causal_lm": _score_causal_lm}


def check_model(method: str, model_dir: str | Path) -> None:
    """A one-line ``ConfigError`` when ``model_dir`` holds the wrong kind of model for
    ``method`` (read from its config.json, before anything loads)."""
    from stages.lib.models import checkpoint

    if method == "monot5":
        checkpoint.check_seq2seq(model_dir)
    elif method == "cross_encoder":
        checkpoint.check_classifier(model_dir)   # a random classification head otherwise
    elif method == "causal_lm":
        checkpoint.check_generator(
            model_dir, "a chat model (a *ForCausalLM checkpoint) for relevance method "
                       "'causal_lm'", "wire a chat model to the rerank step's model input")


def score_relevance(method: str, model_dir: str | Path | None, questions: Sequence[str],
                    passages: Sequence[str], answers: Sequence[Sequence[str]] | None = None,
                    batch_size: int = 64, max_length: int = 512, device: str = "cpu",
                    progress: Callable | None = None, threshold: float = 0.5,
                    prompt: Prompt | None = None) -> list[tuple[bool, float]]:
    """``(label, score)`` per (question, passage) pair, in input order.

    - ``monot5``: seq2seq, P("true") against P("false") at the first decoder step;
    - ``cross_encoder``: sequence classifier, sigmoid (one logit) or softmax class 1;
    - ``causal_lm``: a chat model asked whether the passage answers (``prompt``, a prompt file
      with the fields ``question`` and ``passage``); P("yes") against P("no");
    - ``has_answer``: a gold answer (``answers[i]``, a list) occurs in the passage; 1.0 / 0.0.

    Model labels are ``score > threshold``. ``max_length`` caps the model input in tokens (the
    passage alone for ``causal_lm``).
    """
    if method not in METHODS:
        from orchestrator.errors import did_you_mean
        raise ConfigError(f"unknown relevance method {method!r}{did_you_mean(method, METHODS)}; "
                          f"expected one of {METHODS}")
    if len(questions) != len(passages):
        raise ValueError(f"{len(questions)} questions but {len(passages)} passages")
    start = time.perf_counter()
    if method == "has_answer":
        if answers is None or len(answers) != len(passages):
            raise ConfigError("relevance method 'has_answer' needs the gold answers of every "
                              "question", hint="use questions with an 'answers' column")
        labels = [has_answer([a] if isinstance(a, str) else list(a), p)
                  for a, p in zip(answers, passages)]
        return [(lab, 1.0 if lab else 0.0) for lab in labels]
    if model_dir is None:
        raise ConfigError(f"relevance method {method!r} needs a model directory",
                          hint="wire a Model input to the rerank step, or use method: has_answer")
    if method == "causal_lm" and prompt is None:
        raise ConfigError("relevance method 'causal_lm' needs a prompt file",
                          hint="wire inputs.prompt to conf/prompts/common/relevance.yaml")
    check_model(method, model_dir)
    if not passages:
        return []
    import torch

    extra = (prompt,) if method == "causal_lm" else ()
    scores = _SCORERS[method](model_dir, list(questions), list(passages), batch_size, max_length,
                              torch.device(device), progress, *extra)
    seconds = time.perf_counter() - start
    log.info("%s scored %d pairs in %.1f s (%.1f pairs/s)", method, len(scores), seconds,
             len(scores) / max(seconds, 1e-9))
    return [(s > threshold, float(s)) for s in scores]
