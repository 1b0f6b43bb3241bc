"""HTML directory indexes (Apache, nginx, NCBI's FTP-over-HTTPS) and page links.

A listing entry is a link to a file directly inside the listed directory. Sort links
(`?C=N;O=D`), the parent link and sub-directory links are not entries. A link that names a
file elsewhere on the host (`../x`, `/abs/x`, `%2e%2e%2fx`) or a name that is not a plain file
name is returned as unsafe, for the report: such a listing is broken or hostile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

from download.files import is_safe_name

# Apache "2024-11-13 13:45", nginx "13-Dec-2024 14:22"; a size right after the date.
_DATE = (
    r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2})?"
    r"|\d{2}-[A-Za-z]{3}-\d{4} \d{2}:\d{2}(?::\d{2})?"
)
_DATE_SIZE = re.compile(rf"({_DATE})\s+(-|\d+(?:\.\d+)?[KMGTP]?)(?![\w.])")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


@dataclass(frozen=True)
class Entry:
    """A file in a directory listing. `size` is exact only when the listing gives bytes;
    `approx_size` is NCBI's "19M" read as bytes, for estimates."""

    name: str
    url: str
    modified: str | None
    size_text: str | None
    size: int | None
    approx_size: int | None


class _Anchors(HTMLParser):
    """(href, text that follows the link up to the next link) for each <a href>; the base
    href when the page sets one."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, list[str]]] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href is not None:
            self.links.append((href.strip(), []))
        elif tag == "base" and href and self.base is None:
            self.base = href.strip()

    def handle_data(self, data: str) -> None:
        if self.links:
            self.links[-1][1].append(data)


def links(html: str, page_url: str) -> list[str]:
    """Absolute http(s) URLs of a page's <a href> links, fragments removed, in page order,
    each once; relative links resolve against the page (or its <base href>)."""
    parser = _Anchors()
    parser.feed(html)
    base = urljoin(page_url, parser.base) if parser.base else page_url
    seen: dict[str, None] = {}
    for href, _ in parser.links:
        url = urldefrag(urljoin(base, href)).url
        if urlsplit(url).scheme in ("http", "https"):
            seen.setdefault(url, None)
    return list(seen)


def _size(text: str | None) -> tuple[int | None, int | None]:
    if text is None or text == "-":
        return None, None
    if text.isdigit():
        return int(text), int(text)
    unit = text[-1] if text[-1] in _UNITS else ""
    number = float(text[:-1] if unit else text)
    return None, int(number * _UNITS[unit])


def parse_index(html: str, dir_url: str) -> tuple[list[Entry], list[str]]:
    """(entries, unsafe hrefs) of a directory index page served at `dir_url`."""
    parser = _Anchors()
    parser.feed(html)
    base = urlsplit(dir_url)
    dir_path = base.path if base.path.endswith("/") else base.path + "/"
    entries: dict[str, Entry] = {}
    unsafe: list[str] = []
    for href, tail in parser.links:
        if not href or href.startswith(("?", "#")) or href.endswith("/"):
            continue
        url = urldefrag(urljoin(dir_url, href)).url
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != (base.scheme, base.netloc):
            continue  # a page-header link to another site, not a listing entry
        folder, _, raw_name = parts.path.rpartition("/")
        name = unquote(raw_name)
        if parts.query or folder + "/" != dir_path or not is_safe_name(name):
            unsafe.append(href)
            continue
        found = _DATE_SIZE.search(" ".join(tail))
        modified, size_text = (found.group(1), found.group(2)) if found else (None, None)
        size, approx = _size(size_text)
        entries.setdefault(name, Entry(name, url, modified, size_text, size, approx))
    return list(entries.values()), unsafe
