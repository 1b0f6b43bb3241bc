"""Megatron-LM mmap indexed dataset shards (``MMIDIDX\\x00\\x00`` version 1) and blend files.

Writes the same bytes as megatron-core 0.16.1's ``IndexedDatasetBuilder`` (``add_item`` +
``end_document`` per document, then ``finalize``) without importing torch or megatron: the
corpus stages run where neither is installed, and the shard format is small enough to own.

Layout of ``<prefix>.idx`` (little-endian):

    9 bytes   b"MMIDIDX\\x00\\x00"
    u64       version = 1
    u8        dtype code (megatron's ``DType``: uint8=1, int8=2, int16=3, int32=4, int64=5,
              uint16=8; the float codes 6 and 7 are never used for tokens)
    u64       sequence count N
    u64       document count D (= N + 1 here: one sequence per document, plus the leading 0)
    int32[N]  sequence lengths, in tokens
    int64[N]  sequence pointers, byte offsets into the .bin
    int64[D]  document indices: the sequence index at which each document ends, from 0

``<prefix>.bin`` is the token ids of every sequence, back to back, in the dtype.

Both files are written under temporary names in the destination directory and renamed only
once complete, so a reader never sees a half-written shard; the .bin is renamed before the
.idx, so a reader that finds the .idx finds the matching .bin.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import operator
import os
import secrets
import struct
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np

__all__ = [
    "BLEND_SPLITS",
    "INDEX_HEADER",
    "ShardError",
    "ShardInfo",
    "ShardReader",
    "ShardWriter",
    "dtype_for_vocab",
    "file_sha256",
    "read_blends",
    "read_shard",
    "write_blends",
    "write_shard",
]

INDEX_HEADER = b"MMIDIDX\x00\x00"
_INDEX_VERSION = 1
# magic (9) + version (8) + dtype code (1) + sequence count (8) + document count (8)
_PREAMBLE_BYTES = 34

# megatron.core.datasets.indexed_dataset.DType, integer members only: token ids are integers.
_DTYPE_CODES: dict[str, int] = {
    "uint8": 1,
    "int8": 2,
    "int16": 3,
    "int32": 4,
    "int64": 5,
    "uint16": 8,
}
_CODE_DTYPES = {code: name for name, code in _DTYPE_CODES.items()}

# The vocabulary size under which uint16 tokens are used; megatron-core's
# DType.optimal_dtype and Megatron-LM's preprocess_data.py use the same bound.
_UINT16_VOCAB_LIMIT = 65_500

BLEND_SPLITS = ("train", "valid", "test")

_COPY_BYTES = 1 << 20
# Sequence pointers and document indices are written in chunks of this many entries, so the
# index of a shard with tens of millions of documents never exists whole in memory.
_INDEX_CHUNK = 1 << 20
_INT32_MAX = np.iinfo(np.int32).max


def dtype_for_vocab(vocab_size: int) -> np.dtype:
    """Token dtype for a vocabulary: uint16 when it has fewer than 65,500 ids, else int32."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int | np.integer):
        raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}")
    if vocab_size <= 0:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}")
    return np.dtype(np.uint16) if vocab_size < _UINT16_VOCAB_LIMIT else np.dtype(np.int32)


def _token_dtype(dtype: Any) -> np.dtype:
    """The little-endian integer dtype megatron can name, or a ValueError."""
    try:
        resolved = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"not a numpy dtype: {dtype!r}") from exc
    if resolved.name not in _DTYPE_CODES:
        raise ValueError(
            f"token dtype must be one of {sorted(_DTYPE_CODES)} (megatron-core DType codes), "
            f"got {resolved}"
        )
    # Megatron writes native-order arrays and every supported host is little-endian; pinning
    # the order keeps the files portable and byte-identical anyway.
    return resolved.newbyteorder("<")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_COPY_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ShardInfo:
    """What a finished shard holds; the hashes are of the final .bin and .idx bytes."""

    prefix: str
    n_docs: int
    n_tokens: int
    dtype: str
    bin_sha256: str
    idx_sha256: str
    bin_bytes: int


def _temp_name(final: Path) -> Path:
    return final.with_name(f"{final.name}.tmp-{secrets.token_hex(8)}")


def _open_new(path: Path) -> BinaryIO:
    # O_EXCL: two writers can never share a temporary file; mode 0o666 under the umask gives
    # the permissions a plain open() would (mkstemp's 0o600 would leak into the final shard).
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    return os.fdopen(fd, "wb", buffering=_COPY_BYTES)


