"""Options of each source, validated (unknown keys are errors that name the key)."""

from __future__ import annotations

import os
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from download.http import USER_AGENT, HttpSettings


class OptionsError(ValueError):
    """Options that cannot be used; the message names the bad key."""


def _check_patterns(patterns: list[str]) -> list[str]:
    """Fail at load, not midway through a crawl, on a pattern that does not compile."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"bad regular expression {pattern!r}: {exc}") from exc
    return patterns


class CommonOptions(BaseModel):
    """Politeness and persistence, the same for every source."""

    model_config = ConfigDict(extra="forbid")

    rate: float | None = Field(
        default=None, gt=0, description="requests per second per host; none: the source's default"
    )
    rates: dict[str, float] = Field(
        default_factory=dict, description="host (or host:port) -> requests per second"
    )
    retries: int = Field(default=5, ge=0, description="tries after the first, per stall")
    backoff_s: float = Field(default=1.0, ge=0, description="first retry delay, doubled each try")
    backoff_max_s: float = Field(default=60.0, ge=0)
    max_retry_after_s: float = Field(
        default=600.0, ge=0, description="a longer Retry-After fails the file instead"
    )
    timeout_s: float = Field(default=60.0, gt=0, description="per connect / read")
    user_agent: str = USER_AGENT
    allow_http: bool = Field(
        default=False, description="allow plain-http URLs (implied by an http --base-url)"
    )
    progress: bool | None = Field(
        default=None, description="show the progress bar; none: when the console is a terminal"
    )

    def http_settings(
        self, default_rate: float, allow_http: bool, auth: dict[str, str] | None = None
    ) -> HttpSettings:
        return HttpSettings(
            rate=self.rate or default_rate,
            rates=dict(self.rates),
            retries=self.retries,
            backoff_s=self.backoff_s,
            backoff_max_s=self.backoff_max_s,
            max_retry_after_s=self.max_retry_after_s,
            timeout_s=self.timeout_s,
            user_agent=self.user_agent,
            allow_http=self.allow_http or allow_http,
            auth=auth or {},
        )


class HubOptions(CommonOptions):
    hf_token_env: str | None = Field(
        default="HF_TOKEN",
        description="environment variable holding a Hugging Face token, sent to huggingface.co"
        " only (gated datasets need one)",
    )

    def hub_auth(self) -> dict[str, str]:
        token = os.environ.get(self.hf_token_env) if self.hf_token_env else None
        return {"huggingface.co": f"Bearer {token}"} if token else {}


class PubmedOptions(CommonOptions):
    baseline: bool = Field(default=True, description="fetch /pubmed/baseline/")
    updates: bool = Field(default=True, description="fetch /pubmed/updatefiles/, in order")
    checksum_retries: int = Field(
        default=2, ge=0, description="fresh downloads after an .md5 mismatch before rejecting"
    )


PmcSubset = Literal["oa_comm", "oa_noncomm", "oa_other"]


class PmcOptions(CommonOptions):
    subsets: list[PmcSubset] = Field(
        default_factory=lambda: ["oa_comm"],
        min_length=1,
        description="oa_comm (commercial use allowed), oa_noncomm, oa_other",
    )
    baseline: bool = True
    incremental: bool = True
    filelists: Literal["csv", "txt", "both", "none"] = Field(
        default="csv", description="which file list to fetch beside each package"
    )
    include: str | None = Field(
        default=None, description="regular expression a package name must contain"
    )

    @field_validator("include")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        return _check_patterns([value])[0] if value is not None else None


class GuidelineOptions(HubOptions):
    sources: list[str] | None = Field(
        default=None, description="registry keys to scrape; none: every open source"
    )
    urls: dict[str, list[str]] = Field(
        default_factory=dict, description="source key -> document URLs (PDF or HTML)"
    )
    index_pages: dict[str, list[str]] = Field(
        default_factory=dict, description="source key -> pages whose links are documents"
    )
    include: dict[str, list[str]] = Field(
        default_factory=dict,
        description="source key -> regexes a linked URL must match to be a document",
    )
    default_include: list[str] = Field(
        default_factory=lambda: [r"\.pdf(\?|$)"],
        description="include for sources not in `include`",
    )
    exclude: dict[str, list[str]] = Field(default_factory=dict)
    follow: dict[str, list[str]] = Field(
        default_factory=dict, description="source key -> regexes of linked pages to crawl too"
    )
    depth: int = Field(default=1, ge=1, description="1: links of the index pages only")
    max_pages: int = Field(default=200, ge=1, description="index pages read per source")
    max_documents: int | None = Field(default=None, ge=0, description="per source")
    extra_sources: list[dict[str, Any]] = Field(
        default_factory=list, description="registry entries, as in the ingest config"
    )
    released: bool = Field(default=True, description="fetch MediTron's released JSONL set")
    released_repo: str = "epfl-llm/guidelines"
    released_files: list[str] = Field(default_factory=lambda: ["open_guidelines.jsonl"])

    @field_validator("include", "exclude", "follow")
    @classmethod
    def _regexes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {key: _check_patterns(patterns) for key, patterns in value.items()}

    @field_validator("default_include")
    @classmethod
    def _default_regexes(cls, value: list[str]) -> list[str]:
        return _check_patterns(value)


class ReplayOptions(HubOptions):
    repo: str = "togethercomputer/RedPajama-Data-1T-Sample"
    files: list[str] | None = Field(
        default=None, description="files of `repo`; none: the 11 files of the 1T sample"
    )
    urls: list[str] | None = Field(
        default=None, description="RedPajama file URLs instead of `repo`/`files`"
    )
    budget_tokens: int = Field(
        default=420_000_000, ge=0, description="approximate tokens kept (MediTron: 420M)"
    )
    subset_shares: dict[str, float] | None = Field(
        default=None, description="budget per subset; none: RedPajama-1T's token shares"
    )
    seed: int = Field(default=1234, description="the sampler's seed (the mix's default seed)")
    chars_per_token: float = Field(
        default=4.0, gt=0, description="approximate tokens = ceil(characters / this)"
    )
    checkpoint_bytes: int = Field(
        default=64 << 20, gt=0, description="input bytes between two resumable checkpoints"
    )


def validate(model: type[CommonOptions], options: dict[str, Any] | None) -> Any:
    try:
        return model.model_validate(options or {})
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            key = ".".join(str(x) for x in err["loc"]) or "(options)"
            msg = "unknown option" if err["type"] == "extra_forbidden" else err["msg"]
            parts.append(f"{key}: {msg}")
        raise OptionsError("; ".join(parts)) from exc
