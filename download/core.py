"""What every source shares: the report, the per-run session (mirror mapping, manifest,
progress bar, resumable fetch into `<name>.part`, commit, reject) and the dry-run plan."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from rich import filesize
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from download.files import REJECTED_DIR, Manifest, file_hashes, now_iso, safe_path
from download.http import DownloadError, Http, Validators

State = Literal["new", "changed", "unchanged"]


@dataclass
class Planned:
    """One file a dry run would fetch (or skip)."""

    url: str
    path: str
    state: State
    est_bytes: int | None


@dataclass
class DownloadReport:
    """What one `download.run` did. `bytes` counts body bytes received in this run (a resumed
    file adds only its missing part); `planned` is filled by a dry run."""

    source: str
    to: str
    dry_run: bool = False
    fetched: int = 0
    skipped_unchanged: int = 0
    failed: int = 0
    rejected_checksum: int = 0
    skipped_robots: int = 0
    bytes: int = 0
    planned: list[Planned] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    unsafe_names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the CLI."""
        if self.dry_run:
            todo = [p for p in self.planned if p.state != "unchanged"]
            est = filesize.decimal(sum(p.est_bytes or 0 for p in todo))
            return (
                f"{self.source}: dry run, {len(todo)} to fetch (~{est}), "
                f"{len(self.planned) - len(todo)} unchanged -> {self.to}"
            )
        return (
            f"{self.source}: {self.fetched} fetched, {self.skipped_unchanged} unchanged, "
            f"{self.failed} failed, {self.rejected_checksum} rejected (checksum), "
            f"{self.skipped_robots} disallowed by robots.txt, {filesize.decimal(self.bytes)} "
            f"-> {self.to}"
        )


@dataclass
class Item:
    """One remote file. `url` is the canonical URL (recorded in the manifest); `path` is
    where it lands, relative to the folder; `identity` holds the listing fields (date, size)
    that change when the remote file does; `extra` goes into its manifest record."""

    url: str
    path: str
    size: int | None = None
    approx_size: int | None = None
    identity: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Fetched:
    """A complete `.part` file, not yet in place."""

    part: Path
    size: int
    md5: str
    sha256: str
    validators: Validators