def _unlink_quietly(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _fsync_directory(directory: Path) -> None:
    # Makes the renames durable; not possible on every platform, and not needed for
    # correctness, only for a crash right after close().
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class ShardWriter:
    """Streams documents into ``<prefix>.bin`` / ``<prefix>.idx``, one sequence per document.

    Use as a context manager: on a clean exit the shard is finalised (``info`` then holds its
    ShardInfo); on an exception both temporary files are removed and nothing is left behind.
    Only the per-document lengths (4 bytes each) are kept in memory.

    Each document's tokens must already end with the EOD id; the writer adds nothing.
    """

    def __init__(self, prefix: str | os.PathLike[str], dtype: Any, *, fsync: bool = True) -> None:
        self.prefix = os.fspath(prefix)
        self.dtype = _token_dtype(dtype)
        self._fsync = fsync
        self._bin_path = Path(self.prefix + ".bin")
        self._idx_path = Path(self.prefix + ".idx")
        self._limits = np.iinfo(self.dtype)
        # array('i') is a compact growable int32 buffer: 4 bytes per document, no per-item
        # Python objects, and np.frombuffer reads it without a copy at close().
        self._lengths = array("i")
        assert self._lengths.itemsize == 4, "C int is 32-bit on every supported platform"
        self._n_tokens = 0
        self._bin_digest = hashlib.sha256()
        self._bin_tmp: Path | None = _temp_name(self._bin_path)
        self._idx_tmp: Path | None = None
        self._bin: BinaryIO | None = _open_new(self._bin_tmp)
        self._info: ShardInfo | None = None

    def __del__(self) -> None:
        # A writer dropped without close() or a with block must not leave temp files behind.
        if getattr(self, "_info", 1) is None:
            with contextlib.suppress(Exception):
                self.abort()

    # -- context manager -------------------------------------------------------------------

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
        elif self._info is None:
            self.close()

    # -- writing ---------------------------------------------------------------------------

    def _as_tokens(self, tokens: np.ndarray | Sequence[int]) -> np.ndarray:
        """The document as a contiguous array of self.dtype, or a ValueError saying why not."""
        array_in = np.asarray(tokens)
        if array_in.dtype == object:
            # Python ints too large for int64 land here; anything non-integer fails too.
            try:
                array_in = np.asarray(tokens, dtype=np.int64)
            except (OverflowError, TypeError, ValueError) as exc:
                raise ValueError(f"token ids must be integers within {self.dtype}: {exc}") from exc
        if array_in.ndim != 1:
            raise ValueError(
                f"a document must be a 1-D sequence of token ids, got {array_in.ndim}-D"
            )
        if array_in.size == 0:
            raise ValueError("empty document: every document needs at least its EOD token")
        if array_in.size > _INT32_MAX:
            raise ValueError(
                f"document of {array_in.size} tokens: the index stores lengths as int32"
            )
        if array_in.dtype.kind not in "iu":
            raise ValueError(f"token ids must be integers, got dtype {array_in.dtype}")
        # A source dtype that fits in the target (uint16 into uint16 or int32) needs no check.
        if not np.can_cast(array_in.dtype, self.dtype, casting="safe"):
            low, high = int(array_in.min()), int(array_in.max())
            if low < self._limits.min or high > self._limits.max:
                bad = low if low < self._limits.min else high
                raise ValueError(
                    f"token id {bad} out of range for {self.dtype.name} "
                    f"[{self._limits.min}, {self._limits.max}]"
                )
        return np.ascontiguousarray(array_in, dtype=self.dtype)

    def add(self, tokens: np.ndarray | Sequence[int]) -> int:
        """Append one document (token ids ending with EOD); returns its sequence index."""
        if self._bin is None:
            raise ValueError(f"ShardWriter for {self.prefix} is closed")
        data = self._as_tokens(tokens)
        try:
            self._bin.write(data)
        except BaseException:
            # A failed write (disk full) leaves the .bin unknown: the shard cannot be finished.
            self.abort()
            raise
        self._bin_digest.update(data)
        self._lengths.append(data.size)
        self._n_tokens += data.size
        return len(self._lengths) - 1

    def __len__(self) -> int:
        """Documents added so far."""
        return len(self._lengths)

    def _write_index(self, stream: BinaryIO, digest: Any) -> None:
        def emit(data: bytes | memoryview | np.ndarray) -> None:
            stream.write(data)
            digest.update(data)

        n_seq = len(self._lengths)
        lengths = np.frombuffer(self._lengths, dtype=np.int32) if n_seq else np.empty(0, np.int32)
        emit(INDEX_HEADER)
        emit(struct.pack("<Q", _INDEX_VERSION))
        emit(struct.pack("<B", _DTYPE_CODES[self.dtype.name]))
        emit(struct.pack("<Q", n_seq))
        emit(struct.pack("<Q", n_seq + 1))
        emit(lengths.astype("<i4", copy=False))
        # Pointers: byte offset of each sequence = running sum of the previous lengths.
        itemsize = self.dtype.itemsize
        offset = 0
        for start in range(0, n_seq, _INDEX_CHUNK):
            chunk = lengths[start : start + _INDEX_CHUNK].astype("<i8") * itemsize
            ends = np.cumsum(chunk, dtype="<i8")
            pointers = np.empty_like(ends)
            pointers[0] = offset
            pointers[1:] = ends[:-1] + offset
            offset += int(ends[-1])
            emit(pointers)
        # Document indices: 0, 1, ..., N (document k is sequence k alone).
        for start in range(0, n_seq + 1, _INDEX_CHUNK):
            emit(np.arange(start, min(start + _INDEX_CHUNK, n_seq + 1), dtype="<i8"))

    def close(self) -> ShardInfo:
        """Finish the shard: write the .idx, rename .bin then .idx into place, return ShardInfo.

        Raises ValueError for a shard with no documents (and removes it): megatron-core loops
        forever on a split that receives none. A second call returns the same ShardInfo.
        """
        if self._info is not None:
            return self._info
        if self._bin is None:
            raise ValueError(f"ShardWriter for {self.prefix} was aborted")
        try:
            if not self._lengths:
                raise ValueError(f"shard {self.prefix} has no documents; nothing written")
            bin_stream, self._bin = self._bin, None
            try:
                bin_stream.flush()
                if self._fsync:
                    os.fsync(bin_stream.fileno())
            finally:
                bin_stream.close()

            idx_digest = hashlib.sha256()
            self._idx_tmp = _temp_name(self._idx_path)
            with _open_new(self._idx_tmp) as idx_stream:
                self._write_index(idx_stream, idx_digest)
                idx_stream.flush()
                if self._fsync:
                    os.fsync(idx_stream.fileno())

            bin_bytes = self._n_tokens * self.dtype.itemsize
            # An old shard under the same prefix: drop its .idx first, so that no reader pairs
            # it with the new .bin in the moment between the two renames.
            _unlink_quietly(self._idx_path)
            os.replace(self._bin_tmp, self._bin_path)  # type: ignore[arg-type]
            self._bin_tmp = None
            os.replace(self._idx_tmp, self._idx_path)
            self._idx_tmp = None
            if self._fsync:
                _fsync_directory(self._idx_path.parent)
        except BaseException:
            self.abort()
            raise
        self._info = ShardInfo(
            prefix=self.prefix,
            n_docs=len(self._lengths),
            n_tokens=self._n_tokens,
            dtype=self.dtype.name,
            bin_sha256=self._bin_digest.hexdigest(),
            idx_sha256=idx_digest.hexdigest(),
            bin_bytes=bin_bytes,
        )
        return self._info

    def abort(self) -> None:
        """Drop everything written so far: the temporary files go, the prefix is untouched
        (unless the failure came between the two renames, in which case the new .bin stays
        without an .idx, which readers treat as no shard)."""
        if self._bin is not None:
            with contextlib.suppress(OSError):
                self._bin.close()
            self._bin = None
        _unlink_quietly(self._bin_tmp)
        _unlink_quietly(self._idx_tmp)
        self._bin_tmp = self._idx_tmp = None

    @property
    def info(self) -> ShardInfo | None:
        """The ShardInfo once close() has succeeded, else None."""
        return self._info


def write_shard(
    prefix: str | os.PathLike[str], documents: Iterable[np.ndarray | Sequence[int]], dtype: Any
) -> ShardInfo:
    """Write every document (each ending with EOD) to one shard at ``prefix``."""
    with ShardWriter(prefix, dtype) as writer:
        for document in documents:
            writer.add(document)
    assert writer.info is not None
    return writer.info


class ShardError(ValueError):
    """A shard's files are missing, truncated or inconsistent."""


class ShardReader:
    """Read-only, memory-mapped view of one shard; ``reader[i]`` is sequence i's token ids.

    The header, sizes and index arrays are all checked on open, so a reader that opened
    without error holds a shard megatron-core will also accept.
    """

    def __init__(self, prefix: str | os.PathLike[str]) -> None:
        self.prefix = os.fspath(prefix)
        idx_path = Path(self.prefix + ".idx")
        bin_path = Path(self.prefix + ".bin")
        for path in (idx_path, bin_path):
            if not path.is_file():
                raise FileNotFoundError(f"shard file missing: {path}")

        idx_size = idx_path.stat().st_size
        if idx_size < _PREAMBLE_BYTES:
            raise ShardError(f"{idx_path}: truncated index ({idx_size} bytes, header needs 34)")
        with open(idx_path, "rb") as stream:
            preamble = stream.read(_PREAMBLE_BYTES)
        if preamble[:9] != INDEX_HEADER:
            raise ShardError(f"{idx_path}: not a Megatron index (magic {preamble[:9]!r})")
        (version,) = struct.unpack_from("<Q", preamble, 9)
        if version != _INDEX_VERSION:
            raise ShardError(f"{idx_path}: unsupported index version {version} (expected 1)")
        code = preamble[17]
        if code not in _CODE_DTYPES:
            raise ShardError(f"{idx_path}: dtype code {code} is not an integer token dtype")
        self.dtype: np.dtype = np.dtype(_CODE_DTYPES[code]).newbyteorder("<")
        n_seq, n_doc = struct.unpack_from("<QQ", preamble, 18)
        expected = _PREAMBLE_BYTES + n_seq * (4 + 8) + n_doc * 8
        if idx_size != expected:
            what = "truncated" if idx_size < expected else "trailing bytes (multimodal?)"
            raise ShardError(
                f"{idx_path}: {what}: {idx_size} bytes, {expected} expected for "
                f"{n_seq} sequences and {n_doc} document indices"
            )

        self._idx_map: np.memmap | None = np.memmap(idx_path, dtype=np.uint8, mode="r")
        offset = _PREAMBLE_BYTES
        self.lengths: np.ndarray = np.frombuffer(self._idx_map, "<i4", n_seq, offset)
        offset += self.lengths.nbytes
        self.pointers: np.ndarray = np.frombuffer(self._idx_map, "<i8", n_seq, offset)
        offset += self.pointers.nbytes
        self.document_indices: np.ndarray = np.frombuffer(self._idx_map, "<i8", n_doc, offset)
        self._check_index(idx_path)

        self.n_tokens = int(self.lengths.sum(dtype=np.int64))
        bin_size = bin_path.stat().st_size
        expected_bin = self.n_tokens * self.dtype.itemsize
        if bin_size != expected_bin:
            what = "truncated" if bin_size < expected_bin else "longer than its index"
            raise ShardError(
                f"{bin_path}: {what}: {bin_size} bytes, the index describes {self.n_tokens} "
                f"{self.dtype.name} tokens ({expected_bin} bytes)"
            )
        # numpy cannot map an empty file; a 0-token shard still reads as one.
        self._bin_map: np.ndarray = (
            np.memmap(bin_path, dtype=self.dtype, mode="r")
            if bin_size
            else np.empty(0, dtype=self.dtype)
        )

    def _check_index(self, idx_path: Path) -> None:
        lengths, pointers, docs = self.lengths, self.pointers, self.document_indices
        if lengths.size and int(lengths.min()) < 0:
            raise ShardError(f"{idx_path}: negative sequence length")
        if docs.size == 0 or docs[0] != 0 or docs[-1] != lengths.size:
            raise ShardError(
                f"{idx_path}: document indices must run from 0 to the sequence count {lengths.size}"
            )
        if np.any(np.diff(docs) < 0):
            raise ShardError(f"{idx_path}: document indices are not non-decreasing")
        if lengths.size:
            sizes = lengths.astype(np.int64) * self.dtype.itemsize
            expected = np.concatenate(([0], np.cumsum(sizes[:-1], dtype=np.int64)))
            if not np.array_equal(pointers, expected):
                raise ShardError(f"{idx_path}: sequence pointers do not follow the lengths")

    def __len__(self) -> int:
        """Number of sequences (one per document for shards this module writes)."""
        return int(self.lengths.size)

    @property
    def n_docs(self) -> int:
        """Number of documents (len(document_indices) - 1)."""
        return int(self.document_indices.size) - 1

    def __getitem__(self, index: int) -> np.ndarray:
        """Token ids of sequence ``index`` (negative counts from the end), a read-only view."""
        i = operator.index(index)
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"sequence {index} out of range for {n} sequences")
        start = int(self.pointers[i]) // self.dtype.itemsize
        return self._bin_map[start : start + int(self.lengths[i])]

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]

    def close(self) -> None:
        """Drop this reader's memory maps; arrays returned earlier keep their own reference
        to the map, so they stay valid until they are garbage collected."""
        self.lengths = self.pointers = self.document_indices = np.empty(0, np.int64)
        self._bin_map = np.empty(0, dtype=self.dtype)
        self._idx_map = None

    def __enter__(self) -> ShardReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_shard(prefix: str | os.PathLike[str]) -> ShardReader:
    """Open and validate the shard at ``prefix`` (ShardError / FileNotFoundError if bad)."""
    return ShardReader(prefix)


