"""Stage ``dynamicrag.label``: DynamicRAG behaviour-cloning targets and the SFT / DPO split.

Seed steps: DynamicRAG ``process_training_data.py`` (SEEDS 1.3 step 4) and
``split_for_sft_dpo.py`` (step 6). The expert labels (``ctxs[i].relevant``, from monoT5 in the
paper) come from the rerank stage.

Fixes relative to the seeds: the output is a pure function of the input and ``seed`` (the seed
code shuffled with the global RNG); a bucket length never exceeds the item's number of passages;
the stage fails with a clear message when no passage carries a ``relevant`` label; ``n_sft`` may
be a fraction (own data of any size), and a split that would leave DPO without questions is
refused here, before any training, naming the setting. The rows are taken from the input table
a row group at a time and never held as Python objects (150,000 questions with 40 passages each
took 11 GB as Python rows); the SFT and DPO rows are then put in the seeded shuffle's order, as
the seed code wrote them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, NamedTuple

from annotated_types import Ge

from orchestrator.api import ConfigError, DataError, StageContext, stage
from stages.dynamicrag.buckets import BCRow, bc_targets, split_sft_dpo
from stages.dynamicrag.schemas import BCTargets
from stages.lib.data.tables import item_named
from stages.schemas import INT_LIST, Reranked

ROWS_AT_A_TIME = 2048   # input rows decoded at once (about 60 MiB with 40 passages each)
RELEVANT_COLUMN = "ctxs.list.element.relevant"   # its Parquet path (Arrow writes lists so)


@dataclass
class LabelConfig:
    max_len: Annotated[int, Ge(1)] = 15  # target lengths L = 0..14 (paper)
    bucket_cap: Annotated[int, Ge(1)] = 2000  # BC rows per length bucket (paper)
    # BC rows in all (paper: 15 x 2,000); None = bucket caps only
    total_cap: Annotated[int, Ge(1)] | None = 30000
    n_sft: Annotated[float, Ge(0)] = 70000  # leftover questions for generator SFT (paper: 70,000):
                                       # a count, or a fraction in (0, 1); the rest -> DPO
    # cap on DPO questions (None: all the rest, as the paper)
    n_dpo: Annotated[int, Ge(1)] | None = None
    seed: Annotated[int, Ge(0)] = 0  # shuffles of the target ids and of the SFT/DPO split


class Labelled(NamedTuple):
    bc: BCTargets      # reranker behaviour-cloning targets
    sft: Reranked      # questions for generator SFT
    dpo: Reranked      # questions for DPO trajectory sampling


@stage("dynamicrag.label", version=1)
def label(reranked: Reranked, cfg: LabelConfig, ctx: StageContext) -> Labelled:
    """Bucketed BC targets from expert relevance labels; other questions split into SFT / DPO."""
    labels = relevance_labels(reranked)
    if labels and not any(x is not None for item in labels for x in item):
        raise DataError("label: no passage has a 'relevant' label (ctxs[].relevant is empty in "
                        "every row); run the expert reranker on these questions first")
    split = bc_targets(labels, max_len=cfg.max_len, bucket_cap=cfg.bucket_cap,
                       total_cap=cfg.total_cap, seed=cfg.seed)
    n_sft = sft_count(cfg.n_sft, len(split.normal))
    sft, dpo = split_sft_dpo(split.normal, n_sft=n_sft, seed=cfg.seed)
    if cfg.n_dpo is not None:
        if cfg.n_dpo > len(dpo):
            ctx.log.warning("label: n_dpo %d is more than the %d questions left for DPO; all "
                            "%d are used", cfg.n_dpo, len(dpo), len(dpo))
        dpo = dpo[:cfg.n_dpo]

    per_bucket = [0] * cfg.max_len
    for row in split.bc:
        per_bucket[len(row.sequence)] += 1
    ctx.log.info("relevant passages per question (count: questions): %s",
                 split.true_count_histogram)
    ctx.log.info("BC rows per target length 0..%d: %s", cfg.max_len - 1, per_bucket)
    ctx.log.info("%d questions -> %d BC rows from %d questions; %d left: %d SFT, %d DPO",
                 len(labels), len(split.bc), len(labels) - len(split.normal),
                 len(split.normal), len(sft), len(dpo))
    bc, sft_rows, dpo_rows = rows_at(reranked, [row.item for row in split.bc], sorted(sft),
                                      sorted(dpo))
    return Labelled(bc=item_named(with_targets(bc, split.bc)),
                    sft=item_named(in_order(sft_rows, sft)),
                    dpo=item_named(in_order(dpo_rows, dpo)))


def in_order(table, positions: list[int]):
    """``table``, whose rows are the input rows ``sorted(positions)``, in the order of
    ``positions``.

    >>> import pyarrow as pa
    >>> in_order(pa.table({"x": [10, 20, 30]}), [7, 2, 5]).column("x").to_pylist()
    [30, 10, 20]
    """
    import pyarrow as pa

    if not positions:
        return table
    # one-row slices share the table's buffers: the writer copies a row group at a time (a
    # ``take`` held the rows two more times, 1,994 MiB against 1,087 at 20,000 questions)
    at = {position: i for i, position in enumerate(sorted(positions))}
    return pa.concat_tables([table.slice(at[position], 1) for position in positions])


def relevance_labels(reranked: Reranked) -> list[list[bool | None]]:
    """Each question's ``ctxs[].relevant`` in passage order, read a row group at a time; only
    that nested column is decoded, not the passages' text."""
    labels: list[list[bool | None]] = []
    for piece in reranked.iter_tables(ROWS_AT_A_TIME, columns=[RELEVANT_COLUMN]):
        if "ctxs" not in piece.column_names:     # a file whose lists name their items otherwise
            return relevance_labels_of(reranked.iter_tables(ROWS_AT_A_TIME, columns=["ctxs"]))
        labels.extend(relevance_labels_of([piece]))
    return labels


