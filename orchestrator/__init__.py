"""ragline's orchestrator: typed stages, Hydra recipes, a content-addressed cache, and a DAG runner.

This package knows nothing about RAG. Stage code imports only :mod:`orchestrator.api`.
Keep this module cheap to import: ``rag --help`` must stay fast.
"""

__version__ = "0.1.0"
