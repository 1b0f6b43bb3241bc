"""corpus.tokenizer on the real tokenizer fixtures (Llama-2 SentencePiece, GPT-2 BPE files)
and real medical text (PubMedQA contexts, PMC articles in MediTron's marker markup)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from corpus.jats import parse_pmc_file
from corpus.tokenizer import (
    MARKERS,
    CorpusTokenizer,
    TokenizerConfig,
    _from_bytes_cached,
    build_tokenizer,
    load_tokenizer,
    train_bpe,
)
from tests.conftest import FIXTURES, REPO

LLAMA2 = FIXTURES / "tokenizers" / "llama2" / "tokenizer.model"
GPT2 = FIXTURES / "tokenizers" / "gpt2"
PUBMEDQA = FIXTURES / "qa_benchmarks" / "pubmedqa" / "ori_pqal.json"
PMC_FILES = [
    FIXTURES / "pmc_jats" / "s2orc_doc2json" / "PMC5828200.nxml",
    FIXTURES / "pmc_jats" / "s2orc_doc2json" / "PMC7417471.nxml",
    FIXTURES / "pmc_jats" / "sibils" / "3_Biotech" / "PMC3324826.xml",
]
BPE_VOCAB = 4096

# Hand-written edge cases: markers glued to words, at the ends, back to back; runs of
# spaces and newlines; accents, CJK, emoji, combining marks, control characters.
EDGE_TEXTS = [
    "x[bib_ref] y",
    "[bib_ref]x[/bib_ref]",
    " [fig] Figure 1: caption [/fig] ",
    "[table][/table][formula]x^2[/formula]",
    "word[fig_ref]Figure 2[/fig_ref]word",
    "  leading spaces and trailing   ",
    "\n\nnew\nlines\r\n\ttab\n",
    "Café résumé naïve Ångström — “quotes” ±5 °C µg",
    "肺炎 (pneumonia) 肺癌 とがん 폐렴",
    "emoji 🧬🦠💊 and ZWJ 👩‍⚕️ and flags 🇨🇭",
    "e\u0301 combining, nbsp\u00a0here, ideographic\u3000space, bom\ufeff",
    "\x00\x07 control \x1b[0m",
    "[bib] no close, [/bib] no open, [bib_ref incomplete, [[fig]]",
    "",
    " ",
]


def pubmedqa_texts(n: int) -> list[str]:
    data = json.loads(PUBMEDQA.read_text())
    docs = [" ".join(v["CONTEXTS"]) + "\n" + v["LONG_ANSWER"] for v in data.values()]
    return docs[:n]


@pytest.fixture(scope="module")
def pmc_paragraphs() -> list[str]:
    """Paragraphs of real PMC articles as the JATS parser writes them, with markers."""
    paras = []
    for path in PMC_FILES:
        (row,) = [r for r in parse_pmc_file(str(path)) if isinstance(r, dict)]
        paras += [p for p in row["body"].split("\n\n") if any(m in p for m in MARKERS)]
    assert len(paras) > 50
    return paras


@pytest.fixture(scope="module")
def sp() -> CorpusTokenizer:
    return build_tokenizer(TokenizerConfig(kind="sentencepiece", path=str(LLAMA2)))


@pytest.fixture(scope="module")
def gpt2() -> CorpusTokenizer:
    return build_tokenizer(TokenizerConfig(kind="huggingface", path=str(GPT2)))


@pytest.fixture(scope="module")
def bpe_texts() -> list[str]:
    return pubmedqa_texts(400)


@pytest.fixture(scope="module")
def bpe(bpe_texts: list[str]) -> CorpusTokenizer:
    return train_bpe(bpe_texts, TokenizerConfig(vocab_size=BPE_VOCAB))


# --- config -------------------------------------------------------------------------------


def test_config_defaults() -> None:
    config = TokenizerConfig()
    assert (config.kind, config.path, config.markers) == ("bpe", None, True)
    assert (config.vocab_size, config.min_frequency) == (8192, 2)


@pytest.mark.parametrize("kind", ["sentencepiece", "huggingface"])
def test_config_path_required(kind: str) -> None:
    with pytest.raises(ValidationError, match=rf"tokenizer\.path is required for kind '{kind}'"):
        TokenizerConfig(kind=kind)


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ValidationError, match="vocab_sise"):
        TokenizerConfig(vocab_sise=100)
    with pytest.raises(ValidationError, match=r"tokenizer\.vocab_size must be at least 270"):
        TokenizerConfig(vocab_size=100)
    with pytest.raises(ValidationError, match="min_frequency"):
        TokenizerConfig(min_frequency=0)
    with pytest.raises(ValidationError, match="kind"):
        TokenizerConfig(kind="wordpiece")


def test_build_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.path"):
        build_tokenizer(TokenizerConfig(kind="sentencepiece", path=str(tmp_path / "no.model")))
    with pytest.raises(FileNotFoundError, match=r"tokenizer\.path"):
        build_tokenizer(TokenizerConfig(kind="huggingface", path=str(tmp_path)))
    with pytest.raises(ValueError, match=r"tokenizer\.path.*train_bpe"):
        build_tokenizer(TokenizerConfig(kind="bpe"))
    with pytest.raises(ValueError, match="kind 'bpe'"):
        train_bpe(["text"], TokenizerConfig(kind="huggingface", path=str(GPT2)))


# --- SentencePiece, MediTron's layout ---------------------------------------------------


def test_sentencepiece_meditron_layout(sp: CorpusTokenizer) -> None:
    assert sp.kind == "sentencepiece"
    assert sp.name == "sentencepiece:tokenizer.model+meditron"
    assert sp.vocab_size == 32_017
    # Megatron-LLM's wrapper appends <CLS> <SEP> <EOD> <MASK> <PAD> first (Llama-2 has no
    # pad piece; <s> and </s> exist), then --vocab_extra_ids_list, i.e. the markers.
    assert sp.eod_id == 32_002
    assert {t: sp.added_tokens[t] for t in ("<CLS>", "<SEP>", "<EOD>", "<MASK>", "<PAD>")} == {
        "<CLS>": 32_000,
        "<SEP>": 32_001,
        "<EOD>": 32_002,
        "<MASK>": 32_003,
        "<PAD>": 32_004,
    }
    assert sp.marker_ids == {m: 32_005 + i for i, m in enumerate(MARKERS)}
    assert sp.encode_batch(list(MARKERS)) == [[32_005 + i] for i in range(12)]
    # No BOS (id 1), no EOD.
    (ids,) = sp.encode_batch(["Hello world"])
    assert ids == [15043, 3186]
    assert sp.decode([sp.eod_id, *sp.marker_ids.values()]) == "<EOD>" + "".join(MARKERS)


def test_sentencepiece_without_markers() -> None:
    tok = build_tokenizer(TokenizerConfig(kind="sentencepiece", path=str(LLAMA2), markers=False))
    assert (tok.vocab_size, tok.eod_id, tok.marker_ids) == (32_005, 32_002, {})
    assert tok.name == "sentencepiece:tokenizer.model"
    (ids,) = tok.encode_batch(["[bib_ref]"])
    assert len(ids) > 1 and max(ids) < 32_000


def megatron_llm_tokenize(sp_model, text: str, specials: dict[str, int]) -> list[int]:
    """Megatron-LLM's _SentencePieceTokenizer.tokenize, restricted to the markers: the text
    before the earliest marker is encoded on its own, then the marker id, and so on."""
    ids: list[int] = []
    idx = 0
    while True:
        found = {t: text.find(t, idx) for t in specials if text.find(t, idx) >= 0}
        if not found:
            break
        token = min(found, key=lambda t: found[t])
        ids += sp_model.encode(text[idx : found[token]])
        ids.append(specials[token])
        idx = found[token] + len(token)
    return ids + sp_model.encode(text[idx:])


def test_sentencepiece_matches_megatron_llm(sp: CorpusTokenizer, pmc_paragraphs: list[str]):
    import sentencepiece

    model = sentencepiece.SentencePieceProcessor(model_file=str(LLAMA2))
    texts = pmc_paragraphs + EDGE_TEXTS
    assert sp.encode_batch(texts) == [megatron_llm_tokenize(model, t, sp.marker_ids) for t in texts]


def test_sentencepiece_round_trip(sp: CorpusTokenizer, pmc_paragraphs: list[str]) -> None:
    texts = pmc_paragraphs + EDGE_TEXTS
    encoded = sp.encode_batch(texts)
    for text, ids in zip(texts, encoded, strict=True):
        assert sp.decode(ids) == text
    # A marker is one token however it is glued to its neighbours.
    (ids,) = sp.encode_batch(["x[bib_ref] y"])
    assert ids.count(sp.marker_ids["[bib_ref]"]) == 1
    assert sp.decode(ids) == "x[bib_ref] y"


def test_sentencepiece_documented_non_round_trip(sp: CorpusTokenizer) -> None:
    # U+2581 is SentencePiece's own space symbol: it comes back as a space (module doc).
    (ids,) = sp.encode_batch(["a\u2581b"])
    assert sp.decode(ids) == "a b"


def test_special_strings_in_text_are_plain_text(sp, gpt2) -> None:
    text = "see <EOD> and <|endoftext|> and </s> <s> <PAD>"
    for tok in (sp, gpt2):
        (ids,) = tok.encode_batch([text])
        assert tok.eod_id not in ids
        assert tok.decode(ids) == text
    # ... while the markers are recognised in the same text.
    (ids,) = gpt2.encode_batch([text + "[fig]"])
    assert ids[-1] == gpt2.marker_ids["[fig]"]
    assert gpt2.decode(ids) == text + "[fig]"


# --- Hugging Face (GPT-2 files) -----------------------------------------------------------


def test_gpt2_from_encoder_json(gpt2: CorpusTokenizer) -> None:
    assert gpt2.kind == "huggingface"
    assert gpt2.name == "huggingface:gpt2+meditron"
    assert gpt2.eod_id == 50_256
    assert gpt2.eod_token == "<|endoftext|>"
    assert gpt2.vocab_size == 50_269
    assert gpt2.marker_ids == {m: 50_257 + i for i, m in enumerate(MARKERS)}
    # GPT-2's well-known ids: "Hello world" = [15496, 995], " Hello" = 18435.
    assert gpt2.encode_batch(["Hello world", " Hello"]) == [[15496, 995], [18435]]
    (ids,) = gpt2.encode_batch(["x[bib_ref] y"])
    assert ids == [87, 50_257, 331]


def test_gpt2_round_trip(gpt2: CorpusTokenizer, pmc_paragraphs: list[str]) -> None:
    texts = pmc_paragraphs + EDGE_TEXTS
    for text, ids in zip(texts, gpt2.encode_batch(texts), strict=True):
        assert gpt2.decode(ids) == text


def test_huggingface_without_eos_gets_endoftext(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"a": 0, "b": 1, "ab": 2}
    hf = Tokenizer(models.BPE(vocab=vocab, merges=[("a", "b")]))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    hf.save(str(tmp_path / "tokenizer.json"))
    tok = build_tokenizer(
        TokenizerConfig(kind="huggingface", path=str(tmp_path / "tokenizer.json"))
    )
    assert tok.eod_token == "<|endoftext|>"
    assert tok.eod_id == 3
    assert tok.vocab_size == 3 + 1 + 12
    assert tok.encode_batch(["ab[fig]"]) == [[2, tok.marker_ids["[fig]"]]]


# --- trained byte-level BPE ---------------------------------------------------------------


def test_bpe_layout(bpe: CorpusTokenizer) -> None:
    assert bpe.kind == "bpe"
    assert bpe.name == f"bpe:{BPE_VOCAB}+meditron"
    assert bpe.vocab_size == BPE_VOCAB
    assert bpe.eod_id == 0
    assert bpe.marker_ids == {m: 1 + i for i, m in enumerate(MARKERS)}
    assert bpe.encode_batch(list(MARKERS)) == [[1 + i] for i in range(12)]
    # Medical text compresses: far fewer tokens than bytes.
    text = pubmedqa_texts(450)[-1]
    (ids,) = bpe.encode_batch([text])
    assert len(ids) < len(text.encode()) / 3


def test_bpe_round_trip_any_unicode(bpe: CorpusTokenizer, pmc_paragraphs: list[str]) -> None:
    rng = random.Random(1794)
    alphabet = list("ab z.,;-()[]/_\n\t  ") + list(MARKERS) + ["é", "世", "🙂", "\u2581", "\x00"]
    fuzz = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(300)]
    fuzz += ["".join(chr(rng.randint(1, 0x2FFFF)) for _ in range(20)) for _ in range(100)]
    fuzz = [t.encode("utf-8", "replace").decode() for t in fuzz]  # drop lone surrogates
    texts = EDGE_TEXTS + pmc_paragraphs + fuzz
    for text, ids in zip(texts, bpe.encode_batch(texts), strict=True):
        assert bpe.decode(ids) == text
    (ids,) = bpe.encode_batch(["x[bib_ref] y"])
    assert ids[1] == bpe.marker_ids["[bib_ref]"]


def serialized(tok: CorpusTokenizer) -> str:
    return tok.hf_tokenizer.to_str()


def test_bpe_training_is_deterministic(bpe: CorpusTokenizer, bpe_texts: list[str]) -> None:
    config = TokenizerConfig(vocab_size=BPE_VOCAB)
    again = train_bpe(iter(bpe_texts), config)
    assert serialized(again) == serialized(bpe)
    assert again.fingerprint == bpe.fingerprint
    # The order in which texts arrive (Spark partitions) does not change the result either.
    shuffled = bpe_texts[:]
    random.Random(0).shuffle(shuffled)
    assert serialized(train_bpe(shuffled, config)) == serialized(bpe)


def test_bpe_training_is_deterministic_across_processes(bpe: CorpusTokenizer) -> None:
    script = (
        "import hashlib; from corpus.tokenizer import TokenizerConfig, train_bpe; "
        "from tests.test_tokenizer import pubmedqa_texts, BPE_VOCAB; "
        "t = train_bpe(pubmedqa_texts(400), TokenizerConfig(vocab_size=BPE_VOCAB)); "
        "print(hashlib.sha256(t.hf_tokenizer.to_str().encode()).hexdigest(), t.fingerprint)"
    )
    # Another hash seed, and one rayon thread where this process uses the default pool.
    env = {**os.environ, "PYTHONHASHSEED": "12345", "RAYON_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    digest, fingerprint = out.stdout.split()
    assert digest == hashlib.sha256(serialized(bpe).encode()).hexdigest()
    assert fingerprint == bpe.fingerprint


# --- Hugging Face export ------------------------------------------------------------------


@pytest.mark.parametrize("which", ["bpe", "gpt2"])
def test_transformers_loads_saved_tokenizer_json(which, bpe, gpt2, tmp_path, pmc_paragraphs):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tok = {"bpe": bpe, "gpt2": gpt2}[which]
    tok.save(tmp_path)
    fast = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
    texts = pmc_paragraphs[:40] + EDGE_TEXTS + list(MARKERS)
    assert fast(texts)["input_ids"] == tok.encode_batch(texts)
    assert len(fast) == tok.vocab_size
    auto = AutoTokenizer.from_pretrained(str(tmp_path))
    assert auto.eos_token_id == tok.eod_id
    ids = tok.encode_batch([pmc_paragraphs[0]])[0]
    assert auto.decode(ids) == pmc_paragraphs[0]


# --- serialization ------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["sp", "gpt2", "bpe"])
def test_to_bytes_from_bytes_and_pickle(which, sp, gpt2, bpe, pmc_paragraphs) -> None:
    tok = {"sp": sp, "gpt2": gpt2, "bpe": bpe}[which]
    texts = pmc_paragraphs[:30] + EDGE_TEXTS
    expected = tok.encode_batch(texts)
    data = tok.to_bytes()
    _from_bytes_cached.cache_clear()
    copy = CorpusTokenizer.from_bytes(data)
    assert copy is not tok
    assert copy.encode_batch(texts) == expected
    assert (copy.name, copy.vocab_size, copy.eod_id, copy.fingerprint) == (
        tok.name,
        tok.vocab_size,
        tok.eod_id,
        tok.fingerprint,
    )
    assert copy.to_bytes() == data
    assert CorpusTokenizer.from_bytes(data) is copy  # one build per broadcast value
    assert pickle.loads(pickle.dumps(tok)).encode_batch(texts) == expected


def test_from_bytes_needs_no_files(tmp_path: Path) -> None:
    model = tmp_path / "tokenizer.model"
    shutil.copy(LLAMA2, model)
    tok = build_tokenizer(TokenizerConfig(kind="sentencepiece", path=str(model)))
    data = tok.to_bytes()
    model.unlink()
    _from_bytes_cached.cache_clear()
    copy = CorpusTokenizer.from_bytes(data)
    assert copy.encode_batch(["[fig] Figure 1 [/fig]"]) == tok.encode_batch(
        ["[fig] Figure 1 [/fig]"]
    )
    with pytest.raises(ValueError, match="magic"):
        CorpusTokenizer.from_bytes(b"not a tokenizer")


@pytest.mark.parametrize("which", ["sp", "gpt2", "bpe"])
def test_save_and_load(which, sp, gpt2, bpe, tmp_path, pmc_paragraphs) -> None:
    tok = {"sp": sp, "gpt2": gpt2, "bpe": bpe}[which]
    written = tok.save(tmp_path / "tok")
    meta = json.loads((tmp_path / "tok" / "tokenizer_meta.json").read_text())
    assert sorted(Path(p).name for p in written) == sorted([*meta["files"], "tokenizer_meta.json"])
    assert all(Path(p).is_file() for p in written)
    assert {k: meta[k] for k in ("kind", "name", "vocab_size", "eod_id", "markers")} == {
        "kind": tok.kind,
        "name": tok.name,
        "vocab_size": tok.vocab_size,
        "eod_id": tok.eod_id,
        "markers": True,
    }
    assert meta["fingerprint"] == tok.fingerprint
    assert {a["content"]: a["id"] for a in meta["added_tokens"]} == tok.added_tokens
    if which == "sp":
        assert meta["files"] == ["tokenizer.model"]
        assert (tmp_path / "tok" / "tokenizer.model").read_bytes() == LLAMA2.read_bytes()
        assert len(meta["added_tokens"]) == 17
    else:
        assert "tokenizer.json" in meta["files"]

    loaded = load_tokenizer(tmp_path / "tok")
    texts = pmc_paragraphs[:30] + EDGE_TEXTS
    assert loaded.encode_batch(texts) == tok.encode_batch(texts)
    assert (loaded.name, loaded.fingerprint, loaded.eod_id) == (
        tok.name,
        tok.fingerprint,
        tok.eod_id,
    )


def test_load_rejects_changed_files(bpe: CorpusTokenizer, gpt2, tmp_path: Path) -> None:
    bpe.save(tmp_path / "a")
    gpt2.save(tmp_path / "b")
    shutil.copy(tmp_path / "b" / "tokenizer.json", tmp_path / "a" / "tokenizer.json")
    with pytest.raises(ValueError, match="fingerprint"):
        load_tokenizer(tmp_path / "a")


def test_saved_bpe_loads_through_config(bpe: CorpusTokenizer, tmp_path: Path) -> None:
    bpe.save(tmp_path)
    texts = EDGE_TEXTS + pubmedqa_texts(3)
    via_bpe = build_tokenizer(TokenizerConfig(kind="bpe", path=str(tmp_path)))
    assert via_bpe.fingerprint == bpe.fingerprint
    # The same tokenizer.json read as a plain HF tokenizer gives the same ids and EOD.
    via_hf = build_tokenizer(TokenizerConfig(kind="huggingface", path=str(tmp_path)))
    assert via_hf.eod_id == bpe.eod_id
    assert via_hf.encode_batch(texts) == bpe.encode_batch(texts)
    with pytest.raises(ValueError, match="markers=False"):
        build_tokenizer(TokenizerConfig(kind="bpe", path=str(tmp_path), markers=False))


def test_fingerprint_stable_across_processes(sp, gpt2) -> None:
    script = (
        "from corpus.tokenizer import TokenizerConfig, build_tokenizer; "
        f"print(build_tokenizer(TokenizerConfig(kind='sentencepiece', path={str(LLAMA2)!r}))"
        ".fingerprint); "
        f"print(build_tokenizer(TokenizerConfig(kind='huggingface', path={str(GPT2)!r}))"
        ".fingerprint)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "777"}
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [sp.fingerprint, gpt2.fingerprint]
    assert len({sp.fingerprint, gpt2.fingerprint}) == 2
    # markers change the ids, so they change the fingerprint.
    plain = build_tokenizer(TokenizerConfig(kind="sentencepiece", path=str(LLAMA2), markers=False))
    assert plain.fingerprint != sp.fingerprint


def test_decode_accepts_numpy(sp, bpe) -> None:
    for tok in (sp, bpe):
        (ids,) = tok.encode_batch(["[bib_ref] Smith 2020 [/bib_ref] ok"])
        arr = np.asarray([*ids, tok.eod_id], dtype=np.int32)
        assert tok.decode(arr) == "[bib_ref] Smith 2020 [/bib_ref] ok" + tok.eod_token
    with pytest.raises(ValueError, match="out of range"):
        sp.decode([sp.vocab_size])
