"""Data formats: corpus, questions and qrels readers (one module each, on shared line/JSON readers
in ``files``), the synthetic knowledge base, LLaMA-Factory export."""
