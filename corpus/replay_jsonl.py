"""General-domain "replay" documents from JSON Lines: RedPajama-1T (`{"text", "meta": {...}}`),
plain `{"text"}` records and the Dolma schema (`{"id", "text", "source", "added", "created",
"metadata": {...}}`), plain or gzip-compressed, streamed line by line.

Each non-empty line gives one row dict or one Quarantined; empty lines are skipped. Row keys:

- `doc_id` (str): "replay:<subset>:<native id>" when the record has one (the Dolma `id`,
  else the metadata `arxiv_id`, else the metadata or top-level `url`), otherwise
  "replay:<subset>:<first 20 hex digits of the SHA-256 of the UTF-8 text>".
- `subset` (str): one of SUBSETS (see `subset_of`).
- `text` (str): the record's `text`, unchanged (it may be empty).
- `meta` (dict[str, str]): every field of the record except `text`, with the metadata
  object (`meta`, or Dolma `metadata`) flattened into it; nested objects get dotted keys,
  strings are kept as they are and other values become compact JSON ("0.95", "true",
  "[41,42]"). A metadata key wins over a top-level field of the same name.
- `url` (str | None): the metadata `url`, else a top-level `url`.
- `language` (str | None): the metadata `language`, else a top-level `language`, when a
  string (RedPajama GitHub has a list there: that stays in `meta` only).
- `locator` (str): "line=N", N counted from 1 over all lines, empty ones included.

Quarantined (locator "line=N"): InvalidUtf8 (bytes that are not UTF-8, or a lone surrogate
`\\ud800` escape, which no UTF-8 table can store), InvalidJson, NotAnObject, MissingText (no
string `text`). A gzip file that ends early gives the lines before its end and one
TruncatedInput at the first line it could not read completely; other read errors give
UnreadableInput (locator "file" when the file cannot be opened at all).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Iterator
from typing import Any

from corpus.jsonl import json_object, jsonl_lines
from corpus.quarantine import Quarantined

SUBSETS = (
    "arxiv",
    "c4",
    "common_crawl",
    "wikipedia",
    "book",
    "stackexchange",
    "github",
    "pile",
    "other",
)
# Source labels, lower-cased with separators and a "RedPajama" prefix removed
# ("RedPajamaCommonCrawl", "common-crawl" and "common_crawl" all give "commoncrawl").
_LABELS = {
    "arxiv": "arxiv",
    "c4": "c4",
    "cc": "common_crawl",
    "commoncrawl": "common_crawl",
    "refinedweb": "common_crawl",
    "wikipedia": "wikipedia",
    "wiki": "wikipedia",
    "book": "book",
    "books": "book",
    "gutenberg": "book",
    "stackexchange": "stackexchange",
    "github": "github",
    "starcoder": "github",
    "pile": "pile",
    "thepile": "pile",
}
# File-name tokens are tried in SUBSETS order, most specific first:
# "redpajama-pile-stackexchange" is StackExchange (the Pile's copy of it), while a Pile
# component with no RedPajama counterpart ("the-pile-nih") is `pile`.
_NAME_ORDER = SUBSETS[:-1]
_SEPARATORS = re.compile(r"[^a-z0-9]+")
# Only a \uD800-\uDFFF escape can put a surrogate into text decoded from valid UTF-8.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_ID_CHARS = 20


def parse_replay_file(path: str) -> Iterator[dict[str, Any] | Quarantined]:
    """All records of one .jsonl / .json(.gz) file, in file order; never raises for bad content."""
    name_subset = subset_from_filename(path)
    for item in jsonl_lines(path):
        yield item if isinstance(item, Quarantined) else parse_line(item[1], item[0], name_subset)


def parse_line(raw: bytes, lineno: int, name_subset: str = "other") -> dict[str, Any] | Quarantined:
    """One JSON line as a row dict; `name_subset` is used when the record names no source."""
    locator = f"line={lineno}"
    record = json_object(raw, lineno)
    if isinstance(record, Quarantined):
        return record
    text = record.get("text")
    if not isinstance(text, str):
        return Quarantined(locator, "MissingText", f"text is {type(text).__name__}, not a string")
    try:
        row = _row(record, text, locator, name_subset)
        if _SURROGATE_ESCAPE.search(raw):
            json.dumps(row, ensure_ascii=False).encode("utf-8")
        return row
    except UnicodeEncodeError as exc:
        return Quarantined(locator, "InvalidUtf8", f"lone surrogate escape: {exc}")
    except RecursionError as exc:
        # json.loads accepted it, but re-encoding the values nests deeper than the stack.
        return Quarantined(locator, "InvalidJson", f"{type(exc).__name__}: {exc}")


def _row(record: dict[str, Any], text: str, locator: str, name_subset: str) -> dict[str, Any]:
    meta_key, metadata = _metadata(record)
    subset = _record_subset(record, metadata) or name_subset
    url = _string(metadata.get("url")) or _string(record.get("url"))
    native_id = _native_id(record.get("id")) or _native_id(metadata.get("arxiv_id")) or url
    if native_id is None:
        native_id = hashlib.sha256(text.encode("utf-8")).hexdigest()[:_ID_CHARS]
    meta: dict[str, str] = {}
    _flatten({k: v for k, v in record.items() if k not in ("text", meta_key)}, "", meta)
    _flatten(metadata, "", meta)
    return {
        "doc_id": f"replay:{subset}:{native_id}",
        "subset": subset,
        "text": text,
        "meta": dict(sorted(meta.items())),
        "url": url,
        "language": _string(metadata.get("language")) or _string(record.get("language")),
        "locator": locator,
    }


def _metadata(record: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The metadata object and its key; a key that holds no object stays a plain field."""
    for key in ("meta", "metadata"):
        value = record.get(key)
        # The Hugging Face RedPajama loader stores meta as a JSON string.
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                continue
        if isinstance(value, dict):
            return key, value
    return None, {}


