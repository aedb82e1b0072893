"""Model backends: encoders, generators (transformers, vLLM), relevance scorers, search, packaged models."""
