"""Unicode clean-up shared by every cleaned text: mojibake repaired where unambiguous, NFC,
control and invisible characters removed, one kind of newline, no trailing spaces.

Mojibake is repaired by ftfy with only its encoding fixes switched on (UTF-8 read as
Windows-1252 or Latin-1, C1 controls standing for Windows-1252 punctuation, Latin ligatures
split into letters): ftfy leaves text alone unless a reading is clearly more plausible, so
correct accented text ("São Paulo", "Größe", "NÃO") stays as it is. HTML entities are not
unescaped (the bronze parsers already decoded markup; a literal "&amp;" in plain text stays),
quotes stay curly and full-width forms stay full-width (CJK text uses them).
"""

from __future__ import annotations

import re
import unicodedata

import ftfy
from pydantic import BaseModel, ConfigDict

_FTFY = ftfy.TextFixerConfig(
    unescape_html=False,
    remove_terminal_escapes=True,
    fix_encoding=True,
    restore_byte_a0=True,
    # Turning a damaged sequence into U+FFFD loses characters: not conservative.
    replace_lossy_sequences=False,
    decode_inconsistent_utf8=True,
    fix_c1_controls=True,
    # PDF text has "ﬁ"/"ﬂ" ligatures that split words for a tokenizer; NFC keeps them.
    fix_latin_ligatures=True,
    fix_character_width=False,
    uncurl_quotes=False,
    fix_line_breaks=False,
    fix_surrogates=True,
    remove_control_chars=False,
    normalization="NFC",
    explain=False,
)
# C0/C1 controls except \t and \n, lone surrogates, and invisible characters that only
# break words apart (soft hyphen, zero-width space, word joiner, byte-order mark).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u00ad\u200b\u2060\ufeff]")
# Not U+0085: in text read as Latin-1 it is Windows-1252's "…", which ftfy restores.
_NEWLINES = re.compile(r"\r\n?|[\x0b\x0c\u2028\u2029]")
# No-break, thin, figure and other fixed-width spaces; the ideographic space stays (CJK).
_SPACES = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f]")
_TRAILING = re.compile(r"[ \t]+$", re.M)


class NormalizeConfig(BaseModel):
    """Switches of normalize_text."""

    model_config = ConfigDict(extra="forbid")

    fix_mojibake: bool = True
    # Blank lines allowed in a row; longer runs are shortened to this.
    max_blank_lines: int = 1


DEFAULT_NORMALIZE = NormalizeConfig()


def normalize_text(text: str, config: NormalizeConfig = DEFAULT_NORMALIZE) -> str:
    """`text` repaired and normalised; normalising the result again changes nothing."""
    text = _NEWLINES.sub("\n", text)
    # ASCII text can hold no mojibake, and skipping ftfy for it saves most of its cost.
    ascii_only = text.isascii()
    if config.fix_mojibake and not ascii_only:
        text = ftfy.fix_text(text, _FTFY)
    text = _CONTROL.sub("", text)
    if not ascii_only:
        text = unicodedata.normalize("NFC", _SPACES.sub(" ", text))
    text = _TRAILING.sub("", text)
    keep = config.max_blank_lines + 1
    text = re.sub(rf"\n{{{keep + 1},}}", "\n" * keep, text)
    return text.strip("\n")


def normalize_texts(
    texts: list[str | None], config: NormalizeConfig = DEFAULT_NORMALIZE
) -> list[str | None]:
    """normalize_text over a batch; None stays None."""
    return [None if t is None else normalize_text(t, config) for t in texts]
