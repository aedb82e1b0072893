"""DPA-RAG (SEEDS §3): dual preference alignment. A reader LLM answers each training question
with no document and with each retrieved document alone; the documents that turn a wrong answer
right (aligned knowledge) or a right one wrong (unaligned knowledge) are its preference
knowledge. Queries are augmented five ways and filtered by NLI. A cross-encoder reranker is
trained on that knowledge with three objectives at once (point-wise classification, pair-wise
ranking, supervised contrastive) weighted per step by MGDA-UB (external alignment); the reader
is fine-tuned first on a pre-aligned task (judging whether a preference document among random
ones helps) and then on plain RAG SFT with the aligned reranker's top documents (internal
alignment).

Pure formulas beside the stages: ``categories`` (the four outcomes and the preference order),
``losses`` (the three objectives), ``mgda`` (the min-norm weights), ``nli`` (the filter rule)."""

from stages import import_modules

MODULES = import_modules(__name__, __path__)
