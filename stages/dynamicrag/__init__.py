"""DynamicRAG (SEEDS §1): its stages, registered as ``dynamicrag.<name>``, with the recipe's
pure formulas (``prompts``, ``buckets``, ``pairs_logic``, ``windows``, ``reward_logic``) and its
own artifact types (``schemas``) beside them. The recipe's DAG is ``conf/dynamicrag/pipeline.yaml``
and its prompt files are under ``conf/prompts/dynamicrag/``.

Importing the package imports every module here that defines a stage (``stages.import_modules``);
the formula modules come with the stages that use them.
"""

from stages import import_modules

MODULES = import_modules(__name__, __path__)
