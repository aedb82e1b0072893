"""Fine-tuning of causal LMs for the RAG stages: SFT and DPO with TRL, resumable, LoRA or full.

Two entry points take a Hugging Face checkpoint directory, plain row dicts (the ``Chat`` and
``Preferences`` tables of :mod:`stages.schemas`), the step's config object whole and a
:class:`TrainHooks`, and write a plain full checkpoint:

- :func:`sft_train` (``cfg: SftConfig``) -- TRL ``SFTTrainer`` on ``{"messages": [...]}`` rows.
- :func:`dpo_train` (``cfg: DpoConfig``) -- TRL ``DPOTrainer`` on ``{"prompt", "chosen",
  "rejected"}`` pairs.

Files, one concern each: ``args.py`` (the configs: ``TrainArgs`` and what each trainer adds),
``hooks.py`` (log, progress, scratch, device, rank), ``examples.py`` (rows -> TRL examples),
``trainers.py`` (our config -> TRL's config and trainer), ``finetune.py`` (the run's steps:
prepare, build trainer, resume point, train, export), ``checkpoints.py`` (which checkpoint to
resume), ``export.py`` (merge LoRA, save), ``log_callback.py`` (step lines in the step's log),
``vocab.py`` (added tokens, loss left out inside marker spans), ``torch_state.py`` (the resume
file of the loops written with torch itself: DPA-RAG's reranker, Reinforced-IR's retriever),
``memory.py`` and ``memory_check.py`` (the GPU memory estimate shown by ``rag plan``).

Every example is rendered with the model's *own* chat template (``tokenizer.chat_template``),
the one inference uses, so training and inference cannot drift apart (LLaMA-Factory's most
reported problem, see docs/research).

Output layout (``out_dir``), identical for LoRA and full fine-tuning::

    out_dir/config.json, model*.safetensors, generation_config.json, tokenizer files
    out_dir/adapter/             # LoRA only: adapter_config.json + adapter_model.safetensors

With LoRA the adapter is merged into the base weights (``PeftModel.merge_and_unload``) so every
downstream stage loads any checkpoint with ``AutoModelForCausalLM.from_pretrained(out_dir)``.
The saved weights keep the dtype of the input checkpoint, whatever precision training used.

Loss masking (SFT ``loss_on``)
------------------------------
``"completion"`` (default)
    Loss on the *last* assistant turn only (plus its end-of-turn token): each row is split into
    TRL's conversational prompt-completion form. Works with any chat template whose prompt
    rendering is a prefix of the full rendering (ChatML/SmolLM2, Llama-3, Qwen...). This is
    LLaMA-Factory's default (``train_on_prompt: false``) used by DynamicRAG, whose SFT rows are
    single-turn. Earlier assistant turns of a multi-turn row are context, not targets.
``"assistant"``
    Loss on every assistant turn (TRL ``assistant_only_loss=True``). Needs a template with
    ``{% generation %}`` markers, or one TRL ships a training variant for (Llama-3, Qwen2.5/3,
    Gemma, Phi-3, ...). ChatML templates such as SmolLM2's have neither: a ConfigError says so
    before anything runs.
``"all"``
    Loss on every token, system and user turns included.

``masked_spans`` then leaves out of the loss every target token strictly between an open marker
and the next close marker (Self-RAG: the retrieved text between ``<paragraph>`` and
``</paragraph>``; the markers stay supervised). ``special_tokens`` adds tokens to the vocabulary
first (embeddings grow; full fine-tuning only) and ``out_dir/special_tokens.json`` lists their ids.

Resume
------
``hooks.checkpoint_dir`` is a persistent scratch directory (a stage passes
``ctx.scratch / "trainer"``; the scratch belongs to one task key, which covers the config and
the inputs, so whatever is there comes from this very run). The trainer saves
``checkpoint-<step>/`` there every ``save_steps`` optimizer steps and at the end, keeping
``save_total_limit`` of them. Called again after a crash, training resumes from the newest
*complete* checkpoint (one with ``trainer_state.json``; a half-written newer one is deleted):
weights/adapter, optimizer, scheduler, RNG and data position are restored, so the result
matches an uninterrupted run. A run that crashed after its last step (while writing
``out_dir``) is not retrained: ``out_dir`` is written from its last checkpoint.
``checkpoint_dir=None`` trains without intermediate checkpoints.

The final weights are saved with ``Trainer.save_model`` into ``checkpoint_dir/final`` (DDP and
DeepSpeed gather there), then the main process loads them on CPU (merging the adapter into a
fresh copy of ``model_dir`` with LoRA) and writes ``out_dir``: one code path for every setup,
at the cost of one extra load and save of the weights (about a minute for an 8B model).

Multi-GPU
---------
The executor starts the step once per GPU under ``accelerate launch``: ``RANK``/``LOCAL_RANK``/
``WORLD_SIZE`` are picked up by ``transformers.TrainingArguments``, each process is placed on
GPU ``LOCAL_RANK``, and the trainer runs DDP, or DeepSpeed when ``deepspeed`` names a config
file (ZeRO-3 as in the DynamicRAG paper; such a config must set
``stage3_gather_16bit_weights_on_model_save: true``, checked when the config is built). The
effective batch is ``per_device_batch_size * grad_accum * world_size``. Every rank sees the same
rows, config and ``checkpoint_dir`` (the orchestrator gives all ranks of a task its one scratch
directory; it must be on a filesystem all ranks see). Only the main process
(``hooks.is_main``, from ``ctx.is_main_process``) cleans checkpoints and writes ``out_dir``;
the others wait at barriers and return the same stats. Never call these functions from a
single process with several GPUs visible: ``Trainer`` would fall back to ``nn.DataParallel``,
which TRL's DPO rejects; give the process one GPU or use the launcher.

Memory: rows are tokenized in memory by every rank (``datasets.Dataset.from_list``, no cache
files); ``dataset_num_proc`` parallelises it. At the paper's scale (~100k rows of up to 8k
tokens) budget a few GB of host RAM per rank for the token ids.

Everything heavy (torch, transformers, trl, peft, datasets) is imported inside the functions.
"""

from stages.lib.train.args import DpoConfig, SftConfig, TrainArgs
from stages.lib.train.checkpoints import last_checkpoint
from stages.lib.train.dpo import dpo_train
from stages.lib.train.hooks import TrainHooks
from stages.lib.train.sft import sft_train
from stages.lib.train.stats_file import stats_file_text

__all__ = ["DpoConfig", "SftConfig", "TrainArgs", "TrainHooks", "dpo_train", "last_checkpoint",
           "sft_train", "stats_file_text"]
