"""PMC open access: the bulk XML packages of https://ftp.ncbi.nlm.nih.gov/pub/pmc/oa_bulk/
(`oa_comm/xml/` may be used commercially, `oa_noncomm/xml/` not; `oa_other/xml/` has other or
no licences), each subset a separate choice.

A subset is a set of baseline packages (`oa_comm_xml.PMC00XXXXXX.baseline.YYYY-MM-DD.tar.gz`)
and daily incremental ones (`oa_comm_xml.incr.YYYY-MM-DD.tar.gz`), each with a
`.filelist.csv` / `.filelist.txt` naming its articles, licences and retractions. Packages land
in `<to>/<subset>/` unchanged (ingest streams the tar members), baselines first, then
incrementals by date; `max_files` counts packages, and a package's file list comes with it.
A later run fetches only packages that are new or whose listing date or size changed (a
HEAD request's ETag, Last-Modified and length where the listing shows neither).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from download.core import Item, Session, fetch_items, origin_mirror
from download.listing import parse_index
from download.options import PmcOptions

Options = PmcOptions
ORIGIN = "https://ftp.ncbi.nlm.nih.gov"
SUBSET_PATHS = {
    "oa_comm": "/pub/pmc/oa_bulk/oa_comm/xml/",
    "oa_noncomm": "/pub/pmc/oa_bulk/oa_noncomm/xml/",
    "oa_other": "/pub/pmc/oa_bulk/oa_other/xml/",
}
DEFAULT_RATE = 3.0
PACKAGE = re.compile(
    r"^oa_(?:comm|noncomm|other)_xml\."
    r"(?:(?P<baseline>PMC\d+x+\.baseline)|(?P<incr>incr))\.\d{4}-\d{2}-\d{2}\.tar\.gz$"
)
_FILELIST_SUFFIXES = {"csv": (".csv",), "txt": (".txt",), "both": (".csv", ".txt"), "none": ()}


def local_url(base_url: str | None) -> Callable[[str], str]:
    return origin_mirror(base_url, ORIGIN)


def list_items(session: Session, options: PmcOptions) -> list[list[Item]]:
    """Per package, in fetch order: [package, its file lists...]."""
    include = re.compile(options.include) if options.include else None
    groups = []
    for subset in options.subsets:
        dir_url = ORIGIN + SUBSET_PATHS[subset]
        html = session.http.get_bytes(session.local_url(dir_url)).decode("utf-8", "replace")
        entries, unsafe = parse_index(html, dir_url)
        session.report.unsafe_names.extend(unsafe)
        by_name = {e.name: e for e in entries}
        packages = []
        for entry in entries:
            found = PACKAGE.match(entry.name)
            if not found or (include and not include.search(entry.name)):
                continue
            if found.group("baseline") and not options.baseline:
                continue
            if found.group("incr") and not options.incremental:
                continue
            # Baselines before incrementals; each kind in name (= PMC range, date) order.
            packages.append((0 if found.group("baseline") else 1, entry.name))
        for _, name in sorted(packages):
            stem = name.removesuffix(".tar.gz")
            names = [name] + [
                f"{stem}.filelist{suffix}" for suffix in _FILELIST_SUFFIXES[options.filelists]
            ]
            group = []
            for member in names:
                entry = by_name.get(member)
                if entry is None:
                    session.report.notes.append(f"{subset}: {member} is not listed")
                    continue
                identity = {"modified": entry.modified, "size": entry.size_text}
                identity = {k: v for k, v in identity.items() if v is not None}
                if not identity:
                    head = session.http.head(session.local_url(entry.url))
                    identity = {
                        k: str(v)
                        for k, v in (
                            ("etag", head.etag),
                            ("last_modified", head.last_modified),
                            ("size", head.size),
                        )
                        if v is not None
                    }
                extra = {"subset": subset, "package": name}
                item = Item(entry.url, f"{subset}/{member}", entry.size, entry.approx_size)
                item.identity, item.extra = identity, extra
                group.append(item)
            groups.append(group)
    return groups


def fetch(session: Session, options: PmcOptions, max_files: int | None) -> None:
    groups = list_items(session, options)[:max_files]
    fetch_items(session, [item for group in groups for item in group])
