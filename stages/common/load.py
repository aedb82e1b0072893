"""Stage ``load_data``: the corpus and the train / eval questions, from files or generated.

With no inputs wired, a synthetic knowledge base of fictional entities is generated
(:mod:`stages.lib.data.synth`): a language model cannot answer its questions from memory, so a recipe
shows retrieval working on CPU in seconds. With files wired, the readers of
:mod:`stages.lib.data.corpus` and :mod:`stages.lib.data.questions` accept DPR ``psgs_w100.tsv``,
JSONL, FlashRAG, BEIR and Parquet corpora and the question shapes of FlashRAG, DPR (its
``*.qa.csv`` files too), Self-RAG, DynamicRAG, ALCE/ASQA and BEIR (with ``qrels`` merged into
``gold``). A question input may be a folder with one file per evaluation set (the paper's
``eval_data/``), a dataset's folder of splits (read from ``train_split`` / ``eval_split``), or a
folder of those (FlashRAG's datasets folder): see :mod:`stages.lib.data.question_sets`.

Questions refer to passages of *their* corpus, so a real corpus needs its questions and real
questions need their corpus: the stage refuses to mix files with generated data. The exception:
questions that all ship their passages (``ctxs``, as DynamicRAG's released files do) may come
without a corpus, which then comes out empty (reading psgs_w100's 21M passages for nothing
downstream to read is what ``conf/dynamicrag/shipped_passages.yaml`` avoids). When only one of
``train`` / ``eval`` is wired next to a corpus, the other comes out empty (an inference-only or a
training-only recipe), with a warning in the log. A recipe that says which sets it reads
(``required: [train, eval]``) turns that warning into an error at ``load`` naming the data key
left null (``data.eval_questions``), instead of an "input is empty" failure steps later, and a
set it does not read (Reinforced-IR's ``train``) into a plain log line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, NamedTuple

from annotated_types import Ge

from orchestrator.api import (ConfigError, DataError, File, StageContext, added, nonsemantic,
                              stage)
from stages.lib.data.fields import PassageField, QuestionField
from stages.schemas import CTX, Passages, Questions

Split = Literal["train", "test", "validation", "dev", "val", "valid", "eval"]


@dataclass
class LoadConfig:
    # synthetic knowledge base (used when no input file is wired)
    seed: int = 0
    num_entities: Annotated[int, Ge(1)] = 120
    passages_per_entity: Annotated[int, Ge(1)] = 2
    num_train: Annotated[int, Ge(0)] = 200
    num_eval: Annotated[int, Ge(0)] = 50
    # readers (used for wired files)
    # the corpus file format; None: detect it
    corpus_format: Literal["dpr", "jsonl", "flashrag", "beir", "parquet", "dataset"] | None = None
    max_passages: Annotated[int, Ge(1)] | None = None  # keep the first N passages of the corpus
    max_train: Annotated[int, Ge(0)] | None = None  # keep the first N train questions
    max_eval: Annotated[int, Ge(0)] | None = None  # keep the first N eval questions (of each set)
    # the split read from a dataset's folder of splits (FlashRAG's nq/{train,dev,test}.jsonl, a
    # saved DatasetDict); None: train for training, test (else validation, dev, ...) for eval
    train_split: Split | None = added(None)
    eval_split: Split | None = added(None)
    require_answers: bool = True         # a question without answers is an error
    # fields under names the readers do not know, {reader's name: file's name} (as
    # LLaMA-Factory's dataset `columns`), e.g. BERGEN's {question: content, answers: label}
    question_fields: dict[QuestionField, str] = added({})
    passage_fields: dict[PassageField, str] = added({})   # e.g. {text: content}
    min_qrel_score: int = 1              # qrels grade at which a passage counts as gold
    # the question sets the recipe reads downstream: with files wired, one of them without a file
    # is an error, any other is left empty with a log line; None: either may come out empty,
    # with a warning
    required: list[Literal["train", "eval"]] | None = nonsemantic(None)


class LoadOutput(NamedTuple):
    corpus: Passages
    train: Questions
    eval: Questions


def _questions_table(rows: list[dict]):
    """Question rows as a Questions table; ``ctxs`` already in the file is kept, typed: a
    question that ships none has a null ``ctxs`` (``retrieve`` searches for it), one that ships
    an empty list keeps ``[]`` (shipped with no passages)."""
    import pyarrow as pa

    from stages.lib.data.tables import to_table

    schema = Questions.schema
    if any("retrieved_question" in r for r in rows):   # DynamicRAG's retrieval query
        schema = schema.append(pa.field("retrieved_question", pa.string()))
    if any("ctxs" in r for r in rows):
        schema = schema.append(pa.field("ctxs", pa.list_(CTX)))
    if any("choices" in r for r in rows):    # ARC / OBQA: the options, in label order
        schema = schema.append(pa.field("choices", pa.list_(pa.string())))
    for name, kind in (("context", pa.string()), ("instruction", pa.string()),
                       ("previous_question", pa.list_(pa.string()))):
        if any(name in r for r in rows):   # a set's own inputs (RAG-Instruct: PubMedQA, ConvFinQA)
            schema = schema.append(pa.field(name, kind))
    if any("qa_pairs" in r for r in rows):   # ASQA: ALCE's str-em / ROUGE-Lsum references
        schema = schema.append(pa.field("qa_pairs", pa.list_(pa.list_(pa.string()))))
        schema = schema.append(pa.field("long_answers", pa.list_(pa.string())))
    return to_table(rows, schema, keep_null=("ctxs",))


def _check_gold(corpus, rows: list[dict], name: str, ctx: StageContext) -> None:
    """Warn when gold passage ids are missing from the corpus (e.g. cut by max_passages)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    gold = [g for r in rows for g in r["gold"]]
    if not gold:
        return
    found = pc.is_in(pa.array(gold, pa.string()), value_set=corpus["id"])
    missing = len(gold) - pc.sum(found).as_py()
    if missing:
        first = next(g for g, ok in zip(gold, found.to_pylist()) if not ok)
        ctx.log.warning("%s: %d of %d gold passage ids are not in the corpus (first: %r); "
                        "retrieval metrics will count them as misses", name, missing, len(gold), first)


