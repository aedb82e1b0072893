"""Stage ``export_llamafactory``: SFT chats and preference pairs as a LLaMA-Factory dataset folder.

The seeds train with LLaMA-Factory (SEEDS 0.3: DynamicRAG SFT + DPO, DPA-RAG SFT, Reinforced-IR
DPO). This stage writes what their scripts wrote by hand: data files in alpaca or sharegpt format
plus a ``dataset_info.json`` whose entries name the columns (``ranking: true`` for preferences),
so a LLaMA-Factory YAML needs only ``dataset_dir: <output>`` and ``dataset: <names>``.

Datasets are ``{name}_sft`` and ``{name}_dpo``, or one per task with ``split_by_task``
(``{name}_reranker_sft``, ``{name}_generator_dpo``: DynamicRAG's separate reranker and generator
sets). A ``README.md`` in the folder lists them with the YAML lines to use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from orchestrator.api import Directory, StageContext, stage
from stages.schemas import Chat, Preferences


@dataclass
class ExportConfig:
    formatting: Literal["alpaca", "sharegpt"] = "alpaca"
    name: str = "ragline"          # dataset name prefix
    split_by_task: bool = False    # one dataset per task (reranker, generator, ...)


def _groups(rows: list[dict], prefix: str, suffix: str, split: bool) -> dict[str, list[dict]]:
    if not split:
        return {f"{prefix}_{suffix}": rows} if rows else {}
    out: dict[str, list[dict]] = {}
    for row in rows:
        task = (row.get("task") or "all").replace(" ", "_")
        out.setdefault(f"{prefix}_{task}_{suffix}", []).append(row)
    return out


@stage("export_llamafactory", version=1)
def export_llamafactory(sft: Chat, cfg: ExportConfig, ctx: StageContext,
                        prefs: Preferences | None = None) -> Directory:
    """A LLaMA-Factory ``dataset_dir``: data files and ``dataset_info.json``."""
    from stages.lib.data.llamafactory import write_llamafactory

    out = ctx.new_dir("llamafactory")
    written: list[tuple[str, str, int]] = []
    for kind, rows, suffix in (("sft", sft.rows(), "sft"),
                               ("preference", prefs.rows() if prefs is not None else [], "dpo")):
        for name, group in _groups(rows, cfg.name, suffix, cfg.split_by_task).items():
            write_llamafactory(out, name, group, kind, cfg.formatting)
            written.append((name, kind, len(group)))
            ctx.log.info("%s: %d %s rows (%s)", name, len(group), kind, cfg.formatting)
    if not written:
        (out / "dataset_info.json").write_text("{}\n", encoding="utf-8")
        ctx.log.warning("no rows to export: the SFT table%s is empty",
                        " and the preference table are" if prefs is not None else " is")
    sft_names = [n for n, k, _ in written if k == "sft"]
    dpo_names = [n for n, k, _ in written if k == "preference"]
    lines = ["# LLaMA-Factory datasets written by ragline", "",
             "| dataset | kind | rows |", "|---|---|---|"]
    lines += [f"| {n} | {k} | {c} |" for n, k, c in written]
    lines += ["", "In a LLaMA-Factory training YAML:", "", "```yaml",
              "dataset_dir: <this folder>"]
    if sft_names:
        lines += [f"dataset: {','.join(sft_names)}   # stage: sft"]
    if dpo_names:
        lines += [f"dataset: {','.join(dpo_names)}   # stage: dpo"]
    lines += ["```", ""]
    (out / "README.md").write_text("\n".join(lines), encoding="utf-8")
    return out