class Session:
    """One run over one download folder."""

    def __init__(
        self,
        source: str,
        to: Path,
        http: Http,
        *,
        local_url: Callable[[str], str],
        dry_run: bool,
        console: Console,
        progress: bool,
    ) -> None:
        self.source = source
        self.to = to
        self.http = http
        self.local_url = local_url
        self.dry_run = dry_run
        self.console = console
        self.report = DownloadReport(source, str(to), dry_run)
        self.manifest = Manifest(to)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TextColumn("{task.fields[files]}"),
            TimeRemainingColumn(),
            console=console,
            disable=not progress,
            transient=False,
        )
        self._task = self._progress.add_task(source, total=None, files="files 0/0", start=False)
        self._files_done = 0
        self._files_total = 0

    def __enter__(self) -> Session:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    # progress ----------------------------------------------------------------------------

    def expect(self, files: int, est_bytes: int | None) -> None:
        """Announce `files` more files of about `est_bytes` bytes to the progress bar."""
        self._files_total += files
        task = self._progress.tasks[self._task]
        total = (task.total or 0) + est_bytes if est_bytes else task.total
        self._progress.update(self._task, total=total, files=self._files_text())
        self._progress.start_task(self._task)

    def advance(self, n: int) -> None:
        """`n` body bytes received (negative: bytes written again from an earlier offset,
        taken back from the bar only)."""
        self.report.bytes += max(n, 0)
        self._progress.advance(self._task, n)

    def file_done(self) -> None:
        self._files_done += 1
        self._progress.update(self._task, files=self._files_text())

    def _files_text(self) -> str:
        return f"files {self._files_done}/{self._files_total}"

    # state -------------------------------------------------------------------------------

    def state(self, item: Item) -> State:
        """new (never fetched, or the local copy is gone or damaged), changed (the listing
        shows another version than the one fetched) or unchanged."""
        record = self.manifest.latest(item.path)
        if record is None or record.get("url") != item.url:
            # A file may have landed under another name than planned (a guideline whose
            # content turned out to be a PDF).
            record = self.manifest.by_url(item.url)
        if record is None or record.get("status") != "ok":
            return "new"
        local = safe_path(self.to, record["path"])
        if not local.is_file() or local.stat().st_size != record.get("size"):
            return "new"
        if item.size is not None and item.size != record.get("size"):
            return "changed"
        if item.identity and item.identity != record.get("identity"):
            return "changed"
        return "unchanged"

    def plan(self, item: Item, state: State) -> None:
        """Record (and later print) a dry-run line; the size comes from the listing, else
        from a HEAD request, never from a GET of the body."""
        est = item.size if item.size is not None else item.approx_size
        if est is None and state != "unchanged":
            try:
                est = self.http.head(self.local_url(item.url)).size
            except DownloadError as exc:
                self.report.errors.append(str(exc))
        self.report.planned.append(Planned(item.url, item.path, state, est))

    def print_plan(self) -> None:
        table = Table(title=f"{self.source}: would fetch into {self.to}")
        for name in ("path", "state", "est. size", "url"):
            table.add_column(name)
        for p in self.report.planned:
            size = "?" if p.est_bytes is None else filesize.decimal(p.est_bytes)
            table.add_row(p.path, p.state, size, p.url)
        self.console.print(table)
        self.console.print(self.report.summary())

    # fetching ----------------------------------------------------------------------------

    def fetch(self, item: Item) -> Fetched:
        """Download `item` into `<path>.part`, continuing a part left by an earlier run when
        its `.part.meta` names the same URL; raises DownloadError (the part stays)."""
        dest = safe_path(self.to, item.path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        meta_path = dest.with_name(dest.name + ".part.meta")
        offset, validators = 0, None
        meta = _read_json(meta_path)
        if part.is_file() and meta and meta.get("url") == item.url:
            offset = part.stat().st_size
            validators = Validators(meta.get("etag"), meta.get("last_modified"), meta.get("total"))
        else:
            part.unlink(missing_ok=True)

        def on_open(start: int, found: Validators) -> None:
            if start == 0:
                # Written before any byte, so a killed run leaves a part that says what it is.
                _write_json(meta_path, {"url": item.url, **found.as_dict()})

        stream = self.http.body(
            self.local_url(item.url), offset=offset, validators=validators, on_open=on_open
        )
        with part.open("r+b" if part.exists() else "w+b") as f:
            f.seek(offset)
            for start, data in stream:
                if start != f.tell():
                    # The server sent the whole body again: drop what was there.
                    self.advance(start - f.tell())
                    f.seek(start)
                    f.truncate()
                f.write(data)
                self.advance(len(data))
            f.truncate()
        size = part.stat().st_size
        if stream.total is not None and size != stream.total:
            raise DownloadError(f"{item.url}: {size} bytes on disk, the server said {stream.total}")
        md5, sha256 = file_hashes(part)
        return Fetched(part, size, md5, sha256, stream.validators or Validators())

    def commit(self, item: Item, fetched: Fetched, path: str | None = None, **extra: Any) -> None:
        """Move a verified part into place and record it."""
        rel = path or item.path
        final = safe_path(self.to, rel)
        os.replace(fetched.part, final)
        self._drop_meta(item)
        self.manifest.append(self._record(item, fetched, rel, "ok", **extra))
        self.report.fetched += 1
        self.file_done()

    def reject(self, item: Item, fetched: Fetched, reason: str, **extra: Any) -> None:
        """Move a part that failed its checksum to `_rejected/`, where ingest does not look."""
        rel = f"{REJECTED_DIR}/{item.path}.rejected"
        target = safe_path(self.to, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(fetched.part, target)
        self._drop_meta(item)
        self.manifest.append(self._record(item, fetched, rel, "rejected", reason=reason, **extra))
        self.report.rejected_checksum += 1
        self.report.errors.append(f"{item.url}: {reason}")
        self.file_done()

    def discard(self, item: Item, fetched: Fetched) -> None:
        """Delete a part (a checksum failure about to be retried from scratch)."""
        self.advance(-fetched.size)
        fetched.part.unlink(missing_ok=True)
        self._drop_meta(item)

    def fail(self, item: Item, reason: str) -> None:
        """Count a file that could not be fetched; its part, if any, stays for next time."""
        self.report.failed += 1
        self.report.errors.append(f"{item.url}: {reason}")
        self.file_done()

    def skip(self) -> None:
        self.report.skipped_unchanged += 1

    def _drop_meta(self, item: Item) -> None:
        dest = safe_path(self.to, item.path)
        dest.with_name(dest.name + ".part.meta").unlink(missing_ok=True)

    def _record(
        self, item: Item, fetched: Fetched, rel: str, status: str, **extra: Any
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "url": item.url,
            "path": rel,
            "size": fetched.size,
            "md5": fetched.md5,
            "sha256": fetched.sha256,
            "fetched_at": now_iso(),
            "status": status,
            "source": self.source,
            "etag": fetched.validators.etag,
            "last_modified": fetched.validators.last_modified,
            "identity": item.identity,
            **item.extra,
            **extra,
        }
        local = self.local_url(item.url)
        if local != item.url:
            record["fetched_from"] = local
        return record


def _read_json(path: Path) -> dict[str, Any] | None:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else None
    return None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, sort_keys=True))
    os.replace(tmp, path)


def fetch_items(
    session: Session, items: list[Item], fetch_one: Callable[[Item], None] | None = None
) -> None:
    """Fetch each new or changed item in order (or, in a dry run, plan it); a file that
    fails is counted and the others go on."""
    states = [(item, session.state(item)) for item in items]
    if session.dry_run:
        for item, state in states:
            session.plan(item, state)
        return
    todo = []
    for item, state in states:
        if state == "unchanged":
            session.skip()
        else:
            todo.append(item)
    session.expect(len(todo), sum(item.size or item.approx_size or 0 for item in todo))
    for item in todo:
        try:
            if fetch_one is None:
                session.commit(item, session.fetch(item))
            else:
                fetch_one(item)
        except DownloadError as exc:
            session.fail(item, str(exc))


def origin_mirror(base_url: str | None, origin: str) -> Callable[[str], str]:
    """URLs under `origin` (scheme://host) mapped to the same paths under `base_url`, a
    mirror with the same layout (`https://ftp.ncbi.nlm.nih.gov/pubmed/x` ->
    `<base_url>/pubmed/x`)."""
    if not base_url:
        return lambda url: url
    base = base_url.rstrip("/")
    return lambda url: base + url[len(origin) :] if url.startswith(origin + "/") else url


def host_mirror(base_url: str | None) -> Callable[[str], str]:
    """Any URL mapped to `<base_url>/<host>/<path>`: the layout of `wget --mirror`, for
    sources spread over many hosts."""
    if not base_url:
        return lambda url: url
    base = base_url.rstrip("/")

    def local(url: str) -> str:
        parts = urlsplit(url)
        query = f"?{parts.query}" if parts.query else ""
        return f"{base}/{parts.netloc}{parts.path or '/'}{query}"

    return local
