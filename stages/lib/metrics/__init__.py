"""Metrics: answer quality (EM, F1, match, ROUGE) and retrieval (pytrec_eval)."""
