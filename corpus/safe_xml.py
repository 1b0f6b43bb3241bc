"""One hardened lxml parser configuration for all untrusted XML (XXE, billion laughs)."""

from __future__ import annotations

from lxml import etree


def safe_parser() -> etree.XMLParser:
    """A parser that never resolves entities, loads a DTD or touches the network.

    Undeclared entity references (the payload of XXE and billion-laughs files, whose
    declarations live in a DOCTYPE the record splitter never hands over) are parse errors.
    """
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


def element_text(el: etree._Element | None) -> str | None:
    """All text inside an element (inline markup such as <i> or <sup> keeps its text),
    with XML layout whitespace collapsed; None when the element is absent or empty."""
    if el is None:
        return None
    # Most elements have no inline markup: .text avoids building an iterator.
    raw = el.text if len(el) == 0 else "".join(el.itertext())
    if not raw:
        return None
    text = " ".join(raw.split())
    return text or None
