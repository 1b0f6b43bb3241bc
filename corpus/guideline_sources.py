"""The clinical-guideline sources: MediTron's 16 (MEDITRON.md) and any a user adds.

Each source has a short key (the `source` tag of MediTron's released `epfl-llm/guidelines`),
its publisher, whether MediTron released its articles (`open`), the licence its documents
carry by default (a code of corpus.licenses; "unknown" unless the publisher states one for
all its documents: US federal works are public domain, WikiDoc is CC BY-SA; WHO's licence
differs between publications, so a document's own statement has to decide), its web hosts and
base URLs, and MediTron's article count.

A document is matched to its source by the host of its URL (subdomains included, the most
specific host winning) or, for a local file, by a configured glob/prefix map and then by a
file-name prefix such as "cdc_" or "who-".
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from corpus.licenses import LICENSES, UNKNOWN, normalize_license

_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@dataclass(frozen=True)
class GuidelineSource:
    key: str
    publisher: str
    open: bool
    license: str
    hosts: tuple[str, ...]
    urls: tuple[str, ...] = ()
    n_articles: int | None = None

    def __post_init__(self) -> None:
        if not _KEY.match(self.key):
            raise ValueError(f"source key {self.key!r} must be lower-case letters, digits, _ or -")
        if self.license not in LICENSES:
            raise ValueError(f"licence {self.license!r} of {self.key!r} is not one of {LICENSES}")


def _source(
    key: str, publisher: str, is_open: bool, lic: str, n: int, *hosts: str
) -> GuidelineSource:
    return GuidelineSource(
        key, publisher, is_open, lic, hosts, tuple(f"https://{h}/" for h in hosts), n
    )


BUILTIN: tuple[GuidelineSource, ...] = (
    _source("aafp", "American Academy of Family Physicians", False, UNKNOWN, 50, "aafp.org"),
    _source("cco", "Cancer Care Ontario", True, UNKNOWN, 87, "cancercareontario.ca"),
    _source(
        "cdc", "Centers for Disease Control and Prevention", True, "public-domain", 621, "cdc.gov"
    ),
    _source(
        "cma",
        "Canadian Medical Association (CPG Infobase)",
        True,
        UNKNOWN,
        431,
        "cma.ca",
        "joulecma.ca",
    ),
    _source("cps", "Canadian Paediatric Society", False, UNKNOWN, 54, "cps.ca"),
    _source("drugs", "Drugs.com", False, UNKNOWN, 6548, "drugs.com"),
    _source("gc", "Guideline Central", False, UNKNOWN, 1029, "guidelinecentral.com"),
    _source("icrc", "International Committee of the Red Cross", True, UNKNOWN, 49, "icrc.org"),
    _source("idsa", "Infectious Diseases Society of America", False, UNKNOWN, 47, "idsociety.org"),
    _source(
        "magic",
        "MAGIC Evidence Ecosystem Foundation",
        False,
        UNKNOWN,
        52,
        "magicapp.org",
        "magicevidence.org",
    ),
    _source("mayo", "Mayo Clinic", False, UNKNOWN, 1100, "mayoclinic.org"),
    _source(
        "nice",
        "National Institute for Health and Care Excellence",
        True,
        UNKNOWN,
        1656,
        "nice.org.uk",
    ),
    _source("rch", "The Royal Children's Hospital Melbourne", False, UNKNOWN, 384, "rch.org.au"),
    _source("spor", "SPOR Evidence Alliance", True, UNKNOWN, 217, "sporevidencealliance.ca"),
    _source("who", "World Health Organization", True, UNKNOWN, 223, "who.int"),
    _source("wikidoc", "WikiDoc", True, "cc-by-sa", 33058, "wikidoc.org"),
)


@dataclass
class SourceRegistry:
    """Sources by key; `register` adds one or replaces the one with the same key."""

    _by_key: dict[str, GuidelineSource] = field(default_factory=dict)

    @classmethod
    def builtin(cls) -> SourceRegistry:
        registry = cls()
        for source in BUILTIN:
            registry.register(source)
        return registry

    @classmethod
    def from_config(
        cls, entries: Iterable[Mapping[str, Any]], builtin: bool = True
    ) -> SourceRegistry:
        """A registry of the built-in sources (unless `builtin` is false) plus `entries`, each
        {"key", "publisher", "open"?, "license"?, "hosts"?, "urls"?, "n_articles"?}. A licence
        may be given as a code or as free text / a licence URL, which is normalised."""
        registry = cls.builtin() if builtin else cls()
        allowed = {"key", "publisher", "open", "license", "hosts", "urls", "n_articles"}
        for entry in entries:
            unknown = set(entry) - allowed
            if unknown:
                raise ValueError(f"unknown fields {sorted(unknown)} in source {entry.get('key')!r}")
            lic = str(entry.get("license") or UNKNOWN)
            registry.register(
                GuidelineSource(
                    key=str(entry["key"]),
                    publisher=str(entry["publisher"]),
                    open=bool(entry.get("open", False)),
                    license=lic if lic in LICENSES else normalize_license(lic, lic),
                    hosts=tuple(h.lower().removeprefix("www.") for h in entry.get("hosts", ())),
                    urls=tuple(entry.get("urls", ())),
                    n_articles=entry.get("n_articles"),
                )
            )
        return registry

    def register(self, source: GuidelineSource) -> None:
        self._by_key[source.key] = source

    def get(self, key: str) -> GuidelineSource | None:
        return self._by_key.get(key)

    def license_for(self, key: str) -> str:
        source = self._by_key.get(key)
        return source.license if source is not None else UNKNOWN

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __iter__(self) -> Iterator[GuidelineSource]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def source_for_url(self, url: str) -> str | None:
        """The key of the source whose host (or a parent domain of it) serves `url`."""
        host = (urlsplit(url if "//" in url else f"//{url}").hostname or "").lower()
        best: tuple[int, str] | None = None
        for source in self._by_key.values():
            for h in source.hosts:
                if (host == h or host.endswith(f".{h}")) and (best is None or len(h) > best[0]):
                    best = (len(h), source.key)
        return best[1] if best else None

    def source_for_path(self, path: str, overrides: Mapping[str, str] | None = None) -> str | None:
        """The key for a local file: the first of `overrides` ({glob or path prefix: key})
        that matches the path or the file name, else a known key that the file name starts
        with, followed by "_", "-" or ".". None when nothing matches."""
        name = os.path.basename(path)
        for pattern, key in (overrides or {}).items():
            if (
                fnmatch.fnmatch(path, pattern)
                or fnmatch.fnmatch(name, pattern)
                or path.startswith(pattern)
            ):
                return key
        prefix = re.match(r"[a-z0-9]+", name.lower())
        if (
            prefix
            and prefix.group() in self._by_key
            and name[prefix.end() : prefix.end() + 1] in ("_", "-", ".")
        ):
            return prefix.group()
        return None


DEFAULT = SourceRegistry.builtin()


def register(source: GuidelineSource) -> None:
    """Add a source to the default registry (or replace the one with the same key)."""
    DEFAULT.register(source)


def source_for_url(url: str) -> str | None:
    return DEFAULT.source_for_url(url)


def source_for_path(path: str, overrides: Mapping[str, str] | None = None) -> str | None:
    return DEFAULT.source_for_path(path, overrides)
