"""Data formats: corpus and question loaders, the synthetic knowledge base, LLaMA-Factory export."""
