"""The one place that loads and trains tokenizers: for the Spark tokenizing job (Arrow
batches in executors), the Megatron shard writer, the training layer and the HF export.

Three kinds, all behind `CorpusTokenizer`:

- ``sentencepiece``: MediTron's layout, faithful to Megatron-LLM's `_SentencePieceTokenizer`
  (epfLLM/Megatron-LLM, megatron/tokenizer/tokenizer.py) run with
  ``--vocab_extra_ids_list "[bib_ref],...,[/formula]"``: the model's pieces (Llama-2: 32,000),
  then the specials that wrapper appends, in its order ``<CLS> <SEP> <EOD> <MASK> <PAD>``
  (ids 32000-32004 for Llama-2; a model's own pad/bos/eos pieces are reused, missing ones
  appended as the wrapper does), then the 12 markers (32005-32016): 32,017 in all.
  (The wrapper's code appends the specials before the extra ids, so EOD is 32002, not 32016;
  we follow the code so ids match MediTron's checkpoints.) Each marker then costs one more
  piece than it seems: the text after it starts with a space, which SentencePiece's dummy
  prefix turns into a lone "▁" (29871), exactly as in MediTron's data.
  No BOS is added. Marker strings in the text become their single ids, every other part of
  the text is encoded by SentencePiece on its own, dummy prefix included, exactly as the
  wrapper does.
- ``huggingface``: any `tokenizers` tokenizer (a tokenizer.json, or a directory holding one,
  or GPT-2's encoder.json + vocab.bpe); markers added as special tokens.
- ``bpe``: a byte-level BPE trained here by `train_bpe`, deterministic (see there).

Only the 12 markers are recognised in a document's text. Other special strings that may
occur in real text (``<|endoftext|>``, ``</s>``, ``<EOD>``, ``<s>``) are encoded as plain
text, so a document can never inject a document boundary; the shard writer appends
`eod_id` itself. (Megatron-LLM's wrapper also maps a literal ``<EOD>``/``<s>`` in the text
to the special id; we deliberately do not.)

Round trips, ``decode(encode_batch([t])[0]) == t``:

- bpe and byte-level huggingface kinds: exact for any valid Unicode text.
- sentencepiece (Llama-2: identity normaliser, byte fallback, dummy prefix): exact except
  where the text contains U+2581 (LOWER ONE EIGHTH BLOCK, SentencePiece's space symbol),
  which decodes as a space. The dummy prefix that SentencePiece adds at the start of each
  text piece between markers is removed again because `decode` decodes the same pieces
  separately.
- Text must be valid Unicode: a lone surrogate cannot be encoded by either library.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MARKERS: tuple[str, ...] = (
    "[bib_ref]",
    "[/bib_ref]",
    "[fig_ref]",
    "[/fig_ref]",
    "[bib]",
    "[/bib]",
    "[fig]",
    "[/fig]",
    "[table]",
    "[/table]",
    "[formula]",
    "[/formula]",
)
# Megatron-LLM's SentencePiece wrapper appends these, in this order, before the extra ids.
MEGATRON_SP_SPECIALS: tuple[str, ...] = ("<CLS>", "<SEP>", "<EOD>", "<MASK>", "<PAD>")
BPE_EOD = "<|endoftext|>"
META_FILE = "tokenizer_meta.json"
HF_TOKENIZER_FILE = "tokenizer.json"
SP_MODEL_FILE = "tokenizer.model"

_FORMAT_VERSION = 1
_BYTES_MAGIC = b"GAPREPLAY-TOKENIZER\x01"
# Marker regex with a group, so re.split keeps the markers; no marker is a prefix of
# another one up to its closing bracket, so alternation order does not matter.
_MARKER_RE = re.compile("(" + "|".join(re.escape(m) for m in MARKERS) + ")")
# End-of-text names tried, in order, when a HF tokenizer's config names no eos token.
_EOS_CANDIDATES = ("<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>")
# The byte alphabet (256) plus the EOD and the markers must fit below vocab_size.
_MIN_BPE_VOCAB = 256 + 1 + len(MARKERS) + 1


class TokenizerConfig(BaseModel):
    """Which tokenizer to use. `path` is the SentencePiece .model file (or a directory
    holding tokenizer.model), the HF tokenizer directory or tokenizer.json, or for kind
    bpe an optional directory written by `CorpusTokenizer.save`. `vocab_size` and
    `min_frequency` are used only by `train_bpe`."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["sentencepiece", "huggingface", "bpe"] = "bpe"
    path: str | None = None
    markers: bool = True
    vocab_size: int = Field(8192, le=2**31 - 1)
    min_frequency: int = Field(2, ge=1)

    @model_validator(mode="after")
    def _check(self) -> TokenizerConfig:
        if self.kind in ("sentencepiece", "huggingface") and not self.path:
            what = (
                "the SentencePiece .model file"
                if self.kind == "sentencepiece"
                else "a HF tokenizer directory or tokenizer.json"
            )
            raise ValueError(f"tokenizer.path is required for kind {self.kind!r}: {what}")
        if self.vocab_size < _MIN_BPE_VOCAB:
            raise ValueError(
                f"tokenizer.vocab_size must be at least {_MIN_BPE_VOCAB} (256 bytes, EOD and "
                f"the markers, plus one merge), got {self.vocab_size}"
            )
        return self


