"""RAG-Instruct (SEEDS §4): a general RAG instruction set synthesised from a corpus under five
RAG paradigms (how the documents relate to the question: useless, supporting or answering, one
document or several), each question imitating a real exemplar instruction; every example's
documents are its source documents plus noise documents retrieved from far down the ranking;
a model is fine-tuned on the set with seven prompt wrappers drawn at random.

Pure formulas beside the stages: ``paradigms`` (the five paradigms and the released task
names), ``synthesis`` (rendering documents, reading the LLM's JSON reply), ``noise`` (the
documents an example is trained with), ``wrappers`` (the seven prompt wrappers), ``scorer``
(the paper's per-set accuracy)."""

from stages import import_modules

MODULES = import_modules(__name__, __path__)
