"""The download folder: safe names, the manifest, checksums and the one-writer lock.

Nothing downloaded is ever executed or unpacked here, and nothing is written outside the
folder: every name that comes from a listing or a URL is checked (`safe_path`) or rewritten
(`slug`) before it becomes a path.

The manifest `_manifest.ndjson` holds one JSON object per line, appended as files land:
url, path (relative to the folder, "/"-separated), size, md5, sha256, fetched_at (UTC, ISO
8601), status ("ok", "rejected", "streamed") and source-specific fields. A later line for the
same path (or, with no path, the same url) replaces the earlier one. It is not called
`_manifest.jsonl` because the guidelines and replay ingest read every `.jsonl`/`.json` file
under their input folders; nor do `.part`, `.part.meta`, `.rejected` or `.lock` files match
any ingest suffix.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANIFEST_NAME = "_manifest.ndjson"
LOCK_NAME = ".download.lock"
REJECTED_DIR = "_rejected"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,199}$")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_HASH_CHUNK = 1 << 20


class UnsafePath(ValueError):
    """A name that would leave the download folder or is not a plain file name."""


def is_safe_name(name: str) -> bool:
    """A plain file name: letters, digits, `_.+-`, not starting with a dot (so no `..`)."""
    return bool(_SAFE_NAME.match(name))


def safe_path(root: Path, rel: str) -> Path:
    """`root / rel` for a "/"-separated relative path of safe names, checked to stay inside."""
    parts = rel.split("/")
    if not all(is_safe_name(part) for part in parts):
        raise UnsafePath(f"unsafe path {rel!r}")
    path = root.joinpath(*parts)
    if not path.resolve().is_relative_to(root.resolve()):
        raise UnsafePath(f"{rel!r} leaves {root}")
    return path


def slug(text: str, max_len: int = 80) -> str:
    """A safe file-name fragment from arbitrary text (a URL path segment)."""
    return _UNSAFE_CHARS.sub("_", text).strip("._-")[:max_len].strip("._-")


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def file_hashes(path: Path) -> tuple[str, str]:
    """(md5, sha256) hex digests in one read."""
    md5, sha256 = hashlib.md5(), hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            md5.update(chunk)
            sha256.update(chunk)
    return md5.hexdigest(), sha256.hexdigest()


def _key(record: dict[str, Any]) -> str:
    return str(record.get("path") or record.get("url"))


def _records(folder: Path) -> Iterator[dict[str, Any]]:
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return
    with path.open("rb") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # the torn last line of a killed run
            if isinstance(record, dict) and "url" in record:
                yield record


def read_manifest(folder: str | Path) -> list[dict[str, Any]]:
    """What a download folder holds: the latest manifest record per path (per url for a
    streamed input that has no path), in the order the paths first appeared. Ingest wants
    those with status "ok"; "rejected" ones sit under `_rejected/`, out of ingest's way."""
    latest: dict[str, dict[str, Any]] = {}
    for record in _records(Path(folder)):
        # Assigning keeps a key's first position in the dict and replaces its record.
        latest[_key(record)] = record
    return list(latest.values())


def provenance(folders: list[str], files: list[str]) -> list[Any]:
    """`files` as ingest records them in `_runs.inputs`: a path, or, for a file that a
    download manifest in one of `folders` lists as fetched, its path with the URL, size,
    checksums and retrieval time."""
    fetched: dict[str, dict[str, Any]] = {}
    for folder in map(Path, folders):
        if (folder / MANIFEST_NAME).is_file():
            for record in read_manifest(folder):
                if record.get("path") and record.get("status") == "ok":
                    fetched[str((folder / record["path"]).resolve())] = record
    fields = ("url", "size", "md5", "sha256", "fetched_at")
    out: list[Any] = []
    for path in files:
        record = fetched.get(str(Path(path).resolve()))
        out.append(path if record is None else {"path": path, **{k: record.get(k) for k in fields}})
    return out


class Manifest:
    """The folder's manifest, read once and appended to line by line."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / MANIFEST_NAME
        self._latest: dict[str, dict[str, Any]] = {}
        self._by_url: dict[str, dict[str, Any]] = {}
        for record in _records(folder):
            self._remember(record)
        # A run killed mid-line leaves no newline: the next record must not join that line.
        if self.path.is_file() and self.path.stat().st_size:
            with self.path.open("rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    with self.path.open("ab") as out:
                        out.write(b"\n")

    def _remember(self, record: dict[str, Any]) -> None:
        self._latest[_key(record)] = record
        self._by_url[record["url"]] = record

    def latest(self, key: str) -> dict[str, Any] | None:
        """The latest record for a path (or a path-less url)."""
        return self._latest.get(key)

    def by_url(self, url: str) -> dict[str, Any] | None:
        """The latest record whose url is `url`."""
        return self._by_url.get(url)

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n"
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self._remember(record)


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """One download at a time per folder: two writers would corrupt .part files."""
    with (folder / LOCK_NAME).open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise RuntimeError(f"another download is writing to {folder}") from exc
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
