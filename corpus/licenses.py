"""Free licence statements and URLs mapped to a short list of licence codes.

Generic: used for PMC articles, and for any source whose licence is given as text or a URL.
"""

from __future__ import annotations

import re

CC0 = "cc0"
PUBLIC_DOMAIN = "public-domain"
UNKNOWN = "unknown"
LICENSES = (
    CC0,
    PUBLIC_DOMAIN,
    "cc-by",
    "cc-by-sa",
    "cc-by-nd",
    "cc-by-nc",
    "cc-by-nc-sa",
    "cc-by-nc-nd",
    UNKNOWN,
)
# The licences of PMC's "commercial use" OA subset: NoDerivatives still allows commercial use.
COMMERCIAL_OK = frozenset({CC0, PUBLIC_DOMAIN, "cc-by", "cc-by-sa", "cc-by-nd"})

_CC_URL = re.compile(r"creativecommons\.org/(licenses|publicdomain)/([a-z-]+)")
# Each alternative marks where a licence is named; the earliest one in a text wins, because
# statements such as BMC's name the article licence first and a CC0 waiver for data after it.
_MENTION = re.compile(
    r"(?P<url>creativecommons\.org/(?:licenses|publicdomain)/[a-z-]+)"
    r"|(?P<zero>\bcc[\s-]?0\b|\bcc[\s-]zero\b|creative\s+commons\s+zero)"
    r"|(?P<short>\bcc[\s-]?by(?P<short_q>(?:[\s-]+(?:nc|nd|sa)\b)*))"
    # "Creative Commons Attribution-NonCommercial 4.0 International License": the words
    # between "Attribution" and "Licence" (or a clause break) qualify it.
    r"|(?P<long>creative\s+commons\s+(?:licen[cs]e\s*:?\s*)?(?:\(cc\)\s*)?attribution"
    r"(?P<long_q>[^(),;]{0,80}?)(?=licen[cs]e|[(),;]|\bwhich\b|$))"
    r"|(?P<pd>\bpublic\s+domain\b|not\s+subject\s+to\s+copyright)"
)
_NC = re.compile(r"non[\s-]?commercial|\bnc\b")
_ND = re.compile(r"no[\s-]?deriv|\bnd\b")
_SA = re.compile(r"share[\s-]?alike|\bsa\b")
# From freest to most restrictive, for choosing between two statements about one work.
_RANK = {code: i for i, code in enumerate(LICENSES)}


def normalize_license(text: str | None, url: str | None = None) -> str:
    """One of LICENSES for a licence URL and/or free text; the URL wins when it is a
    Creative Commons one. Anything not clearly an open licence is "unknown"."""
    if url:
        code = _from_mention(url.lower())
        if code != UNKNOWN:
            return code
    if text:
        return _from_mention(" ".join(text.lower().split()))
    return UNKNOWN


def more_restrictive(a: str, b: str) -> str:
    """The stricter of two known licence codes; an "unknown" side gives way to the other."""
    if a == UNKNOWN:
        return b
    if b == UNKNOWN:
        return a
    return a if _RANK[a] >= _RANK[b] else b


def _from_mention(text: str) -> str:
    m = _MENTION.search(text)
    if m is None:
        return UNKNOWN
    if m.group("url"):
        return _from_url(m.group("url"))
    if m.group("zero"):
        return CC0
    if m.group("pd"):
        return PUBLIC_DOMAIN
    qualifiers = m.group("short_q") if m.group("short") else m.group("long_q")
    return _cc_code(qualifiers or "")


def _from_url(url: str) -> str:
    m = _CC_URL.search(url)
    if m is None:
        return UNKNOWN
    kind, name = m.groups()
    if kind == "publicdomain":
        return CC0 if name == "zero" else PUBLIC_DOMAIN
    if not name.startswith("by"):
        return UNKNOWN
    return _cc_code(name[2:])


def _cc_code(qualifiers: str) -> str:
    nc, nd, sa = (bool(p.search(qualifiers)) for p in (_NC, _ND, _SA))
    code = "cc-by" + ("-nc" if nc else "")
    if nd:
        return code + "-nd"
    return code + ("-sa" if sa else "")
