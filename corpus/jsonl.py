"""JSON Lines read as untrusted bytes: line by line from plain or gzip files, each line
checked to be UTF-8 holding one JSON object, every failure a Quarantined item."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from corpus.inputs import open_stream
from corpus.quarantine import Quarantined
from corpus.xml_records import FILE_LOCATOR

_READ_BYTES = 1 << 20


def jsonl_lines(path: str) -> Iterator[tuple[int, bytes] | Quarantined]:
    """(1-based line number, bytes) of each non-empty line; a gzip file cut short gives its
    complete lines and then one TruncatedInput; never raises for bad content."""
    lineno = 0
    try:
        with open_stream(path) as stream:
            for lineno, raw in enumerate(read_lines(stream), 1):
                if raw.strip():
                    yield lineno, raw
    except EOFError as exc:
        yield Quarantined(f"line={lineno + 1}", "TruncatedInput", f"{type(exc).__name__}: {exc}")
    except (OSError, zlib.error) as exc:
        locator = f"line={lineno + 1}" if lineno else FILE_LOCATOR
        yield Quarantined(locator, "UnreadableInput", f"{type(exc).__name__}: {exc}")


def read_lines(stream: BinaryIO) -> Iterator[bytes]:
    # open_stream hands over all the data before a truncated gzip raises, so every complete
    # line is yielded; the unfinished one is lost with the exception. Chunks, not readline:
    # a GzipStream's readline reads byte by byte.
    parts: list[bytes] = []
    while chunk := stream.read(_READ_BYTES):
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            parts.append(chunk[start:end])
            yield b"".join(parts)
            parts = []
            start = end + 1
        if start < len(chunk):
            parts.append(chunk[start:])
    if parts:
        yield b"".join(parts)


def json_object(raw: bytes, lineno: int) -> dict[str, Any] | Quarantined:
    """The JSON object on one line, or why it is not one (InvalidUtf8, InvalidJson,
    NotAnObject); a byte-order mark on line 1 is ignored."""
    locator = f"line={lineno}"
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Quarantined(locator, "InvalidUtf8", str(exc))
    if lineno == 1:
        line = line.removeprefix("\ufeff")
    try:
        record = json.loads(line)
    except (ValueError, RecursionError) as exc:
        return Quarantined(locator, "InvalidJson", f"{type(exc).__name__}: {exc}")
    if not isinstance(record, dict):
        return Quarantined(locator, "NotAnObject", f"the line is a JSON {type(record).__name__}")
    return record
