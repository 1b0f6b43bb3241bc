"""Opening input files as streams (gzip recognised by its magic bytes, damage reported after
the bytes before it). Which files the inputs name: spark_jobs.ingest_common.input_files."""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

GZIP_MAGIC = b"\x1f\x8b"


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
