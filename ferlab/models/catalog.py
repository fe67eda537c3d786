"""The zoo at a glance: one summary row per registered model (size, cost, input), as data, text or Markdown.

Torch models are built and measured; classical baselines (`hog_svm`, `landmark_svm`) are listed after them with no
parameter count or MFLOPs, because their size is only known once fitted on data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from ferlab.errors import ModelError

__all__ = ["ModelSummary", "summarize", "summarize_classical", "catalog", "format_catalog"]


@dataclass(frozen=True)
class ModelSummary:
    """One row of `ferlab models` (also its `--json` object)."""

    name: str
    family: str
    params: int | None  # None for a classical baseline (its size depends on the data it is fitted on)
    mflops: float | None  # forward FLOPs (2 x multiply-adds) / 1e6 for one image at `input_size`; None: classical
    input_size: tuple[int, int, int]
    description: str

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(name: str, **kwargs: object) -> ModelSummary:
    """Build `name` with default options (plus `kwargs`) and measure it."""
    import torch

    from ferlab.models._registry import create_model
    from ferlab.models.profile import count_params, mflops

    with torch.random.fork_rng():  # building initialises weights: leave the caller's RNG alone
        model = create_model(name, **kwargs)
    cfg = model.ferlab_cfg
    return ModelSummary(name, cfg.family, count_params(model), round(mflops(model, cfg.input_size), 1),
                        tuple(cfg.input_size), cfg.description)


def summarize_classical(name: str) -> ModelSummary:
    """The row of a classical baseline: family, description and the 48x48 grayscale faces it is trained on."""
    from ferlab.models.classical import get_classical_spec

    spec = get_classical_spec(name)
    return ModelSummary(name, spec.family, None, None, (1, 48, 48), spec.description)


def catalog(pattern: str = "*", progress: bool = False) -> list[ModelSummary]:
    """Summaries of every model matching `pattern` (shell-style), torch models first; ModelError when none matches."""
    from ferlab.models._registry import list_models
    from ferlab.models.classical import list_classical

    names = list_models(pattern)
    classical = list_classical(pattern)
    if not names and not classical:
        known = ", ".join(list_models() + list_classical())
        raise ModelError(f"no model matches '{pattern}'; known: {known}")
    if progress:
        from tqdm import tqdm

        names = tqdm(names, desc="models", unit="model", leave=False)
    return [summarize(n) for n in names] + [summarize_classical(n) for n in classical]


def _cells(row: ModelSummary) -> list[str]:
    c, h, w = row.input_size
    params = "-" if row.params is None else f"{row.params / 1e6:.2f} M"
    mflops = "-" if row.mflops is None else f"{row.mflops:,.1f}"
    return [row.name, row.family, params, mflops, f"{c}x{h}x{w}", row.description]


_HEADER = ["name", "family", "params", "MFLOPs", "input", "description"]


def format_catalog(rows: Iterable[ModelSummary], markdown: bool = False) -> str:
    """Aligned text table (terminal) or a Markdown table (README)."""
    table = [_cells(r) for r in rows]
    if markdown:
        lines = ["| " + " | ".join(_HEADER) + " |", "|" + "---|" * 2 + "---:|" * 2 + "---|---|"]
        return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in table]) + "\n"
    widths = [max(len(x) for x in col) for col in zip(_HEADER, *table, strict=False)]
    right = {2, 3}

    def line(cells: list[str]) -> str:
        out = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(out).rstrip()

    return "\n".join([line(_HEADER)] + [line(c) for c in table]) + "\n"
