"""What kind of model a checkpoint directory holds, read from its JSON files before loading it.

Every model a recipe wires is a ``Model`` (a directory), so ``rag plan`` cannot tell a sentence
encoder from a chat model: wiring the generator into ``index`` or the encoder into
``infer_topk`` type-checks. The loaders call the checks here first: they read ``config.json``
(``architectures``, ``model_type``, ``is_encoder_decoder``; no ``transformers`` import, no
weights) and raise a one-line :class:`~orchestrator.api.ConfigError` naming the path, what the
directory holds and what the stage needs, instead of a library traceback minutes later, or a
random-init head that "works" silently.

They refuse only what the loader cannot use: a known kind the loader does not take (an encoder
where a causal LM generates, a seq2seq model where ``AutoModel`` encodes, a model without a
classification head where a cross-encoder scores, a causal LM whose first token is pooled),
a directory without ``config.json`` or without a tokenizer. A checkpoint they cannot classify
(no ``architectures``, a custom class) is let through to the loader.

    >>> kind_of({"architectures": ["LlamaForCausalLM"], "model_type": "llama"})
    'causal_lm'
    >>> kind_of({"architectures": ["BertModel"], "model_type": "bert"})
    'encoder'
    >>> kind_of({"architectures": ["MistralModel"], "model_type": "mistral"})   # e5-mistral
    'base'
    >>> kind_of({"architectures": ["T5ForConditionalGeneration"], "is_encoder_decoder": True})
    'seq2seq'
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
from pathlib import Path

from orchestrator.api import ConfigError

log = logging.getLogger(__name__)

# Bidirectional (encoder-only) model types: never a text generator.
ENCODER_TYPES = frozenset({
    "albert", "bert", "big_bird", "camembert", "canine", "convbert", "data2vec-text", "deberta",
    "deberta-v2", "distilbert", "electra", "ernie", "esm", "flaubert", "funnel", "ibert",
    "layoutlm", "longformer", "luke", "megatron-bert", "mobilebert", "modernbert", "mpnet",
    "nezha", "nomic_bert", "rembert", "roberta", "roc_bert", "roformer", "squeezebert", "xlm",
    "xlm-roberta", "xlm-roberta-xl", "xmod",
})
_CAUSAL_SUFFIXES = ("ForCausalLM", "LMHeadModel")
_ENCODER_HEADS = ("ForMaskedLM", "ForTokenClassification", "ForQuestionAnswering",
                  "ForMultipleChoice", "ForNextSentencePrediction", "ForPreTraining")
KINDS = {
    "causal_lm": "a causal language model (a text generator)",
    "seq2seq": "a sequence-to-sequence model (encoder-decoder, e.g. monoT5)",
    "encoder": "a text encoder (encoder-only, e.g. a sentence encoder)",
    "classifier": "a sequence classifier (e.g. a cross-encoder)",
    "base": "a base model without a language-model head (e.g. an LLM embedder)",
    "unknown": "a model of a kind not recognised here",
}


def kind_of(cfg: dict) -> str:
    """The kind of model a parsed ``config.json`` describes: one of :data:`KINDS`.

    >>> kind_of({"architectures": ["XLMRobertaForSequenceClassification"]})
    'classifier'
    >>> kind_of({"architectures": ["ChatGLMModel"],
    ...          "auto_map": {"AutoModelForCausalLM": "m.ChatGLMForConditionalGeneration"}})
    'causal_lm'
    >>> kind_of({"model_type": "bert"}), kind_of({"model_type": "llama"})
    ('encoder', 'unknown')
    """
    archs = [a for a in cfg.get("architectures") or [] if isinstance(a, str)]
    auto_map = cfg.get("auto_map") if isinstance(cfg.get("auto_map"), dict) else {}
    model_type = cfg.get("model_type")
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "classifier"     # before seq2seq: BART and T5 have classifiers too
    if cfg.get("is_encoder_decoder") is True:
        return "seq2seq"
    if "AutoModelForCausalLM" in auto_map or any(a.endswith(_CAUSAL_SUFFIXES) for a in archs):
        return "causal_lm"
    if any(a.endswith(_ENCODER_HEADS) for a in archs):
        return "encoder"
    if any(a.endswith("Model") for a in archs):
        return "encoder" if model_type in ENCODER_TYPES else "base"
    if not archs and model_type in ENCODER_TYPES and not cfg.get("is_decoder"):
        return "encoder"
    return "unknown"


def describe(cfg: dict) -> str:
    """The checkpoint in a few words: its class, type and origin, as config.json says.

    >>> describe({"architectures": ["BertModel"], "model_type": "bert",
    ...           "_name_or_path": "nreimers/MiniLM-L6-H384-uncased"})
    'BertModel (bert, nreimers/MiniLM-L6-H384-uncased)'
    """
    archs = [a for a in cfg.get("architectures") or [] if isinstance(a, str)]
    extra = [str(v) for v in (cfg.get("model_type"),
                              cfg.get("_name_or_path") or cfg.get("_model_name_or_path")) if v]
    name = "/".join(archs) or "a checkpoint"
    return f"{name} ({', '.join(extra)})" if extra else name


# ----------------------------------------------------------------------------- the directory

def _find_below(root: Path, name: str, depth: int = 3, limit: int = 200) -> Path | None:
    """A directory under ``root`` (at most ``depth`` levels, ``limit`` entries) holding ``name``."""
    todo, seen = [(root, 0)], 0
    while todo:
        d, level = todo.pop(0)
        try:
            entries = sorted(d.iterdir())
        except OSError:
            continue
        for e in entries:
            seen += 1
            if seen > limit:
                return None
            if e.is_dir() and level < depth:
                if (e / name).is_file():
                    return e
                todo.append((e, level + 1))
    return None


def _no_config(path: Path, needs: str) -> ConfigError:
    """The error for a directory without ``config.json``, naming what it holds instead."""
    gguf = sorted(path.glob("*.gguf"))
    below = _find_below(path, "config.json")
    if gguf:
        what = f"it holds the GGUF file {gguf[0].name}, which the stages do not load"
        hint = ("convert it to a Hugging Face checkpoint (save_pretrained); prepare_model does "
                "so for the demo's SmolLM2 (package: smollm2)")
    elif below is not None:
        what = f"one is below it, in {below}"
        hint = f"wire that directory instead: {below}"
    else:
        what = ""
        hint = "wire a directory written by save_pretrained (config.json, weights, tokenizer)"
    return ConfigError(f"{path}: no config.json, so it is not a model checkpoint"
                       f"{f' ({what})' if what else ''}; this step needs {needs}", hint=hint)


_VOCAB_NAMES = ("tokenizer.json", "merges.txt")


def has_tokenizer(path: Path) -> bool:
    """True when ``path`` holds a tokenizer's vocabulary (tokenizer.json, vocab.*, a
    sentencepiece/tiktoken model) or a custom tokenizer class (``auto_map``)."""
    try:
        names = [p.name.lower() for p in path.iterdir() if p.is_file()]
    except OSError:
        return True   # unreadable here: let the loader say what is wrong
    for n in names:
        if (n in _VOCAB_NAMES or n.startswith("vocab") or n.endswith((".model", ".tiktoken"))
                or "sentencepiece" in n or "spiece" in n):
            return True
    config = path / "tokenizer_config.json"
    if config.is_file():
        try:
            return "auto_map" in json.loads(config.read_text())
        except (OSError, ValueError):
            return True
    return False


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ConfigError(f"{path}: not readable JSON ({e})",
                          hint="the checkpoint is damaged: write it again (save_pretrained)") \
            from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: not a JSON object", hint="the checkpoint is damaged")
    return data


def read_checkpoint(path: str | Path, needs: str) -> tuple[dict, dict | None]:
    """``(config, adapter)``: the parsed ``config.json`` of the checkpoint at ``path`` and, for
    a PEFT adapter directory (``adapter_config.json``, no ``config.json``), its adapter config
    (``config`` is then ``{}``). ``needs`` says what the calling stage needs, for the message.

    A ``ConfigError`` when ``path`` is a file, has no ``config.json`` (and is no adapter) or
    has no tokenizer. A path that does not exist is returned as ``({}, None)``: the caller
    decides (``from_pretrained`` reads a hub id).
    """
    p = Path(path)
    if p.is_file():
        here = p.name == "config.json" or (p.parent / "config.json").is_file()
        raise ConfigError(f"{p} is a file, not a checkpoint directory; this step needs {needs}",
                          hint="wire the directory that holds config.json" +
                               (f": {p.parent}" if here else " (written by save_pretrained)"))
    if not p.is_dir():
        return {}, None
    adapter = None
    if (p / "config.json").is_file():
        cfg = _read_json(p / "config.json")
    elif (p / "adapter_config.json").is_file():
        cfg, adapter = {}, _read_json(p / "adapter_config.json")
    else:
        raise _no_config(p, needs)
    if not has_tokenizer(p):
        if adapter is not None:
            base = adapter.get("base_model_name_or_path")
            raise ConfigError(
                f"{p} is a LoRA adapter (adapter_config.json, base model {base}) without a "
                f"tokenizer; this step needs {needs}: wire a full checkpoint (the training "
                "step's output directory, adapter merged), not its adapter/ folder",
                hint="the sft and dpo stages write the merged model to their output directory")
        raise ConfigError(
            f"{p}: no tokenizer files (tokenizer.json, vocab.*, *.model), so its text cannot be "
            f"tokenized; {describe(cfg)} needs its tokenizer saved beside it",
            hint="save the tokenizer into the directory (tokenizer.save_pretrained(path)), or "
                 "wire the original checkpoint directory")
    return cfg, adapter


# ----------------------------------------------------------------------------- per loader

def _wrong(path, cfg: dict, kind: str, needs: str, do: str, hint: str) -> ConfigError:
    return ConfigError(f"{path} is {describe(cfg)}, {KINDS[kind]}; this step needs {needs}: "
                       f"{do}", hint=hint)


GENERATOR = "a causal language model (a *ForCausalLM checkpoint with a chat template)"
ENCODER = ("a text encoder for embeddings (encoder-only like BERT/Contriever/MiniLM/E5, or an "
           "LLM embedder)")
SEQ2SEQ = "a sequence-to-sequence model (monoT5: a T5ForConditionalGeneration checkpoint)"
CLASSIFIER = "a sequence classifier (a cross-encoder: a *ForSequenceClassification checkpoint)"


def check_generator(path: str | Path, needs: str = GENERATOR,
                    do: str = "wire the generator checkpoint to this step's model input"
                    ) -> tuple[dict, dict | None]:
    """``(config, adapter)`` (as :func:`read_checkpoint`) of a checkpoint about to be loaded
    with ``AutoModelForCausalLM``;
    a ``ConfigError`` for an encoder, a seq2seq model, a classifier or a base model without a
    language-model head (each of which that class loads with a random head, or not at all).
    A LoRA adapter passes when its base is a local directory (a warning: the base is not part
    of the step's inputs)."""
    cfg, adapter = read_checkpoint(path, needs)
    if adapter is not None:
        _check_generator_adapter(path, adapter, needs, do)
        return cfg, adapter
    kind = kind_of(cfg)
    if kind == "base" and cfg.get("tie_word_embeddings") is True:
        return cfg, None    # the head is the input embeddings: it loads whole
    if kind in ("encoder", "base"):
        raise _wrong(path, cfg, kind, needs, do,
                     "a text encoder belongs in index/retrieve (their encoder input); a generator "
                     "is a *ForCausalLM checkpoint (the demo's: prepare_model package: smollm2)")
    if kind in ("seq2seq", "classifier"):
        raise _wrong(path, cfg, kind, needs, do,
                     "monoT5 and cross-encoders belong in rerank (method: monot5 / "
                     "cross_encoder); a generator is a *ForCausalLM checkpoint")
    return cfg, None


def _check_generator_adapter(path, adapter: dict, needs: str, do: str) -> None:
    base = adapter.get("base_model_name_or_path")
    task = adapter.get("task_type")
    if task not in (None, "CAUSAL_LM"):
        raise ConfigError(f"{path} is a LoRA adapter for task {task} (base {base}), not for a "
                          f"causal language model; this step needs {needs}",
                          hint=do)
    if base and Path(base).is_dir():
        log.warning("%s is a LoRA adapter: its base model %s is read from adapter_config.json, "
                    "outside this step's inputs (a change to it does not rerun the step); "
                    "wire a merged checkpoint (the sft/dpo step's output) instead", path, base)
    else:
        adapter_base_cached_only(path, adapter, needs)   # a hub id nothing can download: now


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


def _hf_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set, now or when huggingface_hub was imported."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or any(
        os.environ.get(name, "").strip().upper() in ("1", "ON", "YES", "TRUE")
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _in_hf_cache(repo_id: str) -> bool:
    """Whether the local Hugging Face cache holds ``repo_id``'s config.json."""
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # noqa: BLE001 - an id the cache cannot name: not cached
        return False


@functools.lru_cache(maxsize=4)
def _hub_reachable(endpoint: str, timeout: float = 3.0) -> bool:
    """One request to the Hub with a short timeout and no retries (huggingface_hub's own
    session, so proxies apply); any HTTP answer counts as reachable. Asked once per process."""
    from huggingface_hub import get_session

    try:
        get_session().head(endpoint, timeout=timeout, follow_redirects=False)
    except Exception as e:  # noqa: BLE001 - DNS, refused, timeout, proxy: all "unreachable"
        log.debug("the Hugging Face Hub at %s is unreachable: %s", endpoint, e)
        return False
    return True


def adapter_base_cached_only(path, adapter: dict, needs: str) -> bool:
    """Whether a LoRA adapter's base model (``base_model_name_or_path``) is to be read from
    the local Hugging Face cache only (the loaders' ``local_files_only``): a Hub id, cached,
    while the Hub is offline (HF_HUB_OFFLINE) or unreachable. A local directory, or a Hub id
    the Hub can serve: False. A one-line ``ConfigError``, before anything loads, for a base
    that is neither a directory nor a Hub id, and for a Hub id neither cached nor reachable
    (huggingface_hub would otherwise retry for about half a minute, then fail).

    Only the transformers generator acts on a True answer (``local_files_only``); vLLM and the
    trainers load such a base as before, so with the Hub unreachable they still wait on its
    retries before reading the cache (HF_HUB_OFFLINE=1 avoids that).
    """
    from huggingface_hub import constants

    base = adapter.get("base_model_name_or_path")
    if not base or Path(base).is_dir():
        return False
    named = (f"{path} is a LoRA adapter whose base model {base!r} (adapter_config.json "
             "base_model_name_or_path)")
    fix = (f"point base_model_name_or_path in {Path(path) / 'adapter_config.json'} at a local "
           "copy of the base (a directory with config.json), or wire a merged checkpoint (the "
           "sft/dpo step's output directory)")
    if not _HUB_ID.fullmatch(base) or ".." in base:
        raise ConfigError(f"{named} is not a directory here, nor a Hugging Face Hub id; this "
                          f"step needs {needs}", hint=fix)
    offline = _hf_offline()
    if not offline and _hub_reachable(constants.ENDPOINT):
        return False
    if _in_hf_cache(base):
        log.info("%s: the Hub is %s; its base model %s is read from the local Hugging Face "
                 "cache", path, "offline (HF_HUB_OFFLINE)" if offline else "unreachable", base)
        return True
    why = ("HF_HUB_OFFLINE is set" if offline else
           f"the Hugging Face Hub ({constants.ENDPOINT}) cannot be reached")
    raise ConfigError(f"{named} is a Hub id, not a local directory, and is not in the local "
                      f"Hugging Face cache; {why}, so nothing can be downloaded; this step "
                      f"needs {needs}",
                      hint=f"{fix}; or fill this machine's Hugging Face cache (HF_HOME) "
                           f"where there is network (hf download {base}) and run with "
                           "HF_HUB_OFFLINE=1")


def adapter_load_error(path, adapter: dict, needs: str, exc: BaseException) -> ConfigError:
    """The error for a LoRA adapter directory whose base model did not load."""
    base = adapter.get("base_model_name_or_path")
    first = (str(exc).strip().splitlines() or [""])[0].rstrip(". ")
    return ConfigError(f"{path} is a LoRA adapter whose base model {base!r} (adapter_config.json "
                       f"base_model_name_or_path) did not load: {type(exc).__name__}: {first}; "
                       f"this step needs {needs}",
                       hint="wire a full checkpoint (the sft/dpo step's output directory, adapter "
                            "merged), or fix base_model_name_or_path to a local checkpoint")


def _check_pooled(path, pooling: str | None, needs: str, do: str, hint: str
                  ) -> tuple[dict, str]:
    """``(config, kind)`` of a checkpoint about to be loaded with ``AutoModel`` and pooled over
    ``last_hidden_state``; a ``ConfigError`` for what cannot be: a seq2seq model (its
    ``AutoModel`` wants decoder inputs), a causal LM's LoRA adapter, and a causal LM under
    ``pooling="cls"`` (its first token attends to nothing after it, so the vector ignores the
    rest of the text). ``hint`` says what to wire instead."""
    cfg, adapter = read_checkpoint(path, needs)
    if adapter is not None:
        if adapter.get("task_type") == "CAUSAL_LM":
            raise ConfigError(
                f"{path} is a LoRA adapter for a causal language model (base "
                f"{adapter.get('base_model_name_or_path')}), not a text encoder; this step needs "
                f"{needs}: {do}", hint=hint)
        return cfg, "unknown"
    kind = kind_of(cfg)
    if kind == "seq2seq":
        raise _wrong(path, cfg, kind, needs, do,
                     "the encoder is loaded with AutoModel and pooled over its hidden states; an "
                     "encoder-decoder (T5, monoT5, GTR) is not supported there. monoT5 belongs "
                     "in rerank (method: monot5)")
    if kind == "causal_lm" and pooling == "cls":
        raise _wrong(path, cfg, kind, needs,
                     "pooling: cls reads the first token's state, which a causal model computes "
                     f"from that token alone; set pooling: mean, or {do}",
                     "an encoder (BERT, MiniLM, BGE) attends both ways, so its first token reads "
                     "the whole text; a causal model's first token reads only itself")
    return cfg, kind


def check_encoder(path: str | Path, pooling: str | None = None) -> dict:
    """``config.json`` of a checkpoint about to be loaded with ``AutoModel`` and pooled over
    ``last_hidden_state`` (:class:`~stages.lib.models.encoders.Encoder`, Reinforced-IR's
    ``Embedder``). A seq2seq model, a causal LM's LoRA adapter or, under ``pooling="cls"``, a
    causal LM cannot be (a ``ConfigError``); a causal LM under mean pooling or a classifier
    can, but is probably the wrong input (a warning: LLM embedders are causal LMs too)."""
    cfg, kind = _check_pooled(
        path, pooling, ENCODER, "wire an encoder checkpoint to the encoder input",
        "wire the sentence encoder (the demo's: prepare_model package: minilm) to this step's "
        "encoder input")
    if kind in ("causal_lm", "classifier"):
        log.warning("the encoder %s is %s, %s, not a trained embedding model: its vectors are "
                    "pooled hidden states. If it was wired by mistake, wire the sentence encoder "
                    "to the encoder input", path, describe(cfg), KINDS[kind])
    return cfg


RERANKER_ENCODER = ("an encoder to put the reranker's 2-way head on (encoder-only like "
                    "BGE/MiniLM/BERT, or a cross-encoder such as bge-reranker, whose own head is "
                    "dropped)")


def check_reranker_encoder(path: str | Path, pooling: str = "cls",
                           do: str = "wire an encoder checkpoint to the train_reranker step's "
                                     "model input") -> dict:
    """``config.json`` of the encoder DPA-RAG's reranker loads with ``AutoModel`` under its own
    2-way head, pooling the (query, passage) pair's first token (``cls``) or mean. What cannot
    be is refused as by :func:`check_encoder`; a cross-encoder passes silently (``AutoModel``
    keeps its encoder and drops its head: the paper starts from bge-reranker-large), a causal
    LM under mean pooling with a warning."""
    cfg, kind = _check_pooled(
        path, pooling, RERANKER_ENCODER, do,
        "the paper's encoder is bge-reranker-large; the demo's MiniLM (prepare_model package: "
        "minilm)")
    if kind == "causal_lm":
        log.warning("the reranker's encoder %s is %s, %s: its pooled hidden states were not "
                    "trained to read a (query, passage) pair. If it was wired by mistake, %s",
                    path, describe(cfg), KINDS[kind], do)
    return cfg


def check_seq2seq(path: str | Path) -> dict:
    """``config.json`` of a checkpoint about to be loaded with ``AutoModelForSeq2SeqLM``
    (monoT5); a ``ConfigError`` for a model of a known other kind."""
    cfg, _ = read_checkpoint(path, SEQ2SEQ)
    kind = kind_of(cfg)
    if kind in ("causal_lm", "encoder", "classifier", "base"):
        use = {"causal_lm": "method: causal_lm (a chat model asked yes/no)",
               "classifier": "method: cross_encoder"}.get(kind)
        raise _wrong(path, cfg, kind, SEQ2SEQ, "wire a monoT5 checkpoint"
                     + (f", or for this model use {use}" if use else ""),
                     "rerank methods: monot5 (seq2seq), cross_encoder (sequence classifier), "
                     "causal_lm (chat model), has_answer (no model)")
    return cfg


def check_classifier(path: str | Path, needs: str = CLASSIFIER, do: str | None = None,
                     hint: str = "a cross-encoder's config.json lists a "
                                 "*ForSequenceClassification architecture (e.g. "
                                 "cross-encoder/ms-marco-MiniLM-L-6-v2)") -> dict:
    """``config.json`` of a checkpoint about to be loaded with
    ``AutoModelForSequenceClassification``; a ``ConfigError`` for a model of a known kind
    without a classification head, which that class would add at random (scores that look
    fine and mean nothing). ``needs``, ``do`` and ``hint`` word the error for the calling step;
    by default rerank's (``do``: wire a cross-encoder, or the rerank method this model fits)."""
    cfg, _ = read_checkpoint(path, needs)
    kind = kind_of(cfg)
    if kind in ("causal_lm", "encoder", "seq2seq", "base"):
        if do is None:
            use = {"causal_lm": "method: causal_lm", "seq2seq": "method: monot5"}.get(kind)
            do = "wire a cross-encoder" + (f", or for this model use {use}" if use else "")
        raise _wrong(path, cfg, kind, needs, f"its classification head would be random; {do}",
                     hint)
    return cfg


def empty_vocabulary(tokenizer, path) -> None:
    """A ``ConfigError`` when a loaded tokenizer knows nothing but its special tokens (what
    ``AutoTokenizer`` builds from a directory without vocabulary files: every word [UNK])."""
    try:
        size, special = len(tokenizer), len(set(tokenizer.all_special_ids))
    except (AttributeError, TypeError):
        return
    if size <= special:
        raise ConfigError(f"{path}: the tokenizer has {size} tokens, all special (its vocabulary "
                          "files are missing), so every word would be the same unknown token",
                          hint="save the tokenizer into the directory (tokenizer.save_pretrained("
                               "path)), or wire the original checkpoint directory")