# -- blends ---------------------------------------------------------------------------------


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = _temp_name(path)
    try:
        with _open_new(tmp) as stream:
            stream.write(text.encode("utf-8"))
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _checked_blend(split: str, entries: Any) -> list[tuple[float, str]]:
    checked: list[tuple[float, str]] = []
    for entry in entries:
        try:
            weight, prefix = entry
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{split}: blend entries are (weight, prefix), got {entry!r}") from exc
        if isinstance(weight, bool) or not isinstance(weight, int | float | np.number):
            raise ValueError(f"{split}: weight must be a number, got {weight!r}")
        weight = float(weight)
        if not math.isfinite(weight) or weight <= 0:
            raise ValueError(f"{split}: weight must be finite and > 0, got {weight!r}")
        if not isinstance(prefix, str | os.PathLike):
            raise ValueError(f"{split}: prefix must be a path, got {prefix!r}")
        prefix = os.fspath(prefix)
        # Megatron-LM reads the blend as whitespace-separated words: a space would split a
        # prefix in two and silently shift every weight after it.
        if not prefix or any(ch.isspace() for ch in prefix):
            raise ValueError(f"{split}: prefix {prefix!r} is empty or contains whitespace")
        checked.append((weight, prefix))
    return checked


def write_blends(
    directory: str | os.PathLike[str], blends: dict[str, list[tuple[float, str]]]
) -> dict[str, Path]:
    """Write ``blend_<split>.txt`` (Megatron-LM's ``--<split>-data-path`` value,
    ``weight prefix weight prefix ...`` on one line) for each split with entries, and
    ``blends.json`` for all of them.

    Splits with no entries are omitted (megatron-core hangs on an empty split), and a stale
    ``blend_<split>.txt`` for an omitted split is removed. Weights are written as Python's
    shortest round-tripping repr; prefixes exactly as given. Returns the written paths keyed
    by split, plus ``"json"`` for blends.json.
    """
    unknown = set(blends) - set(BLEND_SPLITS)
    if unknown:
        raise ValueError(f"unknown splits {sorted(unknown)}; expected {list(BLEND_SPLITS)}")
    checked = {split: _checked_blend(split, blends.get(split) or []) for split in BLEND_SPLITS}
    checked = {split: entries for split, entries in checked.items() if entries}
    if not checked:
        raise ValueError("no split has any blend entries")

    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for split in BLEND_SPLITS:
        path = out_dir / f"blend_{split}.txt"
        if split not in checked:
            _unlink_quietly(path)
            continue
        line = " ".join(f"{weight!r} {prefix}" for weight, prefix in checked[split])
        _atomic_write_text(path, line + "\n")
        written[split] = path
    manifest = {
        split: [{"weight": weight, "prefix": prefix} for weight, prefix in entries]
        for split, entries in checked.items()
    }
    json_path = out_dir / "blends.json"
    _atomic_write_text(json_path, json.dumps(manifest, indent=2) + "\n")
    written["json"] = json_path
    return written


def read_blends(directory: str | os.PathLike[str]) -> dict[str, list[tuple[float, str]]]:
    """The blends recorded in ``<directory>/blends.json`` by write_blends."""
    path = Path(directory) / "blends.json"
    with open(path, encoding="utf-8") as stream:
        raw = json.load(stream)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object keyed by split")
    blends: dict[str, list[tuple[float, str]]] = {}
    for split, entries in raw.items():
        if split not in BLEND_SPLITS or not isinstance(entries, list):
            raise ValueError(f"{path}: bad split entry {split!r}")
        try:
            pairs = [(entry["weight"], entry["prefix"]) for entry in entries]
        except (TypeError, KeyError) as exc:
            raise ValueError(f"{path}: {split} entries need weight and prefix") from exc
        blends[split] = _checked_blend(split, pairs)
    return blends
