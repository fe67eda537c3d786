"""`ferlab` entry point: builds the parser from the command modules and turns user errors into one line."""

from __future__ import annotations

import argparse
import importlib
import sys
import typing
import warnings
from collections.abc import Sequence

from ferlab import __version__
from ferlab.errors import FerlabError

__all__ = ["main", "build_parser", "os_error_text"]

#: Command modules under `ferlab.cli`; each exposes `register(subparsers)` which adds its parser(s)
#: and sets `func=callable(args) -> int`. Keep heavy imports (torch, cv2) inside the callables.
COMMAND_MODULES: tuple[str, ...] = (
    "data_cmd",
    "demo_cmd",
    "eval_cmd",
    "explain_cmd",
    "export_cmd",
    "compare_cmd",
    "models_cmd",
    "predict_cmd",
    "serve_cmd",
    "train_cmd",
    "tune_cmd",
    "webcam_cmd",
)


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse keeping the CLI's error contract: a bad flag is one line `ferlab: error: ...` and exit 2, with a
    pointer to --help instead of the usage block."""

    def error(self, message: str) -> typing.NoReturn:
        command = self.prog.removeprefix("ferlab").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"ferlab: error: {where}{message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(prog="ferlab", description="Facial expression recognition toolkit.")
    parser.add_argument("--version", action="version", version=f"ferlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"ferlab.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    plain_format = warnings.formatwarning
    warnings.formatwarning = _one_line_warning
    try:  # building the parser imports every command module: Ctrl-C can land there too
        parser = build_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return int(args.func(args) or 0)
    except FerlabError as err:
        print(f"ferlab: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("ferlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except OSError as err:  # the file system refused a read or write the command's checks could not foresee
        print(f"ferlab: error: {os_error_text(err)}", file=sys.stderr)
        return 1
    finally:
        warnings.formatwarning = plain_format


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      line: str | None = None) -> str:
    """Warnings keep the CLI's one-line style (`ferlab: warning: ...`), without Python's file:line and source."""
    return f"ferlab: warning: {message}\n"


def os_error_text(err: OSError) -> str:
    """One line for a refused file operation: the path and the system's reason, naming the usual cause of
    FileExistsError/NotADirectoryError here, an output folder (`--out`) that is an existing file."""
    from ferlab.io import blocked_folder_message

    path = err.filename
    if path is None:
        return err.strerror or str(err) or type(err).__name__
    blocked = blocked_folder_message(path) if isinstance(err, FileExistsError | NotADirectoryError) else None
    return blocked or f"{path}: {err.strerror or err}"


if __name__ == "__main__":
    raise SystemExit(main())
