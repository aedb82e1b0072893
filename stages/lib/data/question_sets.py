"""A question input that is a file, or a folder of evaluation sets (one file per set).

The DynamicRAG evaluation data ships as a folder (``eval_data/nq.jsonl``, ``triviaqa.jsonl``,
``hotpotqa.jsonl``, ``2wiki.jsonl``, ``fever.jsonl``, ``eli5.jsonl``, ``asqa.jsonl``). A folder is
read set by set, in name order: each file is one set, and every row's ``dataset`` is the file
name without extensions (``asqa.jsonl.gz`` -> ``asqa``), as the original inference script chose
the answer style by file name (a record's own ``dataset`` field is overridden), and its question
ids become ``<set>/<id>`` (sets number their questions independently, so bare ids would collide;
ids from the line number become ``<set>/<line>``). ``max_questions`` applies
per set. Files whose names start with ``.`` or ``_`` are skipped, as are non-question files
(anything but ``.jsonl``, ``.json``, ``.ndjson``, ``.csv``, ``.tsv``, optionally ``.gz``, and
``.parquet``/``.pq``)
and subfolders other than a Hugging Face dataset's ``save_to_disk`` folder or a dataset's folder
of splits (below), with a warning naming those (a set saved as ``nq.txt`` is not left out
unseen). A question input may also be one such saved dataset folder itself.

A file named after a split (``test.jsonl``; the Hub's ``validation-00000-of-00001.parquet``) is
one split of one dataset, not a set. FlashRAG keeps ``nq/train.jsonl``, ``nq/dev.jsonl`` and
``nq/test.jsonl`` side by side, and its root folder holds one such folder per dataset
(``nq/``, ``triviaqa/``, ``hotpotqa/``, ...); a ``DatasetDict`` saved with ``save_to_disk`` is a
folder of split folders. Reading the splits as sets would evaluate on the training questions too,
and average them in. So a folder of splits is one set, named after the folder
(``nq/test.jsonl`` -> ``nq``), read from one split: the first of ``splits`` that it holds
(evaluation: test, else validation, dev, ...; training: train), and a folder of such folders is a
folder of sets, one per dataset. The split read is logged when the folder holds others; a
folder without any of ``splits`` is refused, naming the splits it has. A split in several files
(``train-00000-of-00002``, ``train-00001-of-00002``) is read file by file, its question ids
prefixed with the file's number when there are several (``nq_open/1-17``).

A folder of sets may also keep each dataset's splits side by side, under names that end with
the split (DPR's ``nq-train.qa.csv``, ``nq-dev.qa.csv``, ``nq-test.qa.csv``,
``trivia-test.qa.csv``, ``webq-test.qa.csv``). Where one dataset has several such files, only
the split picked as above is read (``nq-test`` for evaluation, ``nq-train`` for training), under
its own name, and the others are named in a warning as left out. A set with one file
(``webq-test``, ``fever_dev``) is read whatever its name says; one read for evaluation whose name
says train (``nq-train`` alone) is read with a warning, as is one read for training whose
name ends with another split (``webq-test``). Fields the reader does not take are
named in one warning for the whole folder (FlashRAG's ``metadata`` would otherwise be named
once per set).

The dataset name then picks each set's answer style at inference (fever, eli5, ...) and groups
its metrics in ``evaluate`` (one block per set and their macro average).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from orchestrator.api import DataError
from stages.lib.data.files import DELIMITED_SUFFIXES, PARQUET_SUFFIXES, saved_dataset_files
from stages.lib.data.questions import SPLIT_NAMES, iter_questions, warn_dropped
from stages.lib.data.set_names import names_set

log = logging.getLogger(__name__)
TEXT_SUFFIXES = (".jsonl", ".json", ".ndjson") + DELIMITED_SUFFIXES   # optionally .gz
ONE_FILE = ("one JSON, CSV or TSV file (.jsonl/.json/.ndjson/.csv/.tsv, optionally .gz), Parquet "
            "file (.parquet/.pq) or saved dataset folder (save_to_disk)")
EVAL_SPLITS = ("test", "validation", "dev", "val", "valid", "eval")   # evaluation's, in order
TRAIN_SPLITS = ("train",)
_SHARD = re.compile(r"-\d{5}-of-\d{5}$")   # the Hub's data files: train-00000-of-00002
_SPLIT_END = re.compile(r"^(.+?)[-_](train|dev|test|validation|val|valid|eval)$")


def set_name(path: Path) -> str:
    """The evaluation set a file holds: its name without extensions, lower-cased.

    >>> set_name(Path("eval_data/NQ.jsonl.gz")), set_name(Path("2wiki.json"))
    ('nq', '2wiki')
    """
    return path.name.split(".")[0].lower()


def split_of(path: Path) -> str | None:
    """The split a file or saved dataset folder holds, by its name, or None for a set's file.

    >>> [split_of(Path(n)) for n in ("test.jsonl", "validation-00000-of-00001.parquet",
    ...                              "nq-test.qa.csv", "nq.jsonl")]
    ['test', 'validation', None, None]
    """
    name = _SHARD.sub("", set_name(path))
    return name if name in SPLIT_NAMES else None


def split_at_end(name: str) -> tuple[str, str] | None:
    """``(dataset, split)`` of a set whose name ends with a split (DPR's ``nq-test``), else None.

    >>> split_at_end("nq-test"), split_at_end("nq_open_validation"), split_at_end("nq")
    (('nq', 'test'), ('nq_open', 'validation'), None)
    """
    m = _SPLIT_END.match(name)
    return (m.group(1), m.group(2)) if m else None


def pick_split(held: Sequence[str], splits: Sequence[str]) -> str | None:
    """The split to read: the first of ``splits`` among those ``held``, else None.

    >>> pick_split(["dev", "test", "train"], ("test", "validation", "dev"))
    'test'
    >>> pick_split(["dev", "train"], ("test", "validation", "dev")), pick_split(["dev"], ["train"])
    ('dev', None)
    """
    return next((s for s in splits if s in held), None)


def question_files(folder: Path) -> tuple[list[Path], list[str]]:
    """The question files of a folder, in name order, and the names of its other entries that
    are not hidden (``.``, ``_``): a set saved as ``.txt`` or ``.bz2``, a subfolder. A saved
    dataset's folder is a question file; a ``DatasetDict``'s ``dataset_dict.json`` is neither."""
    files, others = [], []
    for p in sorted(folder.iterdir()):
        if p.name.startswith((".", "_")) or p.name == "dataset_dict.json":
            continue
        text_file = p.name.removesuffix(".gz").endswith(TEXT_SUFFIXES)
        if (p.is_file() and (text_file or p.name.endswith(PARQUET_SUFFIXES))
                or (p / "state.json").is_file()):   # a dataset's save_to_disk folder
            files.append(p)
        else:
            others.append(p.name + ("/" if p.is_dir() else ""))
    return files, others


def find_sets(folder: Path, splits: Sequence[str]) -> list[tuple[str, list[Path]]]:
    """The sets of a folder, in name order: ``(name, files)``, files being one set's file or the
    files of the split read from a folder of splits (see module doc)."""
    files, others = question_files(folder)
    found = [(set_name(f), [f]) for f in files if split_of(f) is None]
    if len(found) < len(files):   # the folder itself is one dataset's splits
        found.append((folder.name.lower(), _split_files(folder, files, splits)))
    skipped = []
    for name in others:
        sub = folder / name.rstrip("/")
        sub_files = question_files(sub)[0] if name.endswith("/") else []
        if any(split_of(f) for f in sub_files):   # a dataset's folder of splits
            found.append((sub.name.lower(), _split_files(sub, sub_files, splits)))
        else:
            skipped.append(name)
    if not found:
        raise DataError(f"{folder}: the folder has no question files (it holds: "
                        f"{', '.join(others) or 'nothing'}); expected {ONE_FILE} per evaluation "
                        "set; point the input at a question file, or at a folder of them")
    if skipped:   # a set saved as .txt would otherwise be left out without a word
        log.warning("%s: skipped %s (not question files: %s per evaluation set)", folder,
                    ", ".join(skipped), ONE_FILE)
    found = _one_split_per_dataset(folder, found, splits)
    names = [name for name, _ in found]
    if "train" not in splits:   # evaluation: a training split alone (nq-train)
        trained = [n for n in names if names_set("train", n)]
        if trained:
            log.warning("%s: %s named like training data, yet evaluated as a set of its own and "
                        "averaged in; move it out of the folder if it is a training split",
                        folder, ", ".join(trained) + (" is" if len(trained) == 1 else " are"))
    else:   # training: an evaluation split alone (webq-test)
        held_out = [n for n in names if (parts := split_at_end(n)) and parts[1] not in splits]
        if held_out:
            log.warning("%s: %s named like evaluation data, yet read as training questions; move "
                        "it out of the folder if it is a test or dev split", folder,
                        ", ".join(held_out) + (" is" if len(held_out) == 1 else " are"))
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        held = [str(f.relative_to(folder)) for n, fs in found if n == twice[0] for f in fs]
        raise DataError(f"{folder}: several files hold the set {twice[0]!r} ({', '.join(held)}); "
                        "keep one file per evaluation set")
    return sorted(found)


def _one_split_per_dataset(folder: Path, found: list, splits: Sequence[str]) -> list:
    """``found`` less the sets that are another split of a dataset with several (``nq-dev`` and
    ``nq-train`` beside ``nq-test``), named in a warning."""
    held: dict[str, dict[str, list[str]]] = {}   # dataset -> split -> set names
    for name, _ in found:
        if parts := split_at_end(name):
            held.setdefault(parts[0], {}).setdefault(parts[1], []).append(name)
    left_out, kept = [], []
    for dataset, by_split in sorted(held.items()):
        if len(by_split) < 2:
            continue
        pick = pick_split(list(by_split), splits)
        if pick is None:
            raise DataError(f"{folder}: no {' / '.join(splits)} split of {dataset} (its files: "
                            f"{', '.join(n for ns in by_split.values() for n in ns)}); name the "
                            "split to read with the load step's eval_split or train_split, or "
                            "leave the dataset's files out of the input folder")
        kept += by_split[pick]
        left_out += [n for s, ns in by_split.items() if s != pick for n in ns]
    if left_out:
        log.warning("%s: left out %s, other splits of the datasets of %s (one split per "
                    "dataset is read, the first held of %s; the load step's eval_split or "
                    "train_split names another)", folder,
                    ", ".join(sorted(left_out)), ", ".join(sorted(kept)), " / ".join(splits))
    return [(name, files) for name, files in found if name not in left_out]


def _split_files(folder: Path, files: list[Path], splits: Sequence[str]) -> list[Path]:
    """The files of the split to read from a dataset's folder of splits."""
    held = sorted({s for s in map(split_of, files) if s})
    pick = pick_split(held, splits)
    if pick is None:
        raise DataError(f"{folder}: no {' / '.join(splits)} split (the dataset's splits: "
                        f"{', '.join(held)}); name the split to read with the load step's "
                        "eval_split or train_split, or leave the dataset out of the input folder, "
                        "or point the input at one split's file")
    if len(held) > 1:
        log.info("%s: reading the %s split (the folder also holds %s)", folder, pick,
                 ", ".join(s for s in held if s != pick))
    return [f for f in files if split_of(f) == pick]


def read_question_sets(path: str | Path, *, require_answers: bool = True,
                       max_questions: int | None = None,
                       fields: dict[str, str] | None = None,
                       splits: Sequence[str] = EVAL_SPLITS) -> list[dict]:
    """Question rows from a file, or from every set of a folder (see module doc); ``splits``:
    which split a folder of splits is read from, the first it holds; ``fields`` maps fields
    under other names (:mod:`stages.lib.data.fields`)."""
    return list(iter_question_sets(path, require_answers=require_answers,
                                   max_questions=max_questions, fields=fields, splits=splits))


def iter_question_sets(path: str | Path, *, require_answers: bool = True,
                       max_questions: int | None = None,
                       fields: dict[str, str] | None = None,
                       splits: Sequence[str] = EVAL_SPLITS) -> Iterator[dict]:
    """:func:`read_question_sets` a row at a time (a large training file need not be held
    whole as Python objects)."""
    path = Path(path)
    dataset_dict = (path / "dataset_dict.json").is_file()
    if not path.is_dir() or not dataset_dict and saved_dataset_files(path) is not None:
        yield from iter_questions(path, require_answers=require_answers,
                                  max_questions=max_questions, fields=fields)
        return
    total = 0
    dropped: dict[str, int] = {}
    dropped_in: list[str] = []   # the sets with a field not read
    for name, files in find_sets(path, splits):
        count = 0
        before = sum(dropped.values())
        for number, file in enumerate(files):
            left = None if max_questions is None else max_questions - count
            if left == 0:
                break
            prefix = f"{name}/{number}-" if len(files) > 1 else f"{name}/"
            for row in iter_questions(file, require_answers=require_answers, max_questions=left,
                                      default_dataset=name, fields=fields, dropped_counts=dropped):
                row["id"], row["dataset"] = prefix + row["id"], name
                count += 1
                yield row
        log.info("%s: %d questions (set %s)", files[0] if len(files) == 1 else files[0].parent,
                 count, name)
        total += count
        if sum(dropped.values()) > before:
            dropped_in.append(name)
    warn_dropped(f"{path} (sets {', '.join(dropped_in)})", dropped, total)
