"""Reading an answer out of generated text, and the self-consistency vote.

`parse_answer` looks for answer statements ("The answer is (C) Metformin", "answer: maybe",
"Final answer: C.") and reads, right after the last one that holds a valid answer:

- an option letter, upper case only and standing alone ("C", "(C)", "C.", "option C"):
  a lower-case "a" is the article, which MediTron's evaluator read as option A;
- yes / no / maybe, where those are the options (PubMedQA: "maybe" is valid);
- an option's text ("The answer is: Metformin"), when exactly one option's text starts it.

Without an answer statement, the whole text must be a bare answer ("C", "(C)",
"C. Metformin", "Metformin", "Maybe."); anything else is unparseable (None), never a
guess. A letter that is not one of the item's options is unparseable too.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence

__all__ = ["majority_vote", "parse_answer"]

# "answer" then optionally "is"/"was"/"would be", then optional ":"; the answer follows.
_STATEMENT = re.compile(
    r"\banswer\b(?:\s+(?:is|was|would\s+be|should\s+be))?\s*[:：]?", re.IGNORECASE
)
_DECORATION = " \t*_\"'`"
_LETTER = re.compile(
    r"(?:(?:option|choice)\s+)?\(?([A-Z])\)?(?=$|[\s.,;:!)\]*_\"'])", re.IGNORECASE
)
_WORD = re.compile(r"[a-z]+")


def parse_answer(text: str, options: Mapping[str, str]) -> str | None:
    """The option label `text` answers, or None when it states no valid answer."""
    for match in reversed(list(_STATEMENT.finditer(text))):
        found = _read(text[match.end() :], options)
        if found is not None:
            return found
    return _bare(text, options)


def majority_vote(answers: Sequence[str | None]) -> str | None:
    """The most frequent parseable answer; unparseable samples (None) cast no vote. A tie
    goes to the answer reached first, so the vote does not depend on label order."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(a for a in answers if a is not None and counts[a] == top)


def _read(span: str, options: Mapping[str, str]) -> str | None:
    """An answer at the start of `span`."""
    span = span.lstrip(_DECORATION + "\n")
    letter = _LETTER.match(span)
    # The letter itself must be upper case ("option c" is not read, nor "a" the article).
    if letter and letter[1].isupper() and _is_letter_options(options):
        return letter[1] if letter[1] in options else None
    word = _WORD.match(span.lower())
    if word and word[0] in options and not _is_letter_options(options):
        return word[0]
    return _by_text(span, options, whole=False)


def _bare(text: str, options: Mapping[str, str]) -> str | None:
    """`text` as a whole is an answer: a label, or a label then its text, or a text."""
    body = text.strip(_DECORATION + "\n").rstrip(".").strip(_DECORATION)
    if not body or "\n" in body:
        return None
    if _is_letter_options(options):
        letter = _LETTER.match(body)
        if letter and letter[1].isupper():
            rest = body[letter.end() :].lstrip(".):").strip()
            label = letter[1]
            if label in options and (not rest or _norm(rest) == _norm(options[label])):
                return label
            if label in options or not rest:
                return None
    elif _norm(body) in options:
        return _norm(body)
    return _by_text(body, options, whole=True)


def _by_text(span: str, options: Mapping[str, str], whole: bool) -> str | None:
    """The one option whose text is `span` (whole) or starts it; the longest wins when one
    option's text begins another's ("Insulin" / "Insulin glargine")."""
    said = _norm(span)
    hits = [
        (len(norm), label)
        for label, text in options.items()
        if (norm := _norm(text))
        and (said == norm if whole else (said == norm or said.startswith(norm + " ")))
    ]
    if not hits:
        return None
    hits.sort(reverse=True)
    if len(hits) > 1 and hits[0][0] == hits[1][0]:
        return None  # two options with the same text: ambiguous
    return hits[0][1]


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _is_letter_options(options: Mapping[str, str]) -> bool:
    return all(len(label) == 1 and label.isupper() for label in options)
