"""Personal data masked in replay and guideline text: e-mail addresses as <EMAIL>, phone
numbers as <PHONE>, IPv4 and IPv6 addresses as <IP_ADDRESS>.

Phone numbers are recognised by their shape only where the shape is specific: a "+" and a
country code with 8 to 15 digits in all ("+41 21 693 11 11", "+44 (0)20 7946 0958"); the
North American 3-3-4 grouping ("(555) 123-4567", "1-800-232-4636", "555.123.4567"); a UK
number starting with 0 written in groups ("020 7946 0958", "07700 900123"); or any 7 to 15
digits in groups after a label ("Tel:", "phone", "fax", "call"...). Ungrouped digit runs are
never phones (accession numbers, PMIDs, trial ids are), and neither is anything inside a
DOI, an ISBN/ISSN or a PMID/PMCID. Numbers of clinical text ("1.73 m2", "95% CI 0.88 to
1.36", "2020-11-27", "120/80 mmHg", page ranges) fit none of these shapes.

A dotted quad is an IPv4 address unless all four parts are single digits or a word such as
"section", "version" or "table" stands before it (guideline section numbers "4.6.1.2").
IPv6 candidates are checked with the ipaddress module and need a digit and two groups.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["email", "phone", "ip_address"]
KINDS: tuple[Kind, ...] = ("email", "phone", "ip_address")
_MASKS = {"email": "<EMAIL>", "phone": "<PHONE>", "ip_address": "<IP_ADDRESS>"}

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}(?![\w-])"
)
# Spans whose digits are identifiers, never phone numbers.
_PROTECTED = re.compile(
    r"\b10\.\d{4,9}/\S+|\bhttps?://\S+"
    r"|\b(?:ISBN|ISSN|PMID|PMCID|NCT|DOI)(?:-1[03])?[:\s]*[\dX][\dX \-]*",
    re.I,
)
_SEP = r"[ .\-\u2010-\u2013]"
# (pattern, fewest digits, most digits): the digits of the number (group 1 where there is
# one) are counted. Each pattern is wrapped so that no digit, letter, "+" or "/" touches it.
_PHONES = (
    # international: + country code, groups of digits, an optional "(0)"
    (rf"\+\d{{1,3}}(?:{_SEP}?\(0\))?(?:{_SEP}?\(?\d{{1,5}}\)?){{2,6}}", 8, 15),
    # North American: optional 1, area code (in brackets or not), 3 digits, 4 digits
    (rf"(?:1{_SEP})?(?:\(\d{{3}}\) ?|\d{{3}}{_SEP})\d{{3}}{_SEP}\d{{4}}", 10, 11),
    # UK national: 0 and the area code (00 is the international prefix), then one or two groups
    (r"\(?0[1-9]\d{1,3}\)?[ -]\d{3,7}(?:[ -]\d{3,4})?", 10, 11),
    # anything grouped after a label; only the number is masked
    (
        r"(?i:\b(?:tel(?:ephone)?|phone|fax|mobile|cell|call|hotline)\b\.?:?[ \t]*(?:no\.?[ \t]*)?)"
        rf"(\+?\(?\d[\d()]*(?:{_SEP}?\(?\d+\)?)*)",
        7,
        15,
    ),
)
_PHONE_PATTERNS = tuple(
    (re.compile(rf"(?<![\w+/.,-])(?:{p})(?![\w/-]|[.,]\d)"), fewest, most)
    for p, fewest, most in _PHONES
)
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.])({_OCTET})\.({_OCTET})\.({_OCTET})\.({_OCTET})(?![\w]|\.\d)")
_NOT_AN_IP_BEFORE = re.compile(
    r"(?<!\w)(?:section|chapter|table|figure|fig|version|ver|release|annex|appendix|step|v|§)"
    r"\.?\s*$",
    re.I,
)
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|:|[\d.]{7,15})(?![\w:])"
)


class PiiConfig(BaseModel):
    """Which kinds of personal data are masked."""

    model_config = ConfigDict(extra="forbid")

    kinds: list[Kind] = Field(default_factory=lambda: list(KINDS))


DEFAULT_PII = PiiConfig()


def mask_pii(text: str, config: PiiConfig = DEFAULT_PII) -> tuple[str, dict[str, int]]:
    """`text` with personal data masked, and how many of each kind were masked."""
    counts = dict.fromkeys(KINDS, 0)
    if "email" in config.kinds:
        text, counts["email"] = _EMAIL.subn(_MASKS["email"], text)
    if "ip_address" in config.kinds:
        text, counts["ip_address"] = _mask_ips(text)
    if "phone" in config.kinds:
        text, counts["phone"] = _mask_phones(text)
    return text, counts


def mask_pii_batch(
    texts: list[str | None], config: PiiConfig = DEFAULT_PII
) -> list[tuple[str | None, dict[str, int]]]:
    """mask_pii over a batch; None stays None with zero counts."""
    return [
        mask_pii(t, config) if t is not None else (None, dict.fromkeys(KINDS, 0)) for t in texts
    ]


def _mask_ips(text: str) -> tuple[str, int]:
    n = 0

    def v4(m: re.Match[str]) -> str:
        nonlocal n
        if all(len(part) == 1 for part in m.groups()) or _NOT_AN_IP_BEFORE.search(
            text[max(0, m.start() - 12) : m.start()]
        ):
            return m.group()
        n += 1
        return _MASKS["ip_address"]

    def v6(m: re.Match[str]) -> str:
        nonlocal n
        candidate = m.group()
        groups = [g for g in candidate.split(":") if g]
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            return candidate
        if len(groups) < 2 or not any(c.isdigit() for c in candidate):
            return candidate
        n += 1
        return _MASKS["ip_address"]

    text = _IPV4.sub(v4, text)
    if ":" in text:
        text = _IPV6.sub(v6, text)
    return text, n


def _mask_phones(text: str) -> tuple[str, int]:
    protected = [m.span() for m in _PROTECTED.finditer(text)]
    spans: set[tuple[int, int]] = set()
    for pattern, fewest, most in _PHONE_PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span(m.lastindex or 0)
            if fewest <= sum(c.isdigit() for c in text[start:end]) <= most:
                spans.add((start, end))
    out, last, n = [], 0, 0
    # The longest of the numbers that start at one place wins; overlapping later ones lose.
    for start, end in sorted(spans, key=lambda span: (span[0], -span[1])):
        if start < last or any(s < end and start < e for s, e in protected):
            continue
        out.append(text[last:start])
        out.append(_MASKS["phone"])
        last, n = end, n + 1
    out.append(text[last:])
    return "".join(out), n