def relevance_labels_of(pieces) -> list[list[bool | None]]:
    import pyarrow.compute as pc

    labels: list[list[bool | None]] = []
    for piece in pieces:
        for chunk in piece.column("ctxs").chunks:
            lengths = pc.fill_null(pc.list_value_length(chunk), 0).to_pylist()
            flags = pc.struct_field(chunk.flatten(), "relevant").to_pylist()
            start = 0
            for n in lengths:
                labels.append(flags[start:start + n])
                start += n
    return labels


def rows_at(reranked: Reranked, *positions: list[int]) -> list:
    """One table per list of ascending row positions (repeats allowed): those input rows, taken
    a row group at a time, so only the rows taken are held.

    >>> import numpy as np; np.searchsorted([1, 1, 4, 9], [0, 5])   # the rows of piece [0, 5)
    array([0, 3])
    """
    import numpy as np
    import pyarrow as pa

    wanted = [np.asarray(p, dtype=np.int64) for p in positions]
    batches: list[list] = [[] for _ in wanted]
    offset = 0
    for piece in reranked.iter_tables(ROWS_AT_A_TIME):
        for batch in piece.to_batches():
            end = offset + batch.num_rows
            for at, out in zip(wanted, batches):
                lo, hi = np.searchsorted(at, [offset, end])
                if hi > lo:
                    out.append(batch.take(pa.array(at[lo:hi] - offset)))
            offset = end
    empty = reranked.stored_schema().empty_table()
    # parts written by different shards may type a pass-through column differently (all-null)
    return [pa.concat_tables([pa.Table.from_batches([b]) for b in out], promote_options="default")
            if out else empty for out in batches]


def with_targets(table, rows: list[BCRow]):
    """BC rows: the questions' columns in ``BCTargets`` order, then ``sequence`` and
    ``sequence_length`` from ``rows``, then any pass-through columns."""
    import pyarrow as pa

    targets = {"sequence": pa.array([r.sequence for r in rows], INT_LIST),
               "sequence_length": pa.array([len(r.sequence) for r in rows], pa.int32())}
    columns = {name: targets[name] if name in targets else table.column(name)
               for name in BCTargets.schema.names}
    columns.update({name: table.column(name) for name in table.column_names
                    if name not in columns})
    return pa.table(columns)


def sft_count(n_sft: float, available: int) -> int:
    """Questions for generator SFT out of ``available``; the rest go to DPO, which must get some.

    A fraction in (0, 1) is rounded; a count larger than what leaves one question for DPO, or a
    split that leaves none, is refused with the setting to change (before any training runs).

    >>> sft_count(0.75, 30), sft_count(70000, 100000), sft_count(20, 30)
    (22, 70000, 20)
    """
    if n_sft < 0 or (n_sft >= 1 and n_sft != int(n_sft)):
        raise ConfigError(f"label: n_sft must be a count (>= 1) or a fraction in (0, 1), "
                          f"got {n_sft}")
    count = round(n_sft * available) if n_sft < 1 else int(n_sft)
    if available and count >= available:
        raise ConfigError(
            f"label: n_sft = {n_sft:g} sends all {available} questions left after the BC "
            f"buckets to generator SFT and none to DPO sampling, so the sample step would get "
            f"no input", hint=f"set steps.label.n_sft below {available} (e.g. a fraction: "
                              f"n_sft: 0.7)")
    return count
