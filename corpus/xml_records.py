"""Splitting a streamed XML file into its top-level records, one byte chunk each.

Each record is parsed on its own (not with one `iterparse` over the file) so that a
malformed or hostile record is quarantined while the records around it are kept: a
streaming parser cannot resume after a syntax error. Memory is bounded by the largest
record, not by the file. The DOCTYPE is skipped and never handed to the parser, so entity
declarations in it (XXE, billion laughs) cannot take effect.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from lxml import etree

from corpus.quarantine import Quarantined

BLOCK_BYTES = 1 << 20
DEFAULT_MAX_RECORD_BYTES = 64 << 20
PARSE_BATCH = 64
FILE_LOCATOR = "file"
EOF_LOCATOR = "end of file"
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_NAME = re.compile(rb"<([A-Za-z_][\w.:-]*)")
_READ_ERRORS = (EOFError, OSError, zlib.error)


@dataclass(frozen=True)
class RawRecord:
    """One top-level record: its index among the file's records, byte offset and bytes."""

    index: int
    offset: int
    tag: str
    data: bytes
    encoding: str = "utf-8"

    @property
    def locator(self) -> str:
        return record_locator(self.index, self.offset)


def record_locator(index: int, offset: int) -> str:
    return f"record={index} offset={offset}"


class _Buffer:
    """A sliding window over the stream; remembers why reading stopped, if it failed."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.data = b""
        self.base = 0  # stream offset of data[0]
        self.eof = False
        self.read_error: str | None = None

    def fill(self, keep_from: int) -> int:
        """Drop data before `keep_from`, append one block; returns the shift applied."""
        if self.eof:
            return 0
        try:
            block = self.stream.read(BLOCK_BYTES)
        except _READ_ERRORS as exc:
            block = b""
            self.read_error = f"{type(exc).__name__}: {exc}"
        if not block:
            self.eof = True
        self.data = self.data[keep_from:] + block
        self.base += keep_from
        return keep_from


def split_records(
    stream: BinaryIO,
    record_tags: Mapping[str, tuple[str, ...]],
    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
) -> Iterator[RawRecord | Quarantined]:
    """Yield the records under the root element, or Quarantined for what cannot be split.

    `record_tags` maps each accepted root element name to the names of its record elements.
    A file whose root is not accepted, an empty or non-XML file, a record with no closing
    tag, an oversized record and a truncated file each yield a Quarantined item.
    """
    buf = _Buffer(stream)
    pos, root, encoding = _skip_prolog(buf)
    if root is None:
        if buf.read_error:
            yield Quarantined(FILE_LOCATOR, "UnreadableInput", buf.read_error)
        elif not buf.data.strip():
            yield Quarantined(FILE_LOCATOR, "EmptyInput", "the file is empty")
        else:
            yield Quarantined(FILE_LOCATOR, "NotXml", "no XML root element found")
        return
    if root not in record_tags:
        expected = ", ".join(sorted(record_tags))
        yield Quarantined(
            FILE_LOCATOR, "UnexpectedRoot", f"root element <{root}> is not one of: {expected}"
        )
        return
    tags = record_tags[root]
    start_re = re.compile(rb"<(" + b"|".join(t.encode() for t in tags) + rb")[\s>/]")
    root_close = f"</{root}".encode()
    index = 0
    closed = False
    while True:
        lt = buf.data.find(b"<", pos)
        if lt < 0 or lt + 64 > len(buf.data):
            if buf.eof:
                if lt < 0:
                    break
            else:
                pos -= buf.fill(pos)
                continue
        if buf.data.startswith(b"<!--", lt):
            end = buf.data.find(b"-->", lt)
            if end < 0 and not buf.eof:
                pos -= buf.fill(lt)
                continue
            pos = len(buf.data) if end < 0 else end + 3
            continue
        if buf.data.startswith(b"<?", lt):
            end = buf.data.find(b"?>", lt)
            if end < 0 and not buf.eof:
                pos -= buf.fill(lt)
                continue
            pos = len(buf.data) if end < 0 else end + 2
            continue
        if buf.data.startswith(root_close, lt):
            closed = True
            break
        match = start_re.match(buf.data, lt)
        if match is None:
            name = _NAME.match(buf.data, lt)
            what = name.group(1).decode("utf-8", "replace") if name else "text"
            nxt = start_re.search(buf.data, lt + 1)
            while nxt is None and not buf.eof:
                lt -= buf.fill(lt)
                nxt = start_re.search(buf.data, lt + 1)
            yield Quarantined(
                record_locator(index, buf.base + lt),
                "UnexpectedElement",
                f"<{what}> is not a record element ({', '.join(tags)})",
            )
            index += 1
            pos = nxt.start() if nxt else len(buf.data)
            continue
        tag = match.group(1).decode()
        close = f"</{tag}>".encode()
        item, pos = _take_record(buf, lt, start_re, close, tag, index, max_record_bytes, encoding)
        if item is None:
            break
        yield item
        index += 1
    if buf.read_error:
        yield Quarantined(EOF_LOCATOR, "TruncatedInput", buf.read_error)
    elif not closed:
        yield Quarantined(
            EOF_LOCATOR, "TruncatedInput", f"the file ends before </{root}>: it was cut short"
        )


def _take_record(
    buf: _Buffer,
    start: int,
    start_re: re.Pattern[bytes],
    close: bytes,
    tag: str,
    index: int,
    max_bytes: int,
    encoding: str,
) -> tuple[RawRecord | Quarantined | None, int]:
    """The record starting at `start` and the position after it."""
    while True:
        end = buf.data.find(close, start)
        limit = end if end >= 0 else len(buf.data)
        nxt = start_re.search(buf.data, start + 1, limit)
        locator = record_locator(index, buf.base + start)
        if nxt is not None:
            return Quarantined(
                locator, "MalformedXML", f"<{tag}> is not closed before the next record"
            ), nxt.start()
        if end >= 0:
            stop = end + len(close)
            return RawRecord(index, buf.base + start, tag, buf.data[start:stop], encoding), stop
        if len(buf.data) - start > max_bytes:
            skip = start_re.search(buf.data, start + 1)
            while skip is None and not buf.eof:
                start -= buf.fill(len(buf.data) - 64)
                skip = start_re.search(buf.data, 0)
            return Quarantined(
                locator, "RecordTooLarge", f"<{tag}> exceeds the {max_bytes} byte limit"
            ), (skip.start() if skip else len(buf.data))
        if buf.eof:
            reason = buf.read_error or "the file ends inside this record"
            return Quarantined(locator, "TruncatedRecord", reason), len(buf.data)
        start -= buf.fill(start)


def _skip_prolog(buf: _Buffer) -> tuple[int, str | None, str]:
    """Position of the first record candidate after the root start tag, root name, encoding."""
    buf.fill(0)
    while not buf.eof and len(buf.data) < 4096:
        buf.fill(0)
    encoding = "utf-8"
    pos = 3 if buf.data.startswith(b"\xef\xbb\xbf") else 0
    while True:
        while pos < len(buf.data) and buf.data[pos : pos + 1].isspace():
            pos += 1
        if pos >= len(buf.data):
            if buf.eof:
                return pos, None, encoding
            pos -= buf.fill(pos)
            continue
        if not buf.data.startswith(b"<", pos):
            return pos, None, encoding
        for opener, closer in ((b"<?", b"?>"), (b"<!--", b"-->")):
            if buf.data.startswith(opener, pos):
                end = buf.data.find(closer, pos)
                if end < 0:
                    return pos, None, encoding
                if opener == b"<?" and buf.data.startswith(b"<?xml", pos):
                    declared = _ENCODING.search(buf.data, pos, end)
                    if declared:
                        encoding = declared.group(1).decode().lower()
                pos = end + len(closer)
                break
        else:
            if buf.data.startswith(b"<!DOCTYPE", pos):
                pos = _doctype_end(buf.data, pos)
                if pos < 0:
                    return 0, None, encoding
                continue
            name = _NAME.match(buf.data, pos)
            if name is None:
                return pos, None, encoding
            tag_end = buf.data.find(b">", pos)
            if tag_end < 0:
                return pos, None, encoding
            return tag_end + 1, name.group(1).decode(), encoding


def _doctype_end(data: bytes, pos: int) -> int:
    """Position after a DOCTYPE declaration, internal subset included; -1 if unterminated."""
    bracket = data.find(b"[", pos)
    gt = data.find(b">", pos)
    if bracket < 0 or (0 <= gt < bracket):
        return -1 if gt < 0 else gt + 1
    end = re.compile(rb"\]\s*>").search(data, bracket)
    return -1 if end is None else end.end()


def parse_batches(
    items: Iterator[RawRecord | Quarantined], parser: etree.XMLParser
) -> Iterator[tuple[RawRecord, etree._Element] | Quarantined]:
    """Parse records into elements, many per parser call (a parser call costs about as much
    as a record); a batch that fails is parsed again record by record, so that only the
    bad records are quarantined."""
    batch: list[RawRecord] = []
    for item in items:
        if isinstance(item, Quarantined):
            yield item
            continue
        batch.append(item)
        if len(batch) >= PARSE_BATCH:
            yield from _parse_batch(batch, parser)
            batch = []
    yield from _parse_batch(batch, parser)


def _declaration(encoding: str) -> bytes:
    if encoding in ("utf-8", "utf8"):
        return b""
    return f'<?xml version="1.0" encoding="{encoding}"?>'.encode()


def _parse_batch(
    batch: list[RawRecord], parser: etree.XMLParser
) -> Iterator[tuple[RawRecord, etree._Element] | Quarantined]:
    if not batch:
        return
    head = _declaration(batch[0].encoding)
    try:
        root = etree.fromstring(
            head + b"<batch>" + b"".join(r.data for r in batch) + b"</batch>", parser
        )
        elements = list(root)
        if len(elements) == len(batch) and all(
            e.tag == r.tag for e, r in zip(elements, batch, strict=True)
        ):
            yield from zip(batch, elements, strict=True)
            return
    except etree.XMLSyntaxError:
        pass
    for raw in batch:
        try:
            yield raw, etree.fromstring(_declaration(raw.encoding) + raw.data, parser)
        except etree.XMLSyntaxError as exc:
            yield Quarantined(raw.locator, "MalformedXML", str(exc))
