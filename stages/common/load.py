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
from stages.schemas import OneFile, Passages, QuestionFile, Questions

Split = Literal["train", "test", "validation", "dev", "val", "valid", "eval"]


@dataclass
class LoadConfig:
    # synthetic knowledge base (used when no input file is wired)
    seed: Annotated[int, Ge(0)] = 0
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
    # the sets the recipe scores against gold passage ids ('gold', or qrels): one in which no
    # question has any is refused here, not at its evaluate step after every other step
    require_gold: list[Literal["train", "eval"]] = nonsemantic([])


class LoadOutput(NamedTuple):
    corpus: Passages
    train: Questions
    eval: Questions


def _check_gold(corpus, table, name: str, ctx: StageContext) -> None:
    """Warn when gold passage ids are missing from the corpus (e.g. cut by max_passages)."""
    import pyarrow.compute as pc

    gold = pc.list_flatten(table.column("gold"))
    if not len(gold):
        return
    found = pc.is_in(gold, value_set=corpus["id"])
    missing = len(gold) - pc.sum(found).as_py()
    if missing:
        first = gold.filter(pc.invert(found))[0].as_py()
        ctx.log.warning("%s: %d of %d gold passage ids are not in the corpus (first: %r); "
                        "retrieval metrics will count them as misses", name, missing, len(gold), first)


def _check_shipped(table, name: str, ctx: StageContext) -> None:
    """Without a corpus, every question must carry its passages (an empty list: shipped with
    none, answered without passages): nothing could be retrieved."""
    import pyarrow.compute as pc

    ids = table.column("id")
    bare = ids.filter(pc.is_null(table.column("ctxs"))) if "ctxs" in table.column_names else ids
    if len(bare):
        raise DataError(f"step '{ctx.step}': {len(bare)} of {len(ids)} {name} questions ship no "
                        f"passages (first: {bare[0].as_py()!r}) and no corpus is wired to "
                        "retrieve them from; wire inputs.corpus, or give every question its ctxs")


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


@stage("load_data", version=12)  # 3: ASQA references and ARC choices kept; 4: options, set inputs
# 5: a question that ships no ctxs has a null ctxs, one shipped with ctxs: [] keeps []
# 6: a folder of splits is one set, named after it, read from one split; a folder of sets may hold
# such folders (steps downstream stay cached where the tables come out the same)
# 7: of files named after one dataset's splits (nq-dev, nq-test), one split is read
# 8: a file's set is its name unless the id prefix names a known set (not ARC's Mercury_...);
# an option letter (answerKey) is the gold before answer text; a JSON array's id-less elements
# are numbered 1, 2, ... (not by line)
# 9: ARC's numbered labels become letters, a text gold its option's letter, a letter past the
# options is refused; PopQA's possible_answers (a JSON list in a string) are its golds
# 10: an Alpaca record's input joins its instruction; dataset_name names the set; a JSON object
# of sets ({name: [records]}) is read as those sets
# 11: a dataset/source that is no set name (a URL) does not name the set; paragraph_text read;
# a NaN (JSON, Parquet) is a missing value, not the text "nan"
# 12: a JSONL corpus's id is each record's first id key present on the fast path too (it took the
# first key present on every record: _id over a record's own id); a JSON list of strings is read
def load_data(cfg: LoadConfig, ctx: StageContext, corpus: File | None = None,
              train: QuestionFile | None = None, eval: QuestionFile | None = None,
              qrels: OneFile | None = None) -> LoadOutput:
    """The corpus and the train/eval questions: read from the wired files, or generated."""
    from stages.lib.data.qrels import qrels_mismatch, read_qrels
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

    if judged is not None:
        ids = [i for name in ("train", "eval") for i in sets[name].column("id").to_pylist()]
        mismatch = qrels_mismatch(judged, ids, f"qrels {qrels_path}",
                                  cut=cfg.max_train is not None or cfg.max_eval is not None)
        if mismatch:
            ctx.log.warning("%s", mismatch)
    _warn_overlap(sets["train"], sets["eval"], ctx)
    if passages is None:
        passages = to_table([], Passages.schema)
    return LoadOutput(passages, sets["train"], sets["eval"])