def _check_shipped(rows: list[dict], name: str, ctx: StageContext) -> None:
    """Without a corpus, every question must carry its passages (an empty list: shipped with
    none, answered without passages): nothing could be retrieved."""
    bare = [r["id"] for r in rows if r.get("ctxs") is None]
    if bare:
        raise DataError(f"step '{ctx.step}': {len(bare)} of {len(rows)} {name} questions ship no "
                        f"passages (first: {bare[0]!r}) and no corpus is wired to retrieve them "
                        "from; wire inputs.corpus, or give every question its ctxs")


def _beir_folder(corpus, eval, qrels, ctx: StageContext):
    """(corpus, eval questions, qrels) paths; a corpus that is a BEIR folder supplies all three
    (``corpus.jsonl``, ``queries.jsonl``, each possibly ``.gz`` as the Hugging Face Hub serves
    them, and ``qrels/test.tsv``) unless eval or qrels are wired."""
    from stages.lib.data.files import saved_dataset_files

    path = corpus.path
    if not path.is_dir() or saved_dataset_files(path) is not None:   # a file, or save_to_disk's
        return path, (eval.path if eval is not None else None), (qrels.path if qrels is not None else None)

    def part(name: str):
        return next((p for p in (path / name, path / f"{name}.gz") if p.is_file()), path / name)

    parts = {"corpus": part("corpus.jsonl")}
    if eval is None:
        parts["queries"] = part("queries.jsonl")
    if qrels is None:
        parts["qrels"] = path / "qrels" / "test.tsv"
    missing = [p for p in parts.values() if not p.is_file()]
    if missing and missing[0] == parts.get("qrels") and (path / "qrels").is_dir():
        splits = sorted(q.name for q in (path / "qrels").glob("*.tsv"))
        raise ConfigError(f"step '{ctx.step}': the BEIR folder {path} has no qrels/test.tsv "
                          f"(qrels/ holds: {', '.join(splits) or 'nothing'})",
                          hint=f"set data.qrels={path / 'qrels' / (splits or ['dev.tsv'])[0]} (the "
                               f"step's inputs.qrels) to evaluate on that split")
    if missing:
        raise ConfigError(f"step '{ctx.step}': the corpus {path} is a folder but not a BEIR folder: "
                          f"{missing[0]} is missing",
                          hint="point the corpus at one file (join the parts first: cat "
                               "part*.jsonl > corpus.jsonl), or at a BEIR folder holding "
                               "corpus.jsonl, queries.jsonl and qrels/test.tsv")
    ctx.log.info("BEIR folder %s: %s", path, ", ".join(f"{p.relative_to(path)} ({name})"
                                                       for name, p in parts.items()))
    return (parts["corpus"], eval.path if eval is not None else parts["queries"],
            qrels.path if qrels is not None else parts["qrels"])