class CorpusTokenizer:
    """A loaded tokenizer. `encode_batch` never adds BOS or EOD; `eod_id` is what the shard
    writer appends after each document; `vocab_size` (max id + 1) sizes the embeddings and
    picks the token dtype. Immutable once built, so instances may be shared."""

    kind: str
    name: str
    markers: bool
    vocab_size: int
    eod_id: int
    eod_token: str
    # Tokens this layer adds or relies on (EOD, markers, Megatron specials) -> id.
    added_tokens: dict[str, int]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, no BOS and no EOD."""
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        """Text of `ids`, markers and other added tokens written as their strings."""
        raise NotImplementedError

    @property
    def marker_ids(self) -> dict[str, int]:
        """Marker string -> id (empty when built with markers=False)."""
        return {m: self.added_tokens[m] for m in MARKERS if m in self.added_tokens}

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 over the serialized tokenizer and the settings that change ids; the same
        in every process and for every copy of the files (the path and name are left out)."""
        head = json.dumps(self._settings(), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(head.encode())
        digest.update(b"\0")
        digest.update(self._payload())
        return digest.hexdigest()

    def to_bytes(self) -> bytes:
        """Self-contained serialization (for a Spark broadcast): needs no original files."""
        header = {**self._settings(), "name": self.name, "fingerprint": self.fingerprint}
        head = json.dumps(header, sort_keys=True).encode()
        return _BYTES_MAGIC + struct.pack(">I", len(head)) + head + self._payload()

    @staticmethod
    def from_bytes(data: bytes) -> CorpusTokenizer:
        """Rebuild what `to_bytes` wrote. Cached on the bytes, so an executor that calls it
        for every Arrow batch builds the tokenizer once per broadcast value."""
        return _from_bytes_cached(bytes(data))

    def save(self, directory: str | Path) -> list[str]:
        """Write the tokenizer files and tokenizer_meta.json into `directory`; return the
        paths written. Read back with `load_tokenizer`."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        files = self._write_files(out)
        meta = {
            "format_version": _FORMAT_VERSION,
            "kind": self.kind,
            "name": self.name,
            "vocab_size": self.vocab_size,
            "eod_id": self.eod_id,
            "eod_token": self.eod_token,
            "markers": self.markers,
            "added_tokens": [
                {"id": i, "content": t} for t, i in sorted(self.added_tokens.items(), key=_by_id)
            ],
            "fingerprint": self.fingerprint,
            "files": files,
        }
        (out / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
        return [str(out / f) for f in [*files, META_FILE]]

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        # Pickle (Spark closures, multiprocessing) through the self-contained bytes.
        return (_from_bytes_cached, (self.to_bytes(),))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, vocab_size={self.vocab_size}, "
            f"eod_id={self.eod_id}, fingerprint={self.fingerprint[:12]})"
        )

    # Subclass hooks.
    def _settings(self) -> dict[str, Any]:
        return {
            "format_version": _FORMAT_VERSION,
            "kind": self.kind,
            "markers": self.markers,
            "eod_id": self.eod_id,
            "eod_token": self.eod_token,
            "vocab_size": self.vocab_size,
            "added_tokens": sorted(self.added_tokens.items(), key=_by_id),
        }

    def _payload(self) -> bytes:
        raise NotImplementedError

    def _write_files(self, out: Path) -> list[str]:
        raise NotImplementedError


class SentencePieceTokenizer(CorpusTokenizer):
    """A SentencePiece model with Megatron-LLM's appended specials and the markers."""

    kind = "sentencepiece"

    def __init__(self, model_proto: bytes, *, markers: bool = True, name: str) -> None:
        import sentencepiece

        self._proto = bytes(model_proto)
        self._sp = sentencepiece.SentencePieceProcessor(model_proto=self._proto)
        self.markers = markers
        self.name = name
        self._base = len(self._sp)
        self.added_tokens = {}
        self._appended: list[str] = []

        def add(token: str) -> None:
            # As Megatron-LLM's _add_special_token: reuse a piece the model already has
            # (Llama-2's <s> and </s>; those are not listed in added_tokens).
            existing = self._sp.piece_to_id(token)
            if self._sp.id_to_piece(existing) == token:
                if token in MEGATRON_SP_SPECIALS or token in MARKERS:
                    self.added_tokens[token] = existing
            else:
                self.added_tokens[token] = self._base + len(self._appended)
                self._appended.append(token)

        for token in MEGATRON_SP_SPECIALS[:4]:
            add(token)
        add(self._piece_or(self._sp.pad_id(), "<PAD>"))
        add(self._piece_or(self._sp.bos_id(), "<BOS>"))
        add(self._piece_or(self._sp.eos_id(), "<EOS>"))
        if markers:
            for token in MARKERS:
                add(token)
        self.eod_token = "<EOD>"
        self.eod_id = self.added_tokens["<EOD>"]
        self.vocab_size = self._base + len(self._appended)
        self._marker_re = _MARKER_RE if markers else None

    def _piece_or(self, piece_id: int, default: str) -> str:
        return self._sp.id_to_piece(piece_id) if 0 <= piece_id < self._base else default

    @classmethod
    def from_file(cls, path: str | Path, *, markers: bool = True) -> SentencePieceTokenizer:
        """Load a SentencePiece .model file (or a directory holding tokenizer.model)."""
        file = Path(path)
        if file.is_dir():
            file = file / SP_MODEL_FILE
        if not file.is_file():
            raise FileNotFoundError(f"tokenizer.path: no SentencePiece model at {file}")
        name = f"sentencepiece:{file.name}" + ("+meditron" if markers else "")
        return cls(file.read_bytes(), markers=markers, name=name)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        texts = list(texts)
        if self._marker_re is None:
            return self._sp.encode(texts)
        # Split every text on the markers, encode all text pieces in one batch call (the
        # library's threads stay busy), then stitch the pieces and marker ids back.
        pieces: list[str] = []
        plans: list[int | list[int]] = []  # int: the text is pieces[int], no marker in it
        marker_id = self.added_tokens
        for text in texts:
            if "[" not in text or not self._marker_re.search(text):
                plans.append(len(pieces))
                pieces.append(text)
                continue
            plan: list[int] = []  # >= 0: a marker id; -k - 1: pieces[k]
            for i, part in enumerate(self._marker_re.split(text)):
                if i % 2:
                    plan.append(marker_id[part])
                elif part:
                    plan.append(-len(pieces) - 1)
                    pieces.append(part)
            plans.append(plan)
        encoded = self._sp.encode(pieces)
        out: list[list[int]] = []
        for plan in plans:
            if isinstance(plan, int):
                out.append(encoded[plan])
                continue
            ids: list[int] = []
            for step in plan:
                if step >= 0:
                    ids.append(step)
                else:
                    ids.extend(encoded[-step - 1])
            out.append(ids)
        return out

    def decode(self, ids: Iterable[int]) -> str:
        # Decode each run between appended tokens on its own, as it was encoded, so that
        # SentencePiece strips the dummy prefix it added to that run.
        parts: list[str] = []
        run: list[int] = []
        for raw in _as_int_list(ids):
            if raw < self._base:
                run.append(raw)
                continue
            if raw >= self.vocab_size:
                raise ValueError(f"token id {raw} out of range (vocab_size {self.vocab_size})")
            if run:
                parts.append(self._sp.decode(run))
                run = []
            parts.append(self._appended[raw - self._base])
        if run:
            parts.append(self._sp.decode(run))
        return "".join(parts)

    def _payload(self) -> bytes:
        return self._proto

    def _write_files(self, out: Path) -> list[str]:
        (out / SP_MODEL_FILE).write_bytes(self._proto)
        return [SP_MODEL_FILE]


class HuggingFaceTokenizer(CorpusTokenizer):
    """A `tokenizers.Tokenizer` (kinds huggingface and bpe) with EOD and markers registered as
    special tokens."""

    def __init__(
        self, tokenizer: Any, *, kind: str, name: str, markers: bool, eod_token: str
    ) -> None:
        from tokenizers import AddedToken, Tokenizer

        # A private copy: registering tokens mutates the tokenizer.
        tok = Tokenizer.from_str(tokenizer.to_str())
        wanted = [eod_token, *(MARKERS if markers else ())]
        registered = {t.content for t in tok.get_added_tokens_decoder().values() if t.special}
        missing = [t for t in wanted if t not in registered]
        if missing:
            # A token already in the model's vocab (GPT-2's <|endoftext|>) keeps its id.
            tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in missing])
        self._tok = tok
        self.kind = kind
        self.name = name
        self.markers = markers
        self.eod_token = eod_token
        self.added_tokens = {t: tok.token_to_id(t) for t in wanted}
        self.eod_id = self.added_tokens[eod_token]
        self.vocab_size = max(tok.get_vocab(with_added_tokens=True).values()) + 1
        # Special strings other than the markers are encoded as plain text (module doc):
        # `_plain` is a copy that treats every special token as text, used for those strings.
        guarded = sorted(
            {
                t.content
                for t in tok.get_added_tokens_decoder().values()
                if t.special and t.content not in MARKERS
            },
            key=lambda s: (-len(s), s),
        )
        self._guard_re = (
            re.compile("(" + "|".join(re.escape(t) for t in guarded) + ")") if guarded else None
        )
        self._plain = Tokenizer.from_str(tok.to_str())
        self._plain.encode_special_tokens = True

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        texts = list(texts)
        guard = self._guard_re
        # encode_batch_fast: no offsets, ~10% faster; add_special_tokens=False: no template
        # (BOS) from a post-processor.
        if guard is None or not any(guard.search(t) for t in texts):
            return [e.ids for e in self._tok.encode_batch_fast(texts, add_special_tokens=False)]
        out = [e.ids for e in self._tok.encode_batch_fast(texts, add_special_tokens=False)]
        for i, text in enumerate(texts):
            if guard.search(text):
                out[i] = self._encode_guarded(text, guard)
        return out

    def _encode_guarded(self, text: str, guard: re.Pattern[str]) -> list[int]:
        parts = guard.split(text)
        # parts alternate: text (markers recognised), a guarded special string (as text).
        enc_n = self._tok.encode_batch_fast(parts[0::2], add_special_tokens=False)
        enc_l = self._plain.encode_batch_fast(parts[1::2], add_special_tokens=False)
        ids: list[int] = []
        for k, e in enumerate(enc_n):
            ids.extend(e.ids)
            if k < len(enc_l):
                ids.extend(enc_l[k].ids)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        return self._tok.decode(_as_int_list(ids), skip_special_tokens=False)

    @property
    def hf_tokenizer(self) -> Any:
        """A copy of the underlying `tokenizers.Tokenizer` (what tokenizer.json holds)."""
        from tokenizers import Tokenizer

        return Tokenizer.from_str(self._tok.to_str())

    def _payload(self) -> bytes:
        return self._tok.to_str().encode()

    def _write_files(self, out: Path) -> list[str]:
        (out / HF_TOKENIZER_FILE).write_text(self._tok.to_str(pretty=True))
        # Lets transformers' AutoTokenizer / PreTrainedTokenizerFast.from_pretrained(dir)
        # know the EOS; no cleanup of spaces, or decode would not give the text back.
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "eos_token": self.eod_token,
            "clean_up_tokenization_spaces": False,
        }
        (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
        return [HF_TOKENIZER_FILE, "tokenizer_config.json"]


def load_huggingface(path: str | Path, *, markers: bool = True) -> HuggingFaceTokenizer:
    """A HF tokenizer from a tokenizer.json file, a directory holding one, or a directory
    with GPT-2's encoder.json + vocab.bpe (or vocab.json + merges.txt)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    src = Path(path)
    directory = src if src.is_dir() else src.parent
    if src.is_file():
        tok = Tokenizer.from_file(str(src))
    elif (src / HF_TOKENIZER_FILE).is_file():
        tok = Tokenizer.from_file(str(src / HF_TOKENIZER_FILE))
    else:
        pair = next(
            (
                (src / v, src / m)
                for v, m in (("encoder.json", "vocab.bpe"), ("vocab.json", "merges.txt"))
                if (src / v).is_file() and (src / m).is_file()
            ),
            None,
        )
        if pair is None:
            raise FileNotFoundError(
                f"tokenizer.path: {src} is neither a tokenizer.json nor a directory with "
                "tokenizer.json or encoder.json + vocab.bpe"
            )
        # GPT-2's own files: byte-level BPE, no prefix space (what HF's gpt2 tokenizer.json
        # holds).
        tok = Tokenizer(models.BPE.from_file(str(pair[0]), str(pair[1])))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
    label = directory.name if src.is_dir() or src.name == HF_TOKENIZER_FILE else src.stem
    name = f"huggingface:{label}" + ("+meditron" if markers else "")
    return HuggingFaceTokenizer(
        tok, kind="huggingface", name=name, markers=markers, eod_token=_find_eos(tok, directory)
    )


def _find_eos(tok: Any, directory: Path) -> str:
    """The tokenizer's eos token: from tokenizer_config.json / special_tokens_map.json,
    else a usual end-of-text name in its vocabulary, else <|endoftext|> (then added)."""
    vocab = tok.get_vocab(with_added_tokens=True)
    for file in ("tokenizer_config.json", "special_tokens_map.json"):
        try:
            value = json.loads((directory / file).read_text()).get("eos_token")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str) and value in vocab:
            return value
    return next((t for t in _EOS_CANDIDATES if t in vocab), BPE_EOD)


def train_bpe(texts: Iterable[str], config: TokenizerConfig) -> HuggingFaceTokenizer:
    """Train a byte-level BPE of `config.vocab_size` tokens (EOD id 0, then the markers, the
    256 bytes and the merges).

    Deterministic: measured with tokenizers 0.23.3, the same texts give byte-identical
    tokenizer.json across runs, PYTHONHASHSEED values, RAYON_NUM_THREADS=1 or 2, and even
    any order of the texts (merge ties are broken by token ids, and the byte alphabet is
    fixed and sorted). The non-determinism of tokenizers #1794 (PR #2066, unmerged) comes
    from continuing_subword_prefix / end_of_word_suffix tokens, whose ids follow hash-map
    order: with ``continuing_subword_prefix="##"`` 4 of 4 runs gave different vocabularies.
    So this trainer sets neither, needs no single-thread setting, and tests guard the
    property (tests/test_tokenizer.py).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if config.kind != "bpe":
        raise ValueError(f"train_bpe needs tokenizer.kind 'bpe', got {config.kind!r}")
    specials = [BPE_EOD, *(MARKERS if config.markers else ())]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        min_frequency=config.min_frequency,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    size = max(tok.get_vocab(with_added_tokens=True).values()) + 1
    name = f"bpe:{size}" + ("+meditron" if config.markers else "")
    return HuggingFaceTokenizer(
        tok, kind="bpe", name=name, markers=config.markers, eod_token=BPE_EOD
    )


def build_tokenizer(config: TokenizerConfig) -> CorpusTokenizer:
    """The tokenizer a config names: sentencepiece / huggingface from `path`; bpe from a
    directory that `save` wrote (train one first with `train_bpe`)."""
    if config.kind == "sentencepiece":
        return SentencePieceTokenizer.from_file(str(config.path), markers=config.markers)
    if config.kind == "huggingface":
        return load_huggingface(str(config.path), markers=config.markers)
    if not config.path:
        raise ValueError(
            "tokenizer.path: kind 'bpe' loads a directory written by save(); "
            "train a new one with train_bpe(texts, config)"
        )
    tok = load_tokenizer(config.path)
    if tok.kind != "bpe" or tok.markers != config.markers:
        raise ValueError(
            f"tokenizer.path: {config.path} holds kind {tok.kind!r} with markers={tok.markers}, "
            f"the config asks for kind 'bpe' with markers={config.markers}"
        )
    return tok


def load_tokenizer(directory: str | Path) -> CorpusTokenizer:
    """Read what `CorpusTokenizer.save` wrote; checks the fingerprint recorded there."""
    from tokenizers import Tokenizer

    src = Path(directory)
    meta = json.loads((src / META_FILE).read_text())
    kind = meta["kind"]
    tok: CorpusTokenizer
    if kind == "sentencepiece":
        proto = (src / SP_MODEL_FILE).read_bytes()
        tok = SentencePieceTokenizer(proto, markers=meta["markers"], name=meta["name"])
    elif kind in ("huggingface", "bpe"):
        hf = Tokenizer.from_file(str(src / HF_TOKENIZER_FILE))
        tok = HuggingFaceTokenizer(
            hf, kind=kind, name=meta["name"], markers=meta["markers"], eod_token=meta["eod_token"]
        )
    else:
        raise ValueError(f"{src / META_FILE}: unknown kind {kind!r}")
    if tok.fingerprint != meta["fingerprint"]:
        raise ValueError(
            f"{src}: the tokenizer files do not match the fingerprint in {META_FILE} "
            f"({tok.fingerprint[:12]} != {meta['fingerprint'][:12]})"
        )
    return tok


@functools.lru_cache(maxsize=4)
def _from_bytes_cached(data: bytes) -> CorpusTokenizer:
    from tokenizers import Tokenizer

    if not data.startswith(_BYTES_MAGIC):
        raise ValueError("not a serialized CorpusTokenizer (bad magic)")
    at = len(_BYTES_MAGIC)
    (size,) = struct.unpack(">I", data[at : at + 4])
    header = json.loads(data[at + 4 : at + 4 + size])
    payload = data[at + 4 + size :]
    tok: CorpusTokenizer
    if header["kind"] == "sentencepiece":
        tok = SentencePieceTokenizer(payload, markers=header["markers"], name=header["name"])
    else:
        tok = HuggingFaceTokenizer(
            Tokenizer.from_str(payload.decode()),
            kind=header["kind"],
            name=header["name"],
            markers=header["markers"],
            eod_token=header["eod_token"],
        )
    if tok.fingerprint != header["fingerprint"]:
        raise ValueError("serialized CorpusTokenizer does not match its fingerprint")
    return tok


def _as_int_list(ids: Iterable[int]) -> list[int]:
    # numpy arrays (from shards) -> plain ints that both libraries accept.
    tolist = getattr(ids, "tolist", None)
    return tolist() if tolist is not None else [int(i) for i in ids]


def _by_id(item: tuple[str, int]) -> int:
    return item[1]


__all__ = [
    "BPE_EOD",
    "MARKERS",
    "MEGATRON_SP_SPECIALS",
    "CorpusTokenizer",
    "HuggingFaceTokenizer",
    "SentencePieceTokenizer",
    "TokenizerConfig",
    "build_tokenizer",
    "load_huggingface",
    "load_tokenizer",
    "train_bpe",
]
