"""Put an already generated leaderboard into README.md (between the leaderboard markers), without re-running it.

    python benchmarks/splice_leaderboard.py docs/leaderboard [README.md]

Reads OUT/leaderboard.json written by `ferlab compare ... --out OUT`; `ferlab compare ... --readme README.md`
does the same at the end of a run. Prints the spliced table.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ferlab.errors import FerlabError
from ferlab.evaluate.leaderboard import leaderboard_markdown, read_leaderboard, splice_readme


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, readme = Path(argv[0]), Path(argv[1] if len(argv) > 1 else "README.md")
    try:
        rows, command = read_leaderboard(out)
        splice_readme(readme, rows, out, command=command)
    except FerlabError as err:
        print(f"ferlab: error: {err}", file=sys.stderr)
        return 2
    print(leaderboard_markdown(rows, command=command), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
