"""Expanding user-given inputs (files, directories, globs) and opening them as streams."""

from __future__ import annotations

import glob
import io
import os
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"


def expand_inputs(inputs: Iterable[str], suffixes: tuple[str, ...]) -> list[str]:
    """Absolute paths of the files named by `inputs`, sorted by file name, then path.

    Directories are searched recursively for files ending in one of `suffixes`; globs are
    expanded; a named file is taken whatever its suffix (a user who names it means it).
    A name that matches nothing raises FileNotFoundError: that is a user error, not bad data.
    """
    found: set[str] = set()
    for item in inputs:
        matches = glob.glob(item, recursive=True) if glob.has_magic(item) else [item]
        if not matches:
            raise FileNotFoundError(f"no input matches {item!r}")
        for match in matches:
            path = Path(match)
            if path.is_dir():
                found.update(
                    str(p.resolve())
                    for p in path.rglob("*")
                    if p.is_file() and p.name.lower().endswith(suffixes)
                )
            elif path.is_file():
                found.add(str(path.resolve()))
            else:
                raise FileNotFoundError(f"input {match!r} does not exist")
    # Files are applied in name order (PubMed updates must follow their baseline).
    return sorted(found, key=lambda p: (os.path.basename(p), p))


class GzipStream(io.RawIOBase):
    """Streaming gunzip that hands over every byte it could decompress before failing.

    `gzip.GzipFile.read` discards the data of a read that hits a truncated stream; here a
    truncated or corrupt stream first yields all that precedes the damage, then raises
    EOFError (truncated) or zlib.error (corrupt). Concatenated gzip members are read in turn.
    """

    CHUNK = 1 << 16

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.inflater = zlib.decompressobj(wbits=31)
        self.member_open = False
        self.leftover = b""
        self.buffer = bytearray()
        self.done = False
        self.error: Exception | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self.done and (size < 0 or len(self.buffer) < size):
            self._inflate_some()
        cut = len(self.buffer) if size < 0 else size
        out = bytes(self.buffer[:cut])
        del self.buffer[:cut]
        if not out and self.error is not None:
            error, self.error = self.error, None
            raise error
        return out

    def _inflate_some(self) -> None:
        data = self.leftover or self.inflater.unconsumed_tail or self.raw.read(self.CHUNK)
        self.leftover = b""
        if not data or (not self.member_open and not data.strip(b"\0")):
            self.done = True
            if self.member_open:
                self.error = EOFError("the gzip stream ends before its end marker: truncated")
            return
        self.member_open = True
        try:
            self.buffer += self.inflater.decompress(data, self.CHUNK * 4)
        except zlib.error as exc:
            self.done, self.error = True, exc
            return
        if self.inflater.eof:
            self.leftover = self.inflater.unused_data
            self.inflater = zlib.decompressobj(wbits=31)
            self.member_open = False


@contextmanager
def open_stream(path: str) -> Iterator[BinaryIO]:
    """Open a file for streaming reads, decompressing gzip (recognised by its magic bytes)."""
    with open(path, "rb") as raw:
        if raw.peek(2)[:2] == GZIP_MAGIC:
            yield GzipStream(raw)  # type: ignore[misc]
        else:
            yield raw
