"""Configuration: YAML validated at load, with errors that name the bad key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from corpus.minhash import MinHashConfig
from corpus.silver_stages import SilverConfig


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


class CorpusConfig(_Strict):
    """The whole build: `gapreplay corpus --config FILE`."""

    name: str = "corpus"
    lakehouse: str = "lakehouse"
    shards: str = "shards"
    spark: SparkConfig = Field(default_factory=SparkConfig)
    sources: SourcesConfig = Field(default_factory=SourcesConfig)
    silver: SilverConfig = Field(default_factory=SilverConfig)
    dedup: MinHashConfig = Field(default_factory=MinHashConfig)


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
        inputs.inputs = [str(_resolve(base, p)) for p in inputs.inputs]
    return config


def _resolve(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(x) for x in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        parts.append(f"{key}: {msg}")
    return "; ".join(parts)


def dump_config(config: BaseModel) -> dict[str, Any]:
    return config.model_dump(mode="json")
