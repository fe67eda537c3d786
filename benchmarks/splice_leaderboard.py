"""Put an already generated leaderboard into README.md (between a section's markers), without re-running it.

    python benchmarks/splice_leaderboard.py docs/leaderboard [README.md]
    python benchmarks/splice_leaderboard.py docs/bundled_study --section bundled_study

Reads OUT/leaderboard.json written by `ferlab compare ... --out OUT`; `ferlab compare ... --readme README.md
[--readme-section NAME]` does the same at the end of a run. The section (default `leaderboard`) names the
`<!-- NAME:start -->` / `<!-- NAME:end -->` markers, so each table goes back to its own place. Prints the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ferlab.errors import FerlabError
from ferlab.evaluate.leaderboard import leaderboard_markdown, read_leaderboard, splice_readme


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the folder `ferlab compare --out` wrote (holds leaderboard.json)")
    parser.add_argument("readme", nargs="?", default="README.md", help="the file to splice into (default README.md)")
    parser.add_argument("--section", default="leaderboard", help="marker name of the table's place (default "
                                                                 "leaderboard; the bundled study: bundled_study)")
    args = parser.parse_args(argv)
    try:
        rows, command = read_leaderboard(Path(args.out))
        splice_readme(Path(args.readme), rows, Path(args.out), command=command, section=args.section)
    except FerlabError as err:
        print(f"ferlab: error: {err}", file=sys.stderr)
        return 2
    print(leaderboard_markdown(rows, command=command), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
