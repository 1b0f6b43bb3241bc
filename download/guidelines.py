"""Clinical guidelines: documents (PDF, HTML) of the open sources of
corpus.guideline_sources, and MediTron's released set.

Per source (a registry key), the document URLs come from the options: `urls` lists them,
`index_pages` names pages whose links are documents when they match the source's `include`
patterns (default: PDFs). Links are taken from the page's host, or from any host the registry
gives the same source (WHO pages link to iris.who.int); with `depth` > 1, linked pages matching
`follow` are read too. robots.txt is fetched once per host and obeyed for pages and documents
(its Crawl-delay slows that host further); a 401/403 robots.txt forbids the host, a missing one
allows it, an unreachable one forbids it, as urllib.robotparser does.

A document lands in `<to>/<key>/<key>_<name>-<hash of URL>.pdf|.html`: the prefix lets ingest
find its source by file name, the hash keeps two `guideline.pdf` apart, and the extension
follows the content (`%PDF-` or markup) whatever the URL says. Its manifest record keeps the
URL, the retrieval time (`fetched_at`), the page it was linked from, the publisher and the
registry licence. Content that is neither PDF nor HTML is dropped and reported.

MediTron's released set (`released`): the JSONL files of the Hugging Face dataset
`epfl-llm/guidelines`, fetched from `https://huggingface.co/datasets/<repo>/resolve/main/<file>`
into `<to>/released/`; the dataset is gated, so a token is read from `hf_token_env`.

With `--base-url`, every URL `https://<host>/<path>` is fetched from `<base-url>/<host>/<path>`
(the layout `wget --mirror` writes), robots.txt included; the manifest keeps the original URL.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit
from urllib.robotparser import RobotFileParser

from corpus.guideline_sources import SourceRegistry
from download.core import Item, Session, fetch_items, host_mirror
from download.files import is_safe_name, slug
from download.http import DownloadError, HttpStatusError
from download.listing import links
from download.options import GuidelineOptions, OptionsError

Options = GuidelineOptions
HUB = "https://huggingface.co"
DEFAULT_RATE = 1.0
_DOC_SUFFIXES = (".pdf", ".html", ".htm")
_SNIFF_BYTES = 1024


def local_url(base_url: str | None) -> Callable[[str], str]:
    return host_mirror(base_url)


class Robots:
    """robots.txt per scheme://host, fetched through the session's polite client."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._parsers: dict[str, RobotFileParser] = {}

    def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._parsers:
            self._parsers[origin] = self._load(origin)
        return self._parsers[origin].can_fetch(self.session.http.settings.user_agent, url)

    def _load(self, origin: str) -> RobotFileParser:
        parser = RobotFileParser(origin + "/robots.txt")
        local = self.session.local_url(origin + "/robots.txt")
        try:
            text = self.session.http.get_bytes(local, limit=1 << 20).decode("utf-8", "replace")
        except HttpStatusError as exc:
            if exc.status in (401, 403):
                parser.disallow_all = True
            else:
                parser.allow_all = True
            return parser
        except DownloadError as exc:
            self.session.report.errors.append(f"{origin}/robots.txt: {exc}; host skipped")
            parser.disallow_all = True
            return parser
        parser.parse(text.splitlines())
        delay = parser.crawl_delay(self.session.http.settings.user_agent)
        if delay:
            self.session.http.bucket(local).slow_to(1.0 / float(delay))
        return parser


def document_path(key: str, url: str, kind: str | None = None) -> str:
    """`<key>/<key>_<name>-<8 hex of the URL's SHA-256>.pdf|.html`; `kind` ("pdf", "html")
    is the sniffed content, else the URL's suffix decides (no suffix: a page)."""
    name = PurePosixPath(unquote(urlsplit(url).path)).name
    suffix = next((s for s in _DOC_SUFFIXES if name.lower().endswith(s)), "")
    stem = slug(name[: len(name) - len(suffix)], 60) or "document"
    ext = ".pdf" if (kind or suffix.lstrip(".")) == "pdf" else ".html"
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    return f"{key}/{key}_{stem}-{digest}{ext}"


