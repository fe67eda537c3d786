"""Command-line options shared by several commands, declared once so their spelling and meaning stay the same."""

from __future__ import annotations

import argparse

__all__ = ["add_ensemble_option"]


def add_ensemble_option(parser: argparse.ArgumentParser, model_arg: str) -> None:
    """`--ensemble [MODEL ...]` (read by `ferlab.predict.bundled.model_sources`): absent -> None, bare -> [] (the
    bundled ensemble), paths -> averaged with `model_arg` (the bundled model by default)."""
    parser.add_argument("--ensemble", nargs="*", default=None, metavar="MODEL",
                        help=f"average the probabilities of {model_arg} (default: the bundled model) and these "
                             "models; with no MODEL: the bundled ensemble")
