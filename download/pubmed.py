"""PubMed: NLM's annual baseline and daily update files (`pubmedYYnNNNN.xml.gz`), listed
from the HTML index of https://ftp.ncbi.nlm.nih.gov/pubmed/baseline/ and /updatefiles/.

Every file is checked against its published `.md5` (`MD5(pubmed26n0001.xml.gz)= <hex>`). A
mismatch is downloaded again from scratch up to `checksum_retries` times, then moved to
`_rejected/` and recorded with the reason: ingest never sees it. Files land in
`<to>/baseline/` and `<to>/updatefiles/`; ingest applies them in file-name order, which is
the order NLM numbers them (updates after the baseline). `max_files` takes the first N files
of that order. Default rate: 3 requests/s per host, NCBI's limit without an API key.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from download.core import Item, Session, fetch_items, origin_mirror
from download.http import DownloadError
from download.listing import parse_index
from download.options import PubmedOptions

Options = PubmedOptions
ORIGIN = "https://ftp.ncbi.nlm.nih.gov"
FOLDERS = (("baseline", "/pubmed/baseline/"), ("updatefiles", "/pubmed/updatefiles/"))
DEFAULT_RATE = 3.0
FILE_NAME = re.compile(r"^pubmed\d{2}n\d{4}\.xml\.gz$")
_MD5 = re.compile(
    r"MD5\s*\(\s*(?P<name>[^)]+?)\s*\)\s*=\s*(?P<hex>[0-9a-fA-F]{32})"
    r"|^(?P<hex2>[0-9a-fA-F]{32})\s+\*?(?P<name2>\S+)",
    re.MULTILINE,
)


def local_url(base_url: str | None) -> Callable[[str], str]:
    return origin_mirror(base_url, ORIGIN)


def parse_md5(text: str, name: str) -> str | None:
    """The hex digest for `name` in an NLM `.md5` file (or md5sum output), lower-cased."""
    for found in _MD5.finditer(text):
        named = found.group("name") or found.group("name2")
        digest = found.group("hex") or found.group("hex2")
        if named.strip() == name:
            return digest.lower()
    return None


def list_items(session: Session, options: PubmedOptions) -> list[Item]:
    """The listed `pubmed*.xml.gz` files, baseline then updates, each in number order."""
    wanted = {"baseline": options.baseline, "updatefiles": options.updates}
    items = []
    for folder, path in FOLDERS:
        if not wanted[folder]:
            continue
        dir_url = ORIGIN + path
        html = session.http.get_bytes(session.local_url(dir_url)).decode("utf-8", "replace")
        entries, unsafe = parse_index(html, dir_url)
        session.report.unsafe_names.extend(unsafe)
        for entry in sorted(entries, key=lambda e: e.name):
            if FILE_NAME.match(entry.name):
                identity = {"modified": entry.modified, "size": entry.size_text}
                items.append(
                    Item(
                        url=entry.url,
                        path=f"{folder}/{entry.name}",
                        size=entry.size,
                        approx_size=entry.approx_size,
                        identity={k: v for k, v in identity.items() if v is not None},
                    )
                )
    return items


def fetch(session: Session, options: PubmedOptions, max_files: int | None) -> None:
    items = list_items(session, options)[:max_files]

    def fetch_one(item: Item) -> None:
        name = item.path.rsplit("/", 1)[-1]
        md5_url = item.url + ".md5"
        text = session.http.get_bytes(session.local_url(md5_url), limit=4096)
        expected = parse_md5(text.decode("utf-8", "replace"), name)
        if expected is None:
            raise DownloadError(f"{md5_url}: no MD5 for {name}")
        for attempt in range(options.checksum_retries + 1):
            fetched = session.fetch(item)
            if fetched.md5 == expected:
                session.commit(item, fetched, md5_published=expected)
                return
            if attempt < options.checksum_retries:
                session.discard(item, fetched)
        downloads = options.checksum_retries + 1
        reason = f"md5 {fetched.md5} != published {expected} after {downloads} downloads"
        session.reject(item, fetched, reason, md5_published=expected)

    fetch_items(session, items, fetch_one)
