"""Embedding helpers shared by this recipe's stages: one encoder, with a *query* side and a
*passage* side (instruction prefixes, as bge's query instruction), and the augmentation embedded
with the side ``augmentation_side`` names in every stage, training and inference alike
(the original used the query side for the reward and the passage side at inference)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from annotated_types import Ge

from orchestrator.api import nonsemantic
from stages.lib.data.row_template import RowTemplate, unknown_field


@dataclass
class EncoderConfig:
    pooling: Literal["mean", "cls"] = "mean"     # Contriever: mean; bge: cls
    normalize: bool = False                      # Contriever: False; bge: True
    query_prefix: str = ""                       # bge: "Represent this sentence for searching relevant passages: "
    passage_template: RowTemplate = "{title} {text}"
    augmentation_side: Literal["query", "passage"] = "passage"
    max_length: Annotated[int, Ge(1)] = 512
    batch_size: Annotated[int, Ge(1)] = nonsemantic(64)


def passage_texts(rows: list[dict], template: str) -> list[str]:
    """Passage rows rendered with the template.

    >>> passage_texts([{"title": "T", "text": "x"}], "{title} {text}")
    ['T x']
    """
    try:
        return [template.format(title=r.get("title") or "", text=r.get("text") or "").strip()
                for r in rows]
    except KeyError as e:
        raise unknown_field("encoder.passage_template", template, e.args[0], ["text", "title"]) \
            from None


def matching_index(cfg: EncoderConfig, index_dir) -> EncoderConfig:
    """``cfg`` with the pooling and normalisation the index was built with (so queries and
    passages are always embedded alike)."""
    from dataclasses import replace

    from stages.lib.models.search import read_meta

    meta = read_meta(index_dir)
    return replace(cfg, pooling=meta.get("pooling", cfg.pooling),
                   normalize=bool(meta.get("normalize", cfg.normalize)))


class SideEncoder:
    """An :class:`stages.lib.models.encoders.Encoder` with the query/passage sides of ``EncoderConfig``."""

    def __init__(self, model_dir, cfg: EncoderConfig, device: str, progress=None):
        from stages.lib.models.encoders import Encoder

        self.cfg, self.progress = cfg, progress
        self.encoder = Encoder(model_dir, pooling=cfg.pooling, normalize=cfg.normalize,
                               max_length=cfg.max_length, device=device)

    def queries(self, texts: list[str]):
        return self.encoder.encode([self.cfg.query_prefix + t for t in texts],
                                   batch_size=self.cfg.batch_size, progress=self.progress)

    def passages(self, texts: list[str]):
        return self.encoder.encode(texts, batch_size=self.cfg.batch_size, progress=self.progress)

    def augmentations(self, texts: list[str]):
        from stages.reinforced_ir.fusion import TOPIC_PREFIX

        prefixed = [TOPIC_PREFIX + t for t in texts]
        return self.queries(prefixed) if self.cfg.augmentation_side == "query" else self.passages(prefixed)
