"""Where lakehouse and output locations live: a local folder, or a URI of another store.

Spark reads and writes tables at any location its Hadoop filesystems know (`s3a://`,
`abfss://`, `dbfs:/`, `file:/`). The files the driver and the tasks write themselves (shards,
tokenizer, manifest, dataset card) go through fsspec here: written to local disk first, then
uploaded, since an object store has no atomic rename and readers mmap local files. Object
store clients take their credentials from the usual environment (AWS_ACCESS_KEY_ID,
AWS_ENDPOINT_URL, AZURE_STORAGE_ACCOUNT_NAME, …); s3fs (extra `s3`) or adlfs (extra `azure`)
must be installed for `s3a://` or `abfss://`.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import fsspec
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem

# A scheme of two letters or more: `C:` on Windows is a drive, not a scheme.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")
# Where Databricks mounts DBFS on the driver and the workers.
DBFS_MOUNT = Path("/dbfs")
_MAGIC = re.compile(r"[*?[]")
# What names an object's version in fsspec's info(): s3fs, adlfs, gcsfs, others.
_VERSION_KEYS = ("ETag", "etag", "LastModified", "last_modified", "mtime", "updated")


def is_uri(location: str) -> bool:
    """True for `s3a://…`, `abfss://…`, `dbfs:/…`, `file:/…`; False for plain paths."""
    return bool(_SCHEME.match(location))


def local_path(location: str) -> Path | None:
    """The local folder a location names (plain path or `file:` URI), else None."""
    if not is_uri(location):
        return Path(location)
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(parsed.path)
    return None


def resolve(location: str) -> str:
    """A local location as an absolute path; a URI as given, without a trailing slash."""
    if is_uri(location):
        return location.rstrip("/")
    return str(Path(location).resolve())


def join(location: str, *parts: str) -> str:
    """`location/part/…`, with `/` for URIs whatever the platform."""
    if is_uri(location):
        return posixpath.join(location.rstrip("/"), *parts)
    return os.path.join(location, *parts)


def filesystem(location: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem holding `location`, and the location's path in it."""
    path = local_path(location)
    if path is not None:
        return LocalFileSystem(auto_mkdir=True), str(path)
    parsed = urlparse(location)
    if parsed.scheme == "dbfs" and DBFS_MOUNT.is_dir():
        # On Databricks every node sees DBFS as a local mount: no credentials needed.
        return LocalFileSystem(auto_mkdir=True), str(DBFS_MOUNT / parsed.path.lstrip("/"))
    if parsed.scheme == "abfss":
        # adlfs registers `abfs` for the same (always TLS) endpoint.
        location = "abfs" + location[len("abfss") :]
    return fsspec.core.url_to_fs(location)


def expand(location: str, suffixes: tuple[str, ...]) -> list[str]:
    """The files a location names, as locations: the file itself (whatever its suffix), the
    files below a folder whose names end in one of `suffixes`, or a glob's matches, folders
    among them searched the same way. Nothing there raises FileNotFoundError."""
    fs, path = filesystem(location)
    magic = _MAGIC.search(location)
    if magic:
        base = location[: magic.start()].rsplit("/", 1)[0]
        base_path = filesystem(base)[1]
        matches = fs.glob(path)
        if not matches:
            raise FileNotFoundError(f"no input matches {location!r}")
        found = (join(base, posixpath.relpath(m, base_path)) for m in matches)
        return sorted(f for match in found for f in expand(match, suffixes))
    if fs.isdir(path):
        return sorted(
            join(location, posixpath.relpath(p, path))
            for p in fs.find(path)
            if p.lower().endswith(suffixes)
        )
    if fs.isfile(path):
        return [location]
    raise FileNotFoundError(f"input {location!r} does not exist")


def file_state(location: str) -> list[Any]:
    """[location, size, version] of a file, to tell whether it changed since a run read it:
    the version is the modification time in ns on local disk, the object's ETag (else its
    modification time) on a store; [location, None] when it is gone."""
    fs, path = filesystem(location)
    try:
        if isinstance(fs, LocalFileSystem):
            st = os.stat(path)
            return [location, st.st_size, st.st_mtime_ns]
        info = fs.info(path)
    except FileNotFoundError:
        return [location, None]
    version = next((info[k] for k in _VERSION_KEYS if info.get(k) is not None), None)
    return [location, info.get("size"), str(version)]


def exists(location: str) -> bool:
    fs, path = filesystem(location)
    return bool(fs.exists(path))


def remove(location: str) -> None:
    """Delete a file or a whole folder; nothing when it does not exist."""
    fs, path = filesystem(location)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def remove_leftovers(folder: str | Path, *patterns: str) -> list[str]:
    """Delete what killed runs left in `folder` (staging folders, half-written files) and
    return their locations. Callers hold their stage's lock, so no live run writes these."""
    fs, path = filesystem(str(folder))
    found = sorted({m for p in patterns for m in fs.glob(posixpath.join(path, p))})
    for match in found:
        fs.rm(match, recursive=True)
    return [join(str(folder), posixpath.relpath(m, path)) for m in found]


def upload(source: Path, location: str) -> None:
    """Copy a local file to `location`."""
    fs, path = filesystem(location)
    fs.put_file(str(source), path)


def copy(source: str, target: str) -> None:
    """Copy a file or folder within one store (server-side on object stores)."""
    fs, source_path = filesystem(source)
    _, target_path = filesystem(target)
    fs.copy(source_path, target_path, recursive=True)


def replace(source: str, target: str) -> None:
    """Put `source` (a file or folder) at `target` instead of what is there: a rename on
    local disk; a copy, then deleting the source, on an object store (not atomic there)."""
    local_source, local_target = local_path(source), local_path(target)
    if local_source is not None and local_target is not None:
        remove(target)
        local_source.rename(local_target)
        return
    remove(target)
    copy(source, target)
    remove(source)


@contextlib.contextmanager
def local_copy(location: str) -> Iterator[Path]:
    """A local path holding what `location` holds: the path itself when local, else a
    download into a temporary folder removed when the block ends."""
    path = local_path(location)
    if path is not None:
        yield path
        return
    fs, remote = filesystem(location)
    with tempfile.TemporaryDirectory(prefix="gapreplay-") as tmp:
        target = Path(tmp) / posixpath.basename(remote.rstrip("/"))
        fs.get(remote, str(target), recursive=fs.isdir(remote))
        yield target


@contextlib.contextmanager
def local_folder(location: str, last: Sequence[str] = ()) -> Iterator[Path]:
    """A local folder to write what belongs at `location`: the folder itself when local,
    else a temporary one whose files are uploaded when the block ends without error, the
    names in `last` after all others (so that a commit marker is the last object to land)."""
    path = local_path(location)
    if path is not None:
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="gapreplay-") as tmp:
        folder = Path(tmp)
        yield folder
        written = sorted(p for p in folder.rglob("*") if p.is_file())
        for file in sorted(written, key=lambda p: p.relative_to(folder).as_posix() in last):
            upload(file, join(location, file.relative_to(folder).as_posix()))
