"""Stages two or more recipes use, registered under plain names (``retrieve``, ``sft``), and
general ones a user adds to any recipe (``evaluate_retrieval``).

A stage moves here (``git mv``) the moment a second recipe uses it. Every module here that defines
a stage is imported when the package is: adding a file is all it takes to add a stage.
"""

from stages import import_modules

MODULES = import_modules(__name__, __path__)