def shared_questions(train: list[tuple[str, str]], eval: list[tuple[str, str]]) -> list[str]:
    """The ids of the evaluation questions that are training questions too: the same id and the
    same question. The text counts, not the id alone: a file without ids numbers its questions
    1, 2, ... (a question table does not say which ids a file gave), so two such files share ids
    but no question; the question alone would flag a rephrased set's repeats across ids, which
    is another check.

    >>> shared_questions([("1", "Who?"), ("2", "When?")], [("1", "Where?"), ("2", "When?")])
    ['2']
    """
    seen = set(train)
    return sorted(qid for qid, question in eval if (qid, question) in seen)


def _warn_overlap(train, eval, ctx: StageContext) -> None:
    """Warn when evaluation questions are training questions too (:func:`shared_questions`)."""
    def pairs(table):
        return list(zip(table.column("id").to_pylist(), table.column("question").to_pylist()))

    shared = shared_questions(pairs(train), pairs(eval))
    if shared:
        ctx.log.warning("%d questions are in both train and eval, with the same id and question "
                        "(first: %r); evaluation results will be optimistic", len(shared),
                        shared[0])


def _synthetic(cfg: LoadConfig, ctx: StageContext) -> LoadOutput:
    """The synthetic knowledge base: nothing wired."""
    from stages.lib.data.question_table import questions_table
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
                      questions_table(kb.train), questions_table(kb.eval))


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
                    judged):
    """One split's questions as a table (empty without a file), qrels merged, checked against
    the corpus' ids, or, without a corpus, for shipped passages. Rows are converted to Arrow a
    batch at a time as they are read (a 150k-question training file with 40 passages each
    would take several times its size as Python objects)."""
    import pyarrow.compute as pc

    from stages.lib.data.qrels import merge_qrels
    from stages.lib.data.question_sets import EVAL_SPLITS, TRAIN_SPLITS, iter_question_sets
    from stages.lib.data.question_table import questions_table, questions_table_in_batches

    if path is None:
        if cfg.required is None:   # the recipe does not say whether it reads this set
            ctx.log.warning("%s: no file wired; the %s output is empty", name, name)
        else:                      # a set it reads was checked by _check_required
            ctx.log.info("%s: no file wired, and the recipe reads none (required: [%s]); the %s "
                         "output is empty", name, ", ".join(cfg.required), name)
        return questions_table([])
    split = cfg.train_split if name == "train" else cfg.eval_split
    splits = (split,) if split else TRAIN_SPLITS if name == "train" else EVAL_SPLITS
    rows = iter_question_sets(path, require_answers=cfg.require_answers, max_questions=limit,
                              fields=cfg.question_fields, splits=splits)
    if judged is not None:
        rows = merge_qrels(rows, judged, cfg.min_qrel_score)
    table = questions_table_in_batches(rows)
    if judged is not None:
        ctx.log.info("%s: %d of %d questions have a relevant passage in the qrels", name,
                     pc.sum(pc.greater(pc.list_value_length(table.column("gold")), 0)).as_py() or 0,
                     table.num_rows)
    datasets = sorted(pc.unique(table.column("dataset")).to_pylist())
    shipped = table.column("ctxs") if "ctxs" in table.column_names else None
    with_ctxs = 0 if shipped is None else len(shipped) - shipped.null_count
    empty = 0 if shipped is None else pc.sum(pc.equal(pc.list_value_length(shipped), 0)).as_py()
    ctx.log.info("%s: %d questions from %s (datasets: %s%s%s)", name, table.num_rows, path,
                 ", ".join(datasets[:10]) + (" ..." if len(datasets) > 10 else ""),
                 f"; {with_ctxs} carry retrieved passages" if with_ctxs else "",
                 f", {empty} of them an empty list (ctxs: [])" if empty else "")
    if name in cfg.require_gold and not pc.any(pc.greater(
            pc.list_value_length(table.column("gold")), 0)).as_py():
        raise DataError(f"{path}: none of its {table.num_rows} {name} questions has a gold "
                        f"passage id, which this recipe scores retrieval against (steps."
                        f"{ctx.step}.require_gold: [{name}])",
                        hint="give qrels (data.qrels, or a BEIR folder's qrels/test.tsv) or "
                             "`gold` ids (ids of the corpus's passages) in the questions file")
    if passages is None:
        _check_shipped(table, name, ctx)
    else:
        _check_gold(passages, table, name, ctx)
    return table
