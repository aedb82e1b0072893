"""A question input that is a file, or a folder of evaluation sets (one file per set).

The DynamicRAG evaluation data ships as a folder (``eval_data/nq.jsonl``, ``triviaqa.jsonl``,
``hotpotqa.jsonl``, ``2wiki.jsonl``, ``fever.jsonl``, ``eli5.jsonl``, ``asqa.jsonl``). A folder is
read file by file, in name order: each file is one set, and every row's ``dataset`` is the file
name without extensions (``asqa.jsonl.gz`` -> ``asqa``), as the original inference script chose
the answer style by file name (a record's own ``dataset`` field is overridden), and its question
ids become ``<set>/<id>`` (sets number their questions independently, so bare ids would collide;
ids from the line number become ``<set>/<line>``). ``max_questions`` applies
per set. Files whose names start with ``.`` or ``_`` are skipped, as are non-question files
(anything but ``.jsonl``, ``.json``, ``.ndjson``, ``.csv``, ``.tsv``, optionally ``.gz``, and
``.parquet``/``.pq``)
and subfolders other than a Hugging Face dataset's ``save_to_disk`` folder, with a warning naming
those (a set saved as ``nq.txt`` is not left out unseen). A question input may also be one such
saved dataset folder itself (one split of a ``DatasetDict``).

A file named after a split (``test.jsonl``; the Hub's ``validation-00000-of-00001.parquet``) is
one split of one dataset, not a set: FlashRAG keeps ``nq/train.jsonl``, ``nq/dev.jsonl`` and
``nq/test.jsonl`` side by side, and reading that folder as three sets would evaluate on the
training questions too, and average them in. A folder with several such files is refused, naming
them; a lone one is the set named after its folder (``nq/test.jsonl`` -> ``nq``).

The dataset name then picks each set's answer style at inference (fever, eli5, ...) and groups
its metrics in ``evaluate`` (one block per set and their macro average).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from orchestrator.api import DataError
from stages.lib.data.files import DELIMITED_SUFFIXES, PARQUET_SUFFIXES, saved_dataset_files
from stages.lib.data.questions import SPLIT_NAMES, read_questions

log = logging.getLogger(__name__)
TEXT_SUFFIXES = (".jsonl", ".json", ".ndjson") + DELIMITED_SUFFIXES   # optionally .gz
ONE_FILE = ("one JSON, CSV or TSV file (.jsonl/.json/.ndjson/.csv/.tsv, optionally .gz), Parquet "
            "file (.parquet/.pq) or saved dataset folder (save_to_disk)")


def set_name(path: Path) -> str:
    """The evaluation set a file holds: its name without extensions, lower-cased.

    >>> set_name(Path("eval_data/NQ.jsonl.gz")), set_name(Path("2wiki.json"))
    ('nq', '2wiki')
    """
    return path.name.split(".")[0].lower()


EVAL_SPLITS = ("test", "validation", "dev", "val", "valid", "eval")   # the one an error suggests
_SHARD = re.compile(r"-\d{5}-of-\d{5}$")   # the Hub's data files: train-00000-of-00002


def is_split(name: str) -> bool:
    """Whether a set name is a split's (``test``, ``validation-00000-of-00001``), not a set's.

    >>> [is_split(n) for n in ("test", "validation-00000-of-00001", "nq-test", "nq")]
    [True, True, False, False]
    """
    return _SHARD.sub("", name) in SPLIT_NAMES


def question_files(folder: Path) -> tuple[list[Path], list[str]]:
    """The question files of a folder, in name order, and the names of its other entries that
    are not hidden (``.``, ``_``): a set saved as ``.txt`` or ``.bz2``, a subfolder."""
    files, others = [], []
    for p in sorted(folder.iterdir()):
        if p.name.startswith((".", "_")):
            continue
        text_file = p.name.removesuffix(".gz").endswith(TEXT_SUFFIXES)
        if (p.is_file() and (text_file or p.name.endswith(PARQUET_SUFFIXES))
                or (p / "state.json").is_file()):   # a dataset's save_to_disk folder
            files.append(p)
        else:
            others.append(p.name + ("/" if p.is_dir() else ""))
    return files, others


def read_question_sets(path: str | Path, *, require_answers: bool = True,
                       max_questions: int | None = None,
                       fields: dict[str, str] | None = None) -> list[dict]:
    """Question rows from a file, or from every question file of a folder (see module doc);
    ``fields`` maps fields under other names (:mod:`stages.lib.data.fields`)."""
    path = Path(path)
    if not path.is_dir() or saved_dataset_files(path) is not None:
        return read_questions(path, require_answers=require_answers, max_questions=max_questions,
                              fields=fields)
    files, others = question_files(path)
    if not files:
        raise DataError(f"{path}: the folder has no question files (it holds: "
                        f"{', '.join(others) or 'nothing'}); expected {ONE_FILE} per evaluation "
                        "set; point the input at a question file, or at a folder of them")
    if others:   # a set saved as .txt would otherwise be left out without a word
        log.warning("%s: skipped %s (not question files: %s per evaluation set)", path,
                    ", ".join(others), ONE_FILE)
    names = [set_name(f) for f in files]
    splits = [f for f, name in zip(files, names) if is_split(name)]
    if len(splits) > 1:
        held = [_SHARD.sub("", set_name(f)) for f in splits]
        pick = next((splits[held.index(n)] for n in EVAL_SPLITS if n in held), splits[0])
        raise DataError(f"{path}: the folder holds split files "
                        f"({', '.join(f.name for f in splits)}), the splits of one dataset, not "
                        f"one file per evaluation set; point the input at the split to read, "
                        f"e.g. {pick}")
    names = [path.name.lower() if is_split(name) else name for name in names]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise DataError(f"{path}: several files hold the set {twice[0]!r} "
                        f"({', '.join(f.name for f in files if set_name(f) == twice[0])}); "
                        "keep one file per evaluation set")
    rows: list[dict] = []
    for file, name in zip(files, names):
        part = read_questions(file, require_answers=require_answers,
                              max_questions=max_questions, default_dataset=name, fields=fields)
        for row in part:
            row["id"], row["dataset"] = f"{name}/{row['id']}", name
        log.info("%s: %d questions (set %s)", file, len(part), name)
        rows += part
    return rows
