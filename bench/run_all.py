"""`make bench`: every benchmark in turn; figures go to bench/results/*.json.
One benchmark alone: `.venv/bin/python -m bench.bench_pubmed` from the repository root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = sorted(p for p in HERE.glob("bench_*.py"))


def main() -> int:
    failed = []
    for bench in BENCHES:
        print(f"== {bench.name}", flush=True)
        # As modules from the repository root, so that `bench.common` imports everywhere.
        module = f"bench.{bench.stem}"
        if subprocess.run([sys.executable, "-m", module], cwd=HERE.parent).returncode != 0:
            failed.append(bench.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
