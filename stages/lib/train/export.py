"""Write the run's result as a plain full checkpoint, LoRA merged (main process only)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path


def source_dtype(model_dir: Path) -> str:
    """The dtype the input checkpoint was saved in (``float32`` when it does not say)."""
    try:
        cfg = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return "float32"
    value = cfg.get("dtype") or cfg.get("torch_dtype") or "float32"
    return value if value in ("float32", "bfloat16", "float16") else "float32"


def export_checkpoint(staging: Path, model_dir: Path, out_dir: Path, *, lora: bool,
                      log: logging.Logger, kind: str, special_tokens: Sequence[str] = ()) -> None:
    """``out_dir`` gets a full checkpoint in the input's dtype, loadable with
    ``AutoModelForCausalLM.from_pretrained``; with LoRA the adapter in ``staging`` is merged
    into a fresh copy of ``model_dir`` (its embeddings grown to the tokenizer first when tokens
    were added) and also kept un-merged in ``out_dir/adapter``. Added ``special_tokens`` are
    listed with their ids in ``out_dir/special_tokens.json``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    dtype_name = source_dtype(model_dir)
    dtype = getattr(torch, dtype_name)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok_src = staging if (staging / "tokenizer_config.json").is_file() else model_dir
    tokenizer = AutoTokenizer.from_pretrained(str(tok_src))
    if lora:
        from peft import PeftModel

        base = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype, device_map=None)
        if len(tokenizer) > base.get_input_embeddings().num_embeddings:
            base.resize_token_embeddings(len(tokenizer))   # the adapter holds the new rows
        model = PeftModel.from_pretrained(base, str(staging)).merge_and_unload()
        adapter = out_dir / "adapter"
        adapter.mkdir(exist_ok=True)
        for name in os.listdir(staging):
            if name.startswith("adapter_"):
                shutil.copy2(staging / name, adapter / name)
    else:
        model = AutoModelForCausalLM.from_pretrained(str(staging), dtype=dtype, device_map=None)
    stop_at_end_of_turn(model, tokenizer, log, kind)
    model.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    if special_tokens:
        ids = {t: tokenizer.convert_tokens_to_ids(t) for t in special_tokens}
        (out_dir / "special_tokens.json").write_text(json.dumps(ids, indent=1))
    log.info("%s: saved %s checkpoint (%s) to %s in %.1f s", kind,
             "merged LoRA" if lora else "full", dtype_name, out_dir, time.perf_counter() - started)


def stop_at_end_of_turn(model, tokenizer, log: logging.Logger, kind: str) -> None:
    """Make the chat template's end-of-turn token a stop token of the saved checkpoint (its
    ``generation_config.eos_token_id``) when it is not one yet: a base model given a template
    was trained to end its answers with it (see :mod:`stages.lib.models.turns`)."""
    from stages.lib.models.turns import as_id_list, end_of_turn_id

    config = model.generation_config
    ids = as_id_list(config.eos_token_id)
    eot = end_of_turn_id(tokenizer)
    if eot is None or eot in ids:
        return
    config.eos_token_id = ids + [eot]
    log.info("%s: the chat template ends a turn with %s (id %d), not EOS: added to the saved "
             "generation_config's eos_token_id %s", kind, tokenizer.convert_ids_to_tokens(eot),
             eot, config.eos_token_id)
