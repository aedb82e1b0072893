"""The public API for stage code: the only orchestrator module ``stages/`` imports.

    from orchestrator.api import stage, StageContext, nonsemantic, recipe_path, added
    from orchestrator.api import Table, Directory, File, Metrics
    from orchestrator.api import ConfigError, DataError, did_you_mean   # errors a stage raises
"""

from orchestrator.artifacts import Directory, File, Metrics, Table
from orchestrator.context import StageContext
from orchestrator.errors import ConfigError, DataError, RagError, did_you_mean
from orchestrator.registry import added, nonsemantic, recipe_path, stage

__all__ = ["ConfigError", "DataError", "Directory", "File", "Metrics", "RagError", "StageContext",
           "Table", "added", "did_you_mean", "nonsemantic", "recipe_path", "stage"]
