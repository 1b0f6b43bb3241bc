"""Configuration: YAML validated at load, with errors that name the bad key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from corpus.benchmarks import BENCHMARKS, EVALUATION_SPLITS
from corpus.decontamination import DEFAULT_N
from corpus.minhash import MinHashConfig
from corpus.silver_stages import SilverConfig
from corpus.tokenizer import TokenizerConfig
from spark_jobs import storage


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IngestConfig(_Strict):
    """One ingest job: which files go into which lakehouse, and the source's options."""

    lakehouse: str = "lakehouse"
    inputs: list[str] = Field(min_length=1)
    # pmc
    markers: bool = True
    # guidelines
    source: str | None = None
    max_pages: int = Field(default=500, gt=0)
    timeout_s: float = Field(default=120.0, gt=0)
    path_sources: dict[str, str] = Field(default_factory=dict)
    extra_sources: list[dict[str, Any]] = Field(default_factory=list)


class SourceInputs(_Strict):
    inputs: list[str] = Field(default_factory=list)


class PmcInputs(SourceInputs):
    markers: bool = Field(
        default=True,
        description="MediTron's [bib_ref]/[fig_ref]/[fig]/[table]/[formula] markers in the"
        " body; false gives plain text",
    )


class GuidelineInputs(SourceInputs):
    source: str | None = Field(
        default=None, description="source key for every input (else by path, name or URL)"
    )
    max_pages: int = Field(default=500, gt=0, description="a longer PDF is quarantined")
    timeout_s: float = Field(default=120.0, gt=0, description="per document, PDF or HTML")
    path_sources: dict[str, str] = Field(
        default_factory=dict, description="glob or path prefix -> source key, for local files"
    )
    extra_sources: list[dict[str, Any]] = Field(
        default_factory=list,
        description="sources added to the registry: {key, publisher, open, license, hosts}",
    )


class SourcesConfig(_Strict):
    pubmed: SourceInputs = Field(default_factory=SourceInputs)
    pmc: PmcInputs = Field(default_factory=PmcInputs)
    guidelines: GuidelineInputs = Field(default_factory=GuidelineInputs)
    replay: SourceInputs = Field(default_factory=SourceInputs)


class SparkConfig(_Strict):
    master: str | None = None
    conf: dict[str, str] = Field(default_factory=dict)


class DecontaminationConfig(_Strict):
    """Which benchmark items to keep out of the corpus, and how they are matched."""

    benchmarks_dir: str | None = Field(
        default=None,
        description="folder laid out like shared/fixtures/qa_benchmarks; none: nothing checked",
    )
    benchmarks: list[str] = Field(default_factory=lambda: list(BENCHMARKS))
    splits: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in EVALUATION_SPLITS.items()},
        description="benchmark -> the splits whose items are kept out",
    )
    n: int = Field(default=DEFAULT_N, ge=1, description="n-gram length in words")
    min_ngram_hits: int = Field(default=1, ge=1, description="distinct item n-grams to match")
    match_pmids: bool = Field(default=True, description="PubMedQA items matched by PMID too")


class SourceMix(_Strict):
    epochs: float = Field(default=1.0, gt=0, description="passes over the source's train split")
    heldout: float = Field(default=0.03, ge=0, lt=1, description="share held out (valid + test)")


def _meditron_sources() -> dict[str, SourceMix]:
    # MEDITRON.md: 3% of papers and abstracts held out, 5% of guidelines, none of replay.
    return {
        "pubmed": SourceMix(heldout=0.03),
        "pmc": SourceMix(heldout=0.03),
        "guidelines": SourceMix(heldout=0.05),
        "replay": SourceMix(heldout=0.0),
    }


class ReplayMix(_Strict):
    share: float | None = Field(
        default=0.009,
        ge=0,
        lt=1,
        description="replay's share of the train tokens (MediTron: 420M of 46.7B, 0.9%)",
    )
    budget_tokens: int | None = Field(
        default=None, ge=0, description="a fixed replay token budget; overrides share"
    )
    subset_shares: dict[str, float] | None = Field(
        default=None, description="budget split per replay subset; none: as in the input"
    )


class MixConfig(_Strict):
    """The GAP-Replay recipe: epochs and held-out shares per source, the replay budget."""

    seed: int = 1234
    sources: dict[str, SourceMix] = Field(default_factory=_meditron_sources)
    test_fraction: float = Field(
        default=0.5, ge=0, le=1, description="part of each held-out share that goes to test"
    )
    replay: ReplayMix = Field(default_factory=ReplayMix)
    licenses: list[str] | None = Field(
        default=None, description="keep only these normalised licences; none: all"
    )
    commercial_only: bool = Field(default=False, description="keep licences open to commerce")
    tokenizer_training_chars: int = Field(
        default=200_000_000, gt=0, description="text a trained tokenizer learns from, at most"
    )


class ShardsConfig(_Strict):
    max_tokens_per_file: int = Field(
        default=500_000_000, gt=0, description="a (split, source) shard file holds at most this"
    )
    seed: int = Field(default=1234, description="document order inside the shards")


class CatalogConfig(_Strict):
    """Where the tables are registered besides their paths (Unity Catalog, Hive metastore)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str | None = Field(
        default=None, description="catalog (Unity Catalog); none: the session's current one"
    )
    # `schema` is a BaseModel method: the field takes another name and the key as alias.
    schema_name: str = Field(alias="schema", description="schema (database); must exist")


class CorpusConfig(_Strict):
    """The whole build: `gapreplay corpus --config FILE`."""

    name: str = "corpus"
    lakehouse: str = "lakehouse"
    out: str = Field(
        default="shards", description="where shards and exports are written (path or URI)"
    )
    catalog: CatalogConfig | None = Field(
        default=None, description="register the tables as <catalog>.<schema>.<layer>_<table>"
    )
    spark: SparkConfig = Field(default_factory=SparkConfig)
    sources: SourcesConfig = Field(default_factory=SourcesConfig)
    silver: SilverConfig = Field(default_factory=SilverConfig)
    dedup: MinHashConfig = Field(default_factory=MinHashConfig)
    decontamination: DecontaminationConfig = Field(default_factory=DecontaminationConfig)
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    mix: MixConfig = Field(default_factory=MixConfig)
    shards: ShardsConfig = Field(default_factory=ShardsConfig)


def load_config(path: str | Path) -> CorpusConfig:
    """Load and validate a corpus config; relative input paths are taken from the file's
    folder, so a config works from any working directory."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    try:
        config = CorpusConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: " + _describe(exc)) from exc
    base = path.resolve().parent
    for source in config.sources.model_dump():
        inputs: SourceInputs = getattr(config.sources, source)
        inputs.inputs = [_resolve(base, p) for p in inputs.inputs]
    if config.decontamination.benchmarks_dir is not None:
        config.decontamination.benchmarks_dir = _resolve(
            base, config.decontamination.benchmarks_dir
        )
    if config.tokenizer.path is not None:
        config.tokenizer.path = _resolve(base, config.tokenizer.path)
    return config


def _resolve(base: Path, value: str) -> str:
    """A relative path taken from the config's folder; an absolute path or a URI as written."""
    if storage.is_uri(value):
        return value
    p = Path(value)
    return str(p if p.is_absolute() else base / p)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{key}: {msg}")
    return "; ".join(parts)


def dump_config(config: BaseModel) -> dict[str, Any]:
    return config.model_dump(mode="json")
