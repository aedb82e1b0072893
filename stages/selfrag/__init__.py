"""Self-RAG (SEEDS §2): a critic distilled from teacher judgments labels instruction data with
reflection tokens; a generator trained on that data decides when to retrieve and judges its own
passages and segments; inference uses the tokens' probabilities (adaptive retrieval, per-passage
scores, a segment-level beam search for long answers).

Pure formulas beside the stages: ``tokens`` (the vocabulary), ``judgments`` (critic outputs to
tokens), ``assembly`` (the generator's training targets; passage text is masked from the loss
by the shared ``sft`` stage's ``masked_spans``, :func:`stages.lib.train.vocab.mask_spans`),
``scoring`` (retrieval decision and passage scores), ``beam`` (segment beam search), ``metrics``."""

from stages import import_modules

MODULES = import_modules(__name__, __path__)
