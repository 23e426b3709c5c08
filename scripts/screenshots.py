"""Write SVG screenshots of the app's main states (the README's pictures).

Run from the repository root: ``python -m scripts.screenshots [DIR] [NAME ...]``.
The states live in :mod:`tests.support.shots`, which the snapshot tests use
too, so the screenshots and the snapshots show the same screens; two runs
write identical files, so a changed file is a changed screen.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from tests.support.shots import SHOTS, capture


def main(argv: list[str] | None = None) -> int:
    """Write every screenshot, or the named ones, into DIR."""
    names = [shot.name for shot in SHOTS]
    parser = argparse.ArgumentParser(
        prog="python -m scripts.screenshots",
        description="Write SVG screenshots of kumotui's main states on the deterministic demo host.",
    )
    parser.add_argument(
        "dir", nargs="?", type=Path, default=Path("screenshots"), help="where to write (default: screenshots/)"
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"only these shots: {', '.join(names)}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(names))
    if unknown:
        parser.error(f"unknown shot {', '.join(unknown)}; choose from {', '.join(names)}")
    args.dir.mkdir(parents=True, exist_ok=True)
    for shot in SHOTS:
        if args.names and shot.name not in args.names:
            continue
        path = args.dir / f"{shot.name}.svg"
        path.write_text(asyncio.run(capture(shot)), encoding="utf-8")
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
