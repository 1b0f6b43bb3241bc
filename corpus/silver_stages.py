"""The per-document silver stages, over a batch: source cleaning, PII masking, language and
quality. Each document gets a decision per stage it reaches and stops at its first drop;
the stages that compare documents (retractions, cross-source, exact duplicates) run in Spark.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from corpus.cleaning import (
    CleaningConfig,
    clean_abstract,
    clean_guideline,
    clean_paper,
    clean_replay,
)
from corpus.language import LanguageConfig, detect
from corpus.minhash import normalize_for_shingles
from corpus.pii import PiiConfig, mask_pii
from corpus.quality import QualityConfig, assess

DOCUMENT_STAGES = ("clean", "pii", "language", "quality")
CROSS_STAGES = ("retraction", "cross_source", "exact_dedup")
SOURCE_ORDER = ("pmc", "guidelines", "pubmed", "replay")


class SilverConfig(BaseModel):
    """Every silver threshold; defaults follow MediTron."""

    model_config = ConfigDict(extra="forbid")

    cleaning: CleaningConfig = Field(default_factory=CleaningConfig)
    pii: PiiConfig = Field(default_factory=PiiConfig)
    pii_sources: list[str] = Field(
        default_factory=lambda: ["replay", "guidelines"],
        description="sources whose text comes from the web and gets PII masked",
    )
    language: LanguageConfig = Field(default_factory=LanguageConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    drop_retracted: bool = True
    drop_abstracts_with_full_text: bool = True
    keep_order: list[str] = Field(
        default_factory=lambda: list(SOURCE_ORDER),
        description="which copy of a duplicate is kept: earlier sources first, then the"
        " longer text, then the smaller doc_id",
    )


def text_hash(text: str) -> str:
    """Hash of the normalised text: copies that differ only in case, punctuation or spacing
    are exact duplicates."""
    return hashlib.sha256(normalize_for_shingles(text).encode()).hexdigest()


def clean_document(row: dict[str, Any], config: CleaningConfig) -> str:
    """The source's MediTron-style cleaning of one bronze document."""
    source = row["source"]
    if source == "pubmed":
        return clean_abstract(row.get("title"), row.get("abstract"), config)
    if source == "pmc":
        return clean_paper(row.get("title"), row.get("abstract"), row.get("body"), config)
    if source == "guidelines":
        return clean_guideline(row.get("text"), row.get("origin"), config)
    return clean_replay(row.get("text"), config)


def _decision(stage: str, kept: bool, reason: str | None = None, detail: str = "") -> dict:
    return {"stage": stage, "kept": kept, "reason": None if kept else reason, "detail": detail}


def run_document_stages(rows: list[dict[str, Any]], config: SilverConfig) -> list[dict[str, Any]]:
    """Each bronze row with its clean `text`, `n_chars`, `language`, `language_prob`,
    `text_sha256`, `pii` counts, `dropped` and the list of `decisions` it reached."""
    out = []
    for row in rows:
        text = clean_document(row, config.cleaning)
        decisions = []
        if text.strip():
            decisions.append(_decision("clean", True, detail=f"{len(text)} chars"))
        else:
            decisions.append(_decision("clean", False, "empty_after_cleaning"))
        pii: dict[str, int] = {}
        if text.strip() and row["source"] in config.pii_sources:
            text, pii = mask_pii(text, config.pii)
            decisions.append(_decision("pii", True, detail=json.dumps(pii, sort_keys=True)))
        out.append({**row, "text": text, "pii": pii, "decisions": decisions})
    _language_stage(out, config.language)
    for row in out:
        if _alive(row):
            verdict = assess(row["text"], row["source"], config.quality)
            row["decisions"].append(
                _decision("quality", verdict.kept, verdict.reason, verdict.detail)
            )
        row["dropped"] = not _alive(row)
        row["n_chars"] = len(row["text"])
        row["text_sha256"] = text_hash(row["text"])
    return out


def _alive(row: dict[str, Any]) -> bool:
    return row["decisions"][-1]["kept"]


def _language_stage(rows: list[dict[str, Any]], config: LanguageConfig) -> None:
    """Detect on a prefix (10k characters for guidelines, 2k otherwise, as MediTron) and keep
    the configured languages; the source's own language tag is recorded beside the verdict."""
    for prefix, wanted in (
        (config.guideline_prefix_chars, lambda r: r["source"] == "guidelines"),
        (config.paper_prefix_chars, lambda r: r["source"] != "guidelines"),
    ):
        batch = [r for r in rows if wanted(r) and _alive(r)]
        for row, (lang, prob) in zip(
            batch, detect([r["text"] for r in batch], prefix, config), strict=True
        ):
            row["language"], row["language_prob"] = lang, prob
            tagged = row.get("tagged_language")
            detail = f"{lang} p={prob:.3f}" + (f", tagged {tagged}" if tagged else "")
            kept = lang in config.keep
            row["decisions"].append(_decision("language", kept, "language", detail))
    for row in rows:
        row.setdefault("language", "unknown")
        row.setdefault("language_prob", 0.0)