@stage("load_data", version=7)  # 3: ASQA references and ARC choices kept; 4: options, set inputs
# 5: a question that ships no ctxs has a null ctxs, one shipped with ctxs: [] keeps []
# 6: a folder of splits is one set, named after it, read from one split; a folder of sets may hold
# such folders (steps downstream stay cached where the tables come out the same)
# 7: of files named after one dataset's splits (nq-dev, nq-test), one split is read
def load_data(cfg: LoadConfig, ctx: StageContext, corpus: File | None = None,
              train: File | None = None, eval: File | None = None,
              qrels: File | None = None) -> LoadOutput:
    """The corpus and the train/eval questions: read from the wired files, or generated."""
    from stages.lib.data.qrels import read_qrels
    from stages.lib.data.tables import to_table

    if corpus is None and train is None and eval is None:
        if qrels is not None:
            raise ConfigError(f"step '{ctx.step}': qrels wired without a corpus or questions; "
                              "qrels judge passages of a corpus for its questions, so wire "
                              "inputs.corpus and inputs.eval too (or wire nothing to generate a "
                              "synthetic set)")
        return _synthetic(cfg, ctx)

    train_path = train.path if train is not None else None
    if corpus is None:   # questions that ship their passages (checked below) need no corpus
        eval_path = eval.path if eval is not None else None
        qrels_path = qrels.path if qrels is not None else None
    else:
        corpus_path, eval_path, qrels_path = _beir_folder(corpus, eval, qrels, ctx)
        if train_path is None and eval_path is None:
            raise ConfigError(f"step '{ctx.step}': a corpus is wired but no questions; questions "
                              "must come with their corpus: wire inputs.train and/or inputs.eval "
                              "(or wire nothing to generate a synthetic set)")
    _check_required(cfg, ctx, {"train": train_path, "eval": eval_path})
    if corpus is None:
        passages = None
        ctx.log.info("no corpus wired: every question must ship its passages (ctxs); the corpus "
                     "output is empty")
    else:
        passages = _read_corpus(cfg, ctx, corpus_path)

    judged = None
    if qrels_path is not None:
        judged = read_qrels(qrels_path)
        ctx.log.info("qrels: %d judged questions from %s", len(judged), qrels_path)
    sets = {name: _read_questions(cfg, ctx, name, path, limit, passages, judged)
            for name, path, limit in (("train", train_path, cfg.max_train),
                                      ("eval", eval_path, cfg.max_eval))}

    overlap = {r["id"] for r in sets["train"]} & {r["id"] for r in sets["eval"]}
    if overlap:
        ctx.log.warning("%d question ids are in both train and eval (first: %r); evaluation "
                        "results will be optimistic", len(overlap), sorted(overlap)[0])
    if passages is None:
        passages = to_table([], Passages.schema)
    return LoadOutput(passages, _questions_table(sets["train"]), _questions_table(sets["eval"]))


