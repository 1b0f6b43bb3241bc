"""Near-duplicate detection core: word n-gram shingles, MinHash signatures, LSH banding and
exact Jaccard verification, vectorised over a batch of documents (no Spark here).

The scheme, which every worker and every later run must reproduce bit for bit:

- text -> `normalize_for_shingles`: NFKC, casefold, each punctuation, symbol, separator,
  control or surrogate character (Unicode categories P*, S*, Z*, Cc, Cs) becomes a space,
  format characters (Cf: soft hyphen, zero-width space) are deleted, then words are joined
  by single spaces.
- word hash = murmur3 fmix64(FNV-1a 64 of the word's UTF-8 bytes).
- shingle hash of words w1..wn: h = 0; for each word, h = fmix64(h ^ word hash); then
  x = h mod p, p = 2^61 - 1. A document's shingle set is the set of these x.
- permutation i: h_i(x) = (a_i * x + b_i) mod p, exact (the 122-bit product is reduced on
  32-bit halves), with a_i in [1, p) and b_i in [0, p) drawn by numpy's PCG64 Generator from
  `seed`; signature[i] = min over the document's shingles.
- A document with fewer than `min_shingles` distinct shingles gets no signature: empty or
  tiny sets would all look alike (text-dedup issue #77); exact dedup handles those.

All hashes are arithmetic on integers, so they do not depend on the process, the machine or
its byte order. `reference_signature` recomputes the whole scheme with Python integers.
Signature and shingle values are < 2^61, so they fit a Spark bigint as they are.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Sequence, Set
from functools import lru_cache

import numba
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

MERSENNE_PRIME = (1 << 61) - 1
_MASK64 = (1 << 64) - 1
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_FMIX_1 = 0xFF51AFD7ED558CCD
_FMIX_2 = 0xC4CEB9FE1A85EC53
_BAND_SEED = 0x9E3779B97F4A7C15

_ASCII_PUNCT = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
# P*, S* and Cc within ASCII -> space (bytes.split also splits on the ASCII whitespace).
_ASCII_TABLE = bytes(
    0x20 if chr(i) in _ASCII_PUNCT or i < 0x20 or i == 0x7F else i for i in range(128)
) + bytes(range(128, 256))
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


class MinHashConfig(BaseModel):
    """Near-duplicate settings. `bands` and `rows` default to the LSH parameters that
    `optimal_params` gives for `candidate_threshold`; set both to override them."""

    model_config = ConfigDict(extra="forbid")

    num_perm: int = Field(128, ge=2)
    ngram: int = Field(5, ge=1)
    # One edited word leaves S shingles a Jaccard of (S - 5) / (S + 5), 0.33 at S = 10:
    # smaller sets hold no graded similarity to detect.
    min_shingles: int = Field(10, ge=1)
    seed: int = Field(1, ge=0)
    threshold: float = Field(0.8, gt=0.0, le=1.0)
    # Candidates are verified by exact Jaccard, so extra candidates cost little and missed
    # ones are lost: bands tuned at 0.6 (18 x 7) found 99.85% of the pairs >= 0.8 in
    # bench/bench_minhash.py, against 95.6% at 0.7 (14 x 9), for 1.4x the candidates.
    candidate_threshold: float = Field(0.6, gt=0.0, le=1.0)
    false_positive_weight: float = Field(0.5, ge=0.0)
    false_negative_weight: float = Field(0.5, ge=0.0)
    bands: int | None = Field(None, ge=1)
    rows: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _lsh_params(self) -> MinHashConfig:
        if self.candidate_threshold > self.threshold:
            raise ValueError("candidate_threshold must not exceed threshold")
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both bands and rows, or neither")
        if self.bands is None:
            self.bands, self.rows = optimal_params(
                self.candidate_threshold,
                self.num_perm,
                self.false_positive_weight,
                self.false_negative_weight,
            )
        elif self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands * rows = {self.bands * self.rows} > num_perm")
        return self


# --- normalisation ---------------------------------------------------------------------


def normalize_for_shingles(text: str) -> str:
    """Lower-cased (casefold) NFKC text, punctuation/symbols/separators/controls turned into
    spaces, format characters deleted, words joined by single spaces."""
    return _normalized(text).decode()


def _normalized(text: str) -> bytes:
    """normalize_for_shingles as UTF-8 bytes (what the kernels read)."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).casefold()
        # Few distinct non-ASCII characters per document: replacing those beats a
        # per-character translate; the ASCII ones are done on bytes below.
        for ch in set(_NON_ASCII.findall(text)):
            new = _replacement(ch)
            if new != ch:
                text = text.replace(ch, new)
    return b" ".join(text.encode().lower().translate(_ASCII_TABLE).split())


