"""Reinforced-IR (SEEDS §5): unsupervised domain adaptation of a dense retriever and a
query-augmenting LLM from a target corpus, in alternating rounds (RLRF: DPO of the generator
with the retriever's feedback; RLGF: training of the retriever with the generator's feedback).

Pure formulas live beside the stages: ``feedback`` (the retriever-feedback reward and the DPO
margin filter), ``negatives`` (hard-negative mining), ``rankgpt`` (the listwise teacher's
permutation and scores), ``losses`` (the retriever's training losses, torch), ``fusion`` (the
fused query embedding used at inference)."""

from stages import import_modules

MODULES = import_modules(__name__, __path__)
