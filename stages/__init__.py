"""The RAG stages. Importing this package registers every stage (the ``ragline.stages`` entry
point names it). One file per stage; pure logic in ``stages/lib``; artifact types in
``stages/schemas.py``. Heavy libraries are imported inside the stage functions only."""

from stages import (  # noqa: F401 - imported to register the stages
    aggregate,
    convert,
    dpo,
    evaluate,
    export,
    index,
    infer,
    label,
    load,
    pairs,
    prepare_model,
    rerank,
    retrieve,
    reward,
    sample,
    sft,
)