@lru_cache(maxsize=1 << 16)
def _replacement(ch: str) -> str:
    category = unicodedata.category(ch)
    # Cs: a lone surrogate (from JSON escapes) cannot be encoded; it separates words.
    if category[0] in "PSZ" or category in ("Cc", "Cs"):
        return " "
    return "" if category == "Cf" else ch


# --- shingles --------------------------------------------------------------------------


def shingle_hashes(
    texts: Sequence[str | None], config: MinHashConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Each document's distinct shingle hashes, sorted, as one flat uint64 array and int64
    offsets (n + 1): the layout of an Arrow LargeListArray (a None text has none)."""
    encoded = [_normalized(t) if t else b"" for t in texts]
    lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
    data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
    bounds = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=bounds[1:])
    values = np.empty(_count_shingles(data, bounds, config.ngram), dtype=np.uint64)
    offsets = np.empty(len(encoded) + 1, dtype=np.int64)
    # A word takes >= 2 bytes with its separator: at most (L + 1) // 2 words in L bytes.
    words = np.empty((int(lengths.max(initial=0)) + 1) // 2 + 1, dtype=np.uint64)
    _shingle_kernel(data, bounds, config.ngram, words, values, offsets)
    return values[: offsets[-1]], offsets


def shingle_set(text: str, config: MinHashConfig) -> frozenset[int]:
    """The document's shingle hashes (each < 2^61), for exact Jaccard."""
    values, _ = shingle_hashes([text], config)
    return frozenset(values.tolist())


def jaccard(a: Set[int] | np.ndarray, b: Set[int] | np.ndarray) -> float:
    """Exact Jaccard similarity of two shingle sets (Python sets, or sorted distinct arrays
    as `shingle_hashes` gives); 0.0 when both are empty, so empty documents never match."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        inter = len(np.intersect1d(a, b, assume_unique=True))
        union = len(a) + len(b) - inter
    else:
        sa, sb = (s if isinstance(s, Set) else set(s.tolist()) for s in (a, b))
        inter = len(sa & sb)
        union = len(sa) + len(sb) - inter
    return inter / union if union else 0.0


# --- signatures ------------------------------------------------------------------------


@lru_cache(maxsize=8)
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) of the num_perm permutations, uint64, read-only: the same on every worker."""
    rng = np.random.Generator(np.random.PCG64(seed))
    a = rng.integers(1, MERSENNE_PRIME, size=num_perm, dtype=np.uint64)
    b = rng.integers(0, MERSENNE_PRIME, size=num_perm, dtype=np.uint64)
    a.flags.writeable = b.flags.writeable = False
    return a, b


def signatures(texts: Sequence[str | None], config: MinHashConfig) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures of a batch: uint64 [n, num_perm] and has_signature bool [n]. Rows
    without a signature hold MERSENNE_PRIME (above every real value)."""
    return signatures_from_shingles(*shingle_hashes(texts, config), config)


def signatures_from_shingles(
    values: np.ndarray, offsets: np.ndarray, config: MinHashConfig
) -> tuple[np.ndarray, np.ndarray]:
    """`signatures` from `shingle_hashes` output (each document's values distinct, as
    there), so that shingles are computed once for both."""
    a, b = permutations(config.num_perm, config.seed)
    n = len(offsets) - 1
    sig = np.empty((n, config.num_perm), dtype=np.uint64)
    has = np.diff(offsets) >= config.min_shingles
    _minhash_kernel(
        np.ascontiguousarray(values, dtype=np.uint64),
        np.ascontiguousarray(offsets, dtype=np.int64),
        has,
        (a & 0xFFFFFFFF).astype(np.uint32),
        (a >> 32).astype(np.uint32),
        b,
        sig,
    )
    return sig, has


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float | np.ndarray:
    """Share of equal signature values (along the last axis, so rows of two matrices too)."""
    return np.mean(np.asarray(sig_a) == np.asarray(sig_b), axis=-1)


# --- LSH -------------------------------------------------------------------------------


def optimal_params(
    threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5
) -> tuple[int, int]:
    """(bands, rows) minimising fp_weight * FP area + fn_weight * FN area of the LSH
    S-curve around `threshold`, searched like datasketch's `_optimal_param`."""
    pairs = [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]
    bands = np.array([p[0] for p in pairs], dtype=np.float64)[:, None]
    rows = np.array([p[1] for p in pairs], dtype=np.float64)[:, None]
    # The integrands are polynomials of degree b * r <= num_perm: Gauss-Legendre with
    # num_perm // 2 + 1 nodes integrates them exactly.
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)

    def area(lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
        s = (hi - lo) / 2 * nodes + (hi + lo) / 2
        collide = 1.0 - (1.0 - s[None, :] ** rows) ** bands
        return collide, (hi - lo) / 2 * weights

    collide, w = area(0.0, threshold)
    fp = collide @ w
    collide, w = area(threshold, 1.0)
    fn = (1.0 - collide) @ w
    # argmin takes the first minimum, as datasketch's strict `<` does in the same order.
    return pairs[int(np.argmin(fp * fp_weight + fn * fn_weight))]


def band_hashes(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """int64 [n, bands]: a 64-bit hash of each band's `rows` values (the band index is mixed
    in, so equal values in two bands hash apart). Signed, for a Spark bigint column."""
    sig = np.asarray(signatures, dtype=np.uint64)
    if bands * rows > sig.shape[1]:
        raise ValueError(f"bands * rows = {bands * rows} > {sig.shape[1]} signature values")
    grouped = sig[:, : bands * rows].reshape(len(sig), bands, rows)
    h = np.broadcast_to(
        _fmix64_np(np.arange(bands, dtype=np.uint64) ^ np.uint64(_BAND_SEED)), (len(sig), bands)
    )
    for r in range(rows):
        h = _fmix64_np(h ^ grouped[:, :, r])
    return h.view(np.int64)


def _fmix64_np(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint64(33))
    h *= np.uint64(_FMIX_1)
    h ^= h >> np.uint64(33)
    h *= np.uint64(_FMIX_2)
    h ^= h >> np.uint64(33)
    return h


# --- Python-integer reference ----------------------------------------------------------


def reference_shingles(text: str, config: MinHashConfig) -> set[int]:
    """The shingle set, computed with plain Python integers (the test oracle)."""
    words = normalize_for_shingles(text).split()
    word_hashes = [_fmix64_py(_fnv1a_py(w.encode())) for w in words]
    out = set()
    for i in range(len(words) - config.ngram + 1):
        h = 0
        for wh in word_hashes[i : i + config.ngram]:
            h = _fmix64_py(h ^ wh)
        out.add(h % MERSENNE_PRIME)
    return out


def reference_signature(text: str, config: MinHashConfig) -> np.ndarray | None:
    """The MinHash signature with Python integers: min over shingles of
    (a * x + b) % (2^61 - 1); None below `min_shingles`."""
    shingles = reference_shingles(text, config)
    if len(shingles) < config.min_shingles:
        return None
    a, b = permutations(config.num_perm, config.seed)
    sig = [
        min((ai * x + bi) % MERSENNE_PRIME for x in shingles)
        for ai, bi in zip(a.tolist(), b.tolist(), strict=True)
    ]
    return np.array(sig, dtype=np.uint64)


def _fnv1a_py(data: bytes) -> int:
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & _MASK64
    return h


def _fmix64_py(h: int) -> int:
    h ^= h >> 33
    h = (h * _FMIX_1) & _MASK64
    h ^= h >> 33
    h = (h * _FMIX_2) & _MASK64
    return h ^ (h >> 33)


# --- compiled kernels (numba: uint64 constants keep the arithmetic in uint64) ----------

# numba caches a kernel beside its module; a module imported from a zip (spark-submit
# --py-files of the wheel) has no folder to cache in, and numba refuses cache=True there.
_CACHE = os.path.isfile(__file__)
_U33 = np.uint64(33)
_U61 = np.uint64(61)
_P = np.uint64(MERSENNE_PRIME)


@numba.njit(cache=_CACHE, inline="always")
def _fmix64(h):
    h ^= h >> _U33
    h *= np.uint64(_FMIX_1)
    h ^= h >> _U33
    h *= np.uint64(_FMIX_2)
    return h ^ (h >> _U33)


@numba.njit(cache=_CACHE)
def _count_shingles(data, bounds, ngram):
    # Normalised text has single spaces between words: words = spaces + 1.
    total = 0
    for d in range(len(bounds) - 1):
        start, end = bounds[d], bounds[d + 1]
        if end > start:
            spaces = 0
            for k in range(start, end):
                spaces += data[k] == 0x20
            total += max(0, spaces + 2 - ngram)
    return total


@numba.njit(cache=_CACHE)
def _shingle_kernel(data, bounds, ngram, words, values, offsets):
    space = np.uint8(0x20)
    pos = 0
    offsets[0] = 0
    for d in range(len(bounds) - 1):
        start, end = bounds[d], bounds[d + 1]
        n_words = 0
        h = np.uint64(_FNV_OFFSET)
        for k in range(start, end + 1):
            if k == end or data[k] == space:
                if k > start:
                    words[n_words] = _fmix64(h)
                    n_words += 1
                h = np.uint64(_FNV_OFFSET)
            else:
                h = (h ^ np.uint64(data[k])) * np.uint64(_FNV_PRIME)
        first = pos
        for i in range(n_words - ngram + 1):
            s = np.uint64(0)
            for j in range(i, i + ngram):
                s = _fmix64(s ^ words[j])
            s = (s & _P) + (s >> _U61)
            if s >= _P:
                s -= _P
            values[pos] = s
            pos += 1
        if pos > first:
            values[first:pos].sort()
            kept = first + 1
            for k in range(first + 1, pos):
                if values[k] != values[kept - 1]:
                    values[kept] = values[k]
                    kept += 1
            pos = kept
        offsets[d + 1] = pos


@numba.njit(cache=_CACHE)
def _minhash_kernel(values, offsets, has, a_lo, a_hi, b, sig):
    # (a * x + b) mod p with a = ah*2^32 + al, x = xh*2^32 + xl (ah, xh < 2^29), using
    # 2^61 = 1 (mod p): ah*xh*2^64 = 8*ah*xh, mid*2^32 = (mid >> 29) + (mid & (2^29-1))*2^32.
    # Every partial product is 32x32 bits, and the sum stays below 2^64.
    low32 = np.uint64(0xFFFFFFFF)
    low29 = np.uint64((1 << 29) - 1)
    num_perm = len(b)
    for d in range(len(offsets) - 1):
        row = sig[d]
        row[:] = _P
        if not has[d]:
            continue
        for k in range(offsets[d], offsets[d + 1]):
            x = values[k]
            xl = x & low32
            xh = x >> np.uint64(32)
            for i in range(num_perm):
                al = np.uint64(a_lo[i])
                ah = np.uint64(a_hi[i])
                mid = ah * xl + al * xh
                lo = al * xl
                v = (
                    ((ah * xh) << np.uint64(3))
                    + (mid >> np.uint64(29))
                    + ((mid & low29) << np.uint64(32))
                    + (lo & _P)
                    + (lo >> _U61)
                    + b[i]
                )
                v = (v & _P) + (v >> _U61)
                if v >= _P:
                    v -= _P
                if v < row[i]:
                    row[i] = v
