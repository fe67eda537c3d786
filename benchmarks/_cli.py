"""What every benchmark script's entry point shares: bad input ends in one `error:` line and exit 2, not a
traceback (benchmarks take user flags, paths and models like the ferlab CLI does)."""

from __future__ import annotations

import sys
from collections.abc import Callable


def run(main: Callable[[], int | None]) -> None:
    """Call `main` and exit with its code; an exception becomes one line on stderr and exit code 2."""
    try:
        code = main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as err:  # noqa: BLE001 - a benchmark's bad flag, path or model
        print(f"error: {type(err).__name__}: {err}".splitlines()[0], file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(code or 0)
