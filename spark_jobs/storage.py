"""Where lakehouse and output locations live: a local folder, or a URI of another store."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import urlparse

# A scheme of two letters or more: `C:` on Windows is a drive, not a scheme.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")


def is_uri(location: str) -> bool:
    """True for `s3a://…`, `abfss://…`, `dbfs:/…`, `file:/…`; False for plain paths."""
    return bool(_SCHEME.match(location))


def local_path(location: str) -> Path | None:
    """The local folder a location names (plain path or `file:` URI), else None."""
    if not is_uri(location):
        return Path(location)
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return Path(parsed.path)
    return None


def remove_leftovers(folder: Path, *patterns: str) -> list[Path]:
    """Delete what killed runs left in `folder` (staging folders, half-written files) and
    return it. Callers hold their stage's lock, so no live run is writing these."""
    removed = sorted({p for pattern in patterns for p in folder.glob(pattern)})
    for leftover in removed:
        if leftover.is_dir():
            shutil.rmtree(leftover)
        else:
            leftover.unlink(missing_ok=True)
    return removed
