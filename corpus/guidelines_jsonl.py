"""MediTron's released guidelines (`epfl-llm/guidelines`, JSONL) in and out of our rows.

Released record: {"id", "source", "title", "clean_text", "raw_text", "url", "overview"}.

Loading (released -> row; the row keys are those of corpus.guidelines):
    doc_id   <- id, verbatim (a released id names the same article in MediTron's set)
    source   <- source (lower-cased; the caller's hint when the record has none)
    title    <- title;  url <- url
    raw_text <- raw_text, or clean_text when a record has no raw text
    format   =  "jsonl";  n_pages = None
    license  =  the source's default licence (corpus.guideline_sources)
    locator  =  "line=<n>", 1-based
With keep_released=True the row also carries the released "clean_text" and "overview".

Exporting (row -> released): id <- doc_id, source, title, raw_text, url as they are;
clean_text <- the text of our cleaning stage, given as an argument or as the row's
"clean_text" field (null when neither exists: raw text is never passed off as cleaned);
overview <- the row's "overview" field, else null.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, TextIO

from corpus.guideline_sources import DEFAULT, SourceRegistry
from corpus.jsonl import json_object, jsonl_lines
from corpus.quarantine import Quarantined

RELEASED_FIELDS = ("id", "source", "title", "clean_text", "raw_text", "url", "overview")
FORMAT = "jsonl"


def parse_released_file(
    path: str,
    registry: SourceRegistry | None = None,
    source_hint: str | None = None,
    keep_released: bool = False,
) -> Iterator[dict[str, Any] | Quarantined]:
    """The rows of a released-schema .jsonl (or .jsonl.gz) file; never raises for bad content."""
    registry = registry or DEFAULT
    for item in jsonl_lines(path):
        if isinstance(item, Quarantined):
            yield item
        else:
            yield parse_released_line(item[1], item[0], registry, source_hint, keep_released)


def parse_released_line(
    raw: bytes,
    lineno: int,
    registry: SourceRegistry | None = None,
    source_hint: str | None = None,
    keep_released: bool = False,
) -> dict[str, Any] | Quarantined:
    """One released record as a row, or Quarantined with what is wrong with it."""
    locator = f"line={lineno}"
    record = json_object(raw, lineno)
    if isinstance(record, Quarantined):
        return record
    bad = [
        f for f in RELEASED_FIELDS if record.get(f) is not None and not isinstance(record[f], str)
    ]
    if bad:
        return Quarantined(locator, "InvalidField", f"fields {bad} are not strings")
    doc_id = (record.get("id") or "").strip()
    source = (record.get("source") or source_hint or "").strip().lower()
    if not doc_id or not source:
        missing = [name for name, value in (("id", doc_id), ("source", source)) if not value]
        return Quarantined(locator, "MissingField", f"no {' or '.join(missing)}")
    text = record.get("raw_text") or record.get("clean_text") or ""
    if not text.strip():
        return Quarantined(locator, "EmptyText", f"record {doc_id} has no raw_text or clean_text")
    row: dict[str, Any] = {
        "doc_id": doc_id,
        "source": source,
        "title": record.get("title") or None,
        "url": record.get("url") or None,
        "raw_text": text,
        "format": FORMAT,
        "n_pages": None,
        "license": (registry or DEFAULT).license_for(source),
        "locator": locator,
    }
    if keep_released:
        row["clean_text"] = record.get("clean_text")
        row["overview"] = record.get("overview")
    return row


def to_released(row: Mapping[str, Any], clean_text: str | None = None) -> dict[str, Any]:
    """The released-schema record of a row; `clean_text` overrides the row's own field."""
    return {
        "id": row["doc_id"],
        "source": row["source"],
        "title": row.get("title"),
        "clean_text": clean_text if clean_text is not None else row.get("clean_text"),
        "raw_text": row["raw_text"],
        "url": row.get("url"),
        "overview": row.get("overview"),
    }


def write_released_jsonl(
    rows: Iterable[Mapping[str, Any]],
    out: TextIO,
    clean_texts: Mapping[str, str] | None = None,
) -> int:
    """Write `rows` to `out` in the released schema, one JSON object a line; `clean_texts`
    maps doc_id to cleaned text. Returns the number of records written."""
    n = 0
    for row in rows:
        cleaned = clean_texts.get(row["doc_id"]) if clean_texts else None
        out.write(json.dumps(to_released(row, cleaned), ensure_ascii=False) + "\n")
        n += 1
    return n