def sniff(head: bytes) -> str | None:
    """The kind of a document from its first bytes: "pdf", "html", or None for anything else."""
    start = head[:_SNIFF_BYTES].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"%pdf-" in start:
        return "pdf"
    if start.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--", b"<?xml")):
        return "html"
    return "html" if b"<html" in start else None


def _compile(patterns: list[str]) -> list[re.Pattern[str]]:
    return [re.compile(p) for p in patterns]


def _source_items(
    session: Session,
    options: GuidelineOptions,
    registry: SourceRegistry,
    key: str,
    robots: Robots,
) -> list[Item]:
    """The documents of one source: its configured URLs, then what its index pages link."""
    source = registry.get(key)
    assert source is not None
    include = _compile(options.include.get(key, options.default_include))
    exclude = _compile(options.exclude.get(key, []))
    follow = _compile(options.follow.get(key, []))
    found_on: dict[str, str | None] = dict.fromkeys(options.urls.get(key, []))
    frontier = [(page, 1) for page in options.index_pages.get(key, [])]
    if not found_on and not frontier:
        session.report.notes.append(f"{key}: no urls or index_pages configured")
    seen: set[str] = set()
    pages_read = 0
    while frontier and pages_read < options.max_pages:
        page, depth = frontier.pop(0)
        if page in seen:
            continue
        seen.add(page)
        if not robots.allowed(page):
            session.report.skipped_robots += 1
            continue
        try:
            html = session.http.get_bytes(session.local_url(page)).decode("utf-8", "replace")
        except DownloadError as exc:
            session.report.errors.append(f"{page}: {exc}")
            continue
        pages_read += 1
        page_host = urlsplit(page).netloc
        for link in links(html, page):
            same_source = urlsplit(link).netloc == page_host or registry.source_for_url(link) == key
            if not same_source or any(x.search(link) for x in exclude):
                continue
            if any(p.search(link) for p in include):
                found_on.setdefault(link, page)
            elif depth < options.depth and any(f.search(link) for f in follow):
                frontier.append((link, depth + 1))
    items = []
    for url, page in found_on.items():
        if not robots.allowed(url):
            session.report.skipped_robots += 1
            continue
        extra = {
            "guideline_source": key,
            "publisher": source.publisher,
            "license": source.license,
            "found_on": page,
        }
        items.append(Item(url, document_path(key, url), extra=extra))
    return items[: options.max_documents]


def _released_items(options: GuidelineOptions) -> list[Item]:
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", options.released_repo):
        raise OptionsError(f"released_repo: {options.released_repo!r} is not owner/name")
    items = []
    for name in options.released_files:
        if not is_safe_name(name):
            raise OptionsError(f"released_files: {name!r} is not a plain file name")
        url = f"{HUB}/datasets/{options.released_repo}/resolve/main/{name}"
        items.append(Item(url, f"released/{name}", extra={"dataset": options.released_repo}))
    return items


def fetch(session: Session, options: GuidelineOptions, max_files: int | None) -> None:
    registry = SourceRegistry.from_config(options.extra_sources)
    keys = options.sources if options.sources is not None else [s.key for s in registry if s.open]
    unknown = [key for key in keys if key not in registry]
    if unknown:
        raise OptionsError(f"sources: {unknown} are not in the guideline source registry")
    robots = Robots(session)
    items = _released_items(options) if options.released else []
    for key in keys:
        items.extend(_source_items(session, options, registry, key, robots))

    def fetch_one(item: Item) -> None:
        fetched = session.fetch(item)
        key = item.extra.get("guideline_source")
        if key is None:
            session.commit(item, fetched)
            return
        with fetched.part.open("rb") as f:
            kind = sniff(f.read(_SNIFF_BYTES))
        if kind is None:
            session.discard(item, fetched)
            raise DownloadError("neither a PDF nor an HTML page; not kept")
        session.commit(item, fetched, path=document_path(key, item.url, kind))

    fetch_items(session, items[:max_files], fetch_one)