def _synthetic(cfg: LoadConfig, ctx: StageContext) -> LoadOutput:
    """The synthetic knowledge base: nothing wired."""
    from stages.lib.data.synth import make_synthkb
    from stages.lib.data.tables import to_table

    try:
        kb = make_synthkb(cfg.seed, cfg.num_entities, cfg.passages_per_entity,
                          cfg.num_train, cfg.num_eval)
    except ValueError as e:
        raise ConfigError(f"step '{ctx.step}': {e}") from None
    ctx.log.info("generated the synthetic knowledge base (seed %d): %d passages about %d "
                 "fictional entities, %d train and %d eval questions", cfg.seed,
                 len(kb.passages), len(kb.entities), len(kb.train), len(kb.eval))
    return LoadOutput(to_table(kb.passages, Passages.schema),
                      _questions_table(kb.train), _questions_table(kb.eval))


def _check_required(cfg: LoadConfig, ctx: StageContext, paths: dict) -> None:
    """Refuse, before the corpus is read, a set the recipe reads (``required``) that has no file
    while others do: a data key left null, which would fail steps later as an empty input."""
    missing = [name for name in cfg.required or [] if paths[name] is None]
    if missing:
        name, required = missing[0], ", ".join(cfg.required)
        raise ConfigError(f"step '{ctx.step}': no {name} questions: data.{name}_questions is null "
                          f"(inputs.{name} has no file) while other data files are set, and this "
                          f"recipe reads them (steps.{ctx.step}.required: [{required}]); set "
                          f"data.{name}_questions=PATH (a question file, or a folder of sets), or "
                          "set every data path to null for the synthetic set")


def _read_corpus(cfg: LoadConfig, ctx: StageContext, corpus_path):
    """The passages of the corpus file."""
    from stages.lib.data.corpus import detect_corpus_format, read_corpus_table

    fmt = cfg.corpus_format or detect_corpus_format(corpus_path)
    passages = read_corpus_table(corpus_path, fmt, cfg.max_passages, fields=cfg.passage_fields)
    ctx.log.info("corpus: %d passages from %s (format %s%s)", passages.num_rows, corpus_path,
                 fmt, f", first {cfg.max_passages}" if cfg.max_passages else "")
    return passages


def _read_questions(cfg: LoadConfig, ctx: StageContext, name: str, path, limit, passages,
                    judged) -> list[dict]:
    """One split's question rows (none without a file), qrels merged, checked against the
    corpus' ids, or, without a corpus, for shipped passages."""
    from stages.lib.data.qrels import merge_qrels
    from stages.lib.data.question_sets import EVAL_SPLITS, TRAIN_SPLITS, read_question_sets

    if path is None:
        if cfg.required is None:   # the recipe does not say whether it reads this set
            ctx.log.warning("%s: no file wired; the %s output is empty", name, name)
        else:                      # a set it reads was checked by _check_required
            ctx.log.info("%s: no file wired, and the recipe reads none (required: [%s]); the %s "
                         "output is empty", name, ", ".join(cfg.required), name)
        return []
    split = cfg.train_split if name == "train" else cfg.eval_split
    splits = (split,) if split else TRAIN_SPLITS if name == "train" else EVAL_SPLITS
    rows = read_question_sets(path, require_answers=cfg.require_answers, max_questions=limit,
                              fields=cfg.question_fields, splits=splits)
    if judged is not None:
        rows = merge_qrels(rows, judged, cfg.min_qrel_score)
        ctx.log.info("%s: %d of %d questions have a relevant passage in the qrels", name,
                     sum(1 for r in rows if r["gold"]), len(rows))
    datasets = sorted({r["dataset"] for r in rows})
    with_ctxs = sum("ctxs" in r for r in rows)
    empty = sum(r.get("ctxs") == [] for r in rows)
    ctx.log.info("%s: %d questions from %s (datasets: %s%s%s)", name, len(rows), path,
                 ", ".join(datasets[:10]) + (" ..." if len(datasets) > 10 else ""),
                 f"; {with_ctxs} carry retrieved passages" if with_ctxs else "",
                 f", {empty} of them an empty list (ctxs: [])" if empty else "")
    if passages is None:
        _check_shipped(rows, name, ctx)
    else:
        _check_gold(passages, rows, name, ctx)
    return rows
