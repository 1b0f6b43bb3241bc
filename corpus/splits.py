"""Train / valid / test assignment by a seeded hash of doc_id.

A document's split depends on its doc_id, the seed and its source's held-out share only, so
it never changes when other documents come or go, nor with the number of partitions:

    u = first 13 hex digits (52 bits) of SHA-256(f"{seed}:split:{doc_id}") / 2^52   in [0, 1)
    test   if u < heldout * test_fraction
    valid  if u < heldout
    train  otherwise

52 bits so that u is exact in a double, in Python and in Spark SQL alike (`split_sql`).
"""

from __future__ import annotations

import hashlib

_HEX_DIGITS = 13
_SCALE = float(1 << (4 * _HEX_DIGITS))


def unit_hash(doc_id: str, seed: int) -> float:
    """The document's uniform draw in [0, 1) for `seed`."""
    digest = hashlib.sha256(f"{seed}:split:{doc_id}".encode()).hexdigest()
    return int(digest[:_HEX_DIGITS], 16) / _SCALE


def assign_split(doc_id: str, seed: int, heldout: float, test_fraction: float) -> str:
    """train, valid or test for one document (the rule in the module docstring)."""
    _check(heldout, test_fraction)
    u = unit_hash(doc_id, seed)
    if u < heldout * test_fraction:
        return "test"
    return "valid" if u < heldout else "train"


def unit_hash_sql(seed: int, doc_id_column: str = "doc_id") -> str:
    """Spark SQL giving `unit_hash` of the column, bit for bit."""
    digest = f"sha2(concat('{int(seed)}:split:', `{doc_id_column}`), 256)"
    return f"(CAST(conv(substring({digest}, 1, {_HEX_DIGITS}), 16, 10) AS DOUBLE) / {_SCALE!r})"


def split_sql(seed: int, heldout_column: str, test_fraction: float) -> str:
    """Spark SQL for `assign_split`, the held-out share read from a column."""
    _check(0.0, test_fraction)
    u = unit_hash_sql(seed)
    return (
        f"CASE WHEN {u} < {heldout_column} * {float(test_fraction)!r} THEN 'test' "
        f"WHEN {u} < {heldout_column} THEN 'valid' ELSE 'train' END"
    )


def _check(heldout: float, test_fraction: float) -> None:
    if not 0 <= heldout < 1:
        raise ValueError(f"held-out share {heldout} is not in [0, 1)")
    if not 0 <= test_fraction <= 1:
        raise ValueError(f"test fraction {test_fraction} is not in [0, 1]")