def _record_subset(record: dict[str, Any], metadata: dict[str, Any]) -> str | None:
    # The first label present decides, even when unknown ("other"): a Dolma "reddit" record
    # is not Common Crawl because its file is named "cc_...".
    for label in (
        record.get("red_pajama_subset"),
        metadata.get("redpajama_set_name"),
        metadata.get("source"),
        record.get("source"),
    ):
        if isinstance(label, str) and label.strip():
            return subset_of(label)
    return None


def subset_of(label: str) -> str:
    """The subset a source label names ("RedPajamaC4", "common-crawl", "cc/2019-30/…"), or
    "other"; only the part before the first "/" counts."""
    key = _SEPARATORS.sub("", label.split("/", 1)[0].lower()).removeprefix("redpajama")
    return _LABELS.get(key, "other")


def subset_from_filename(path: str) -> str:
    """The subset named by a file name's tokens ("redpajama-c4-refined.jsonl" -> c4,
    "rp_arxiv_sample" -> arxiv, "redpajama-pile-stackexchange-refined" -> stackexchange,
    "the-pile-nih-refined" -> pile), or "other"."""
    words = _SEPARATORS.split(os.path.basename(path).lower())
    tokens = [t for w in words if (t := w.removeprefix("redpajama"))]
    # Pairs too, so that "common-crawl" and "stack_exchange" are recognised.
    keys = {_LABELS.get(t) for t in tokens}
    keys.update(_LABELS.get(a + b) for a, b in itertools.pairwise(tokens))
    return next((subset for subset in _NAME_ORDER if subset in keys), "other")


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _native_id(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _string(value)


def _flatten(obj: dict[str, Any], prefix: str, out: dict[str, str]) -> None:
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, f"{name}.", out)
        elif isinstance(value, str):
            out[name] = value
        else:
            out[name] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
