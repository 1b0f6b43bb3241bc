"""The download stage: fetch the four GAP-Replay sources into plain folders that
`gapreplay ingest` reads.

    report = download.run("pubmed", Path("data/pubmed"), max_files=2)

Every source is resumable (a file is written to `<name>.part` and continued with HTTP Range),
idempotent (a second run fetches nothing new: see the manifest, `read_manifest`), polite
(per-host token bucket, bounded retries with exponential backoff, Retry-After honoured),
and stays inside its folder. Sources and their options: download.pubmed, download.pmc,
download.guidelines, download.replay; the options are the models of download.options.
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console

from download.core import DownloadReport, Planned, Session
from download.files import MANIFEST_NAME, folder_lock, read_manifest
from download.http import Http
from download.options import HubOptions, OptionsError, validate

SOURCES = ("pubmed", "pmc", "guidelines", "replay")

__all__ = [
    "MANIFEST_NAME",
    "SOURCES",
    "DownloadReport",
    "OptionsError",
    "Planned",
    "SourceJob",
    "load_download_config",
    "read_manifest",
    "run",
]


def _module(source: str) -> ModuleType:
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}: one of {', '.join(SOURCES)}")
    # Imported on demand: replay pulls numpy/pyarrow (corpus.sampler), the others need not.
    return importlib.import_module(f"download.{source}")


def run(
    source: str,
    to: Path,
    *,
    base_url: str | None = None,
    max_files: int | None = None,
    dry_run: bool = False,
    options: dict[str, Any] | None = None,
    console: Console | None = None,
) -> DownloadReport:
    """Fetch `source` into `to`. `base_url` replaces the real endpoint with a mirror of the
    same layout (plain http allowed there); `max_files` takes the first N files of the
    source's order; `dry_run` lists what would be fetched and its estimated size (listing or
    HEAD) without downloading; `options` are the source's options (download.options).
    Files that fail are counted in the report and the others go on; OptionsError, ValueError
    or a failed listing (DownloadError) end the run."""
    module = _module(source)
    opts = validate(module.Options, options)
    if max_files is not None and max_files < 0:
        raise ValueError(f"max_files must be >= 0, got {max_files}")
    if base_url is not None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"base_url {base_url!r} must be an http(s) URL")
    to = Path(to)
    console = console or Console()
    auth = opts.hub_auth() if isinstance(opts, HubOptions) else {}
    http = Http(
        opts.http_settings(
            module.DEFAULT_RATE,
            allow_http=base_url is not None and base_url.startswith("http:"),
            auth=auth,
        )
    )
    progress = console.is_terminal if opts.progress is None else opts.progress
    if not dry_run:
        to.mkdir(parents=True, exist_ok=True)
    # A dry run writes nothing, not even the lock.
    lock = contextlib.nullcontext() if dry_run else folder_lock(to)
    with (
        lock,
        Session(
            source,
            to,
            http,
            local_url=module.local_url(base_url),
            dry_run=dry_run,
            console=console,
            progress=progress and not dry_run,
        ) as session,
    ):
        module.fetch(session, opts, max_files)
    if dry_run:
        session.print_plan()
    return session.report


class _JobConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str
    base_url: str | None = None
    max_files: int | None = Field(default=None, ge=0)
    options: dict[str, Any] = Field(default_factory=dict)


@dataclass
class SourceJob:
    """One source's download settings from a config file (`to` resolved against it)."""

    to: Path
    base_url: str | None = None
    max_files: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


def load_download_config(path: str | Path) -> dict[str, SourceJob]:
    """The `{source: {to, base_url?, max_files?, options?}}` file (configs/
    meditron_download.yaml), every source's options validated; relative `to` paths are
    taken from the file's folder."""
    path = Path(path)
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise OptionsError(f"{path}: the top level must be a mapping of sources")
    jobs = {}
    for source, entry in data.items():
        if source not in SOURCES:
            raise OptionsError(f"{path}: {source}: unknown source (one of {', '.join(SOURCES)})")
        try:
            job = _JobConfig.model_validate(entry)
            validate(_module(source).Options, job.options)
        except (ValidationError, OptionsError) as exc:
            raise OptionsError(f"{path}: {source}: {exc}") from exc
        to = Path(job.to)
        jobs[source] = SourceJob(
            to if to.is_absolute() else path.resolve().parent / to,
            job.base_url,
            job.max_files,
            job.options,
        )
    return jobs
