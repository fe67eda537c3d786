"""Class schemes: the 7 emotions, the reduced 4- and 2-class problems, and custom merges."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ferlab.errors import ConfigError
from ferlab.labels import EMOTIONS, canonical_label

__all__ = ["ClassScheme", "PRESETS", "resolve_scheme"]


@dataclass(frozen=True)
class ClassScheme:
    """Target classes, each the merge of one or more source classes; unlisted source classes are dropped."""

    name: str
    groups: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(target for target, _ in self.groups)

    def map_labels(self, labels: np.ndarray, source_classes: tuple[str, ...]) -> np.ndarray:
        """Map labels indexing `source_classes` to indices into `self.classes`; -1 for dropped samples."""
        lookup = np.full(len(source_classes) + 1, -1, dtype=np.int64)  # last slot: unlabelled (-1)
        known = {c: i for i, c in enumerate(source_classes)}
        matched = False
        for target_idx, (_, members) in enumerate(self.groups):
            for member in members:
                if member in known:
                    lookup[known[member]] = target_idx
                    matched = True
        if not matched:
            raise ConfigError(f"class scheme '{self.name}' shares no class with the data ({', '.join(source_classes)})")
        labels = np.asarray(labels, dtype=np.int64)
        return lookup[np.where(labels < 0, len(source_classes), labels)]


def _identity(name: str, classes: tuple[str, ...]) -> ClassScheme:
    return ClassScheme(name, tuple((c, (c,)) for c in classes))


#: Presets. 4-class = angry, happy, neutral, sad (the four most frequent, well-separated basic emotions
#: studied in reduced FER2013 work); 2-class = angry vs happy (the usual binary valence benchmark).
PRESETS: dict[str, ClassScheme] = {
    "7": _identity("7", EMOTIONS),
    "4": _identity("4", ("angry", "happy", "neutral", "sad")),
    "2": _identity("2", ("angry", "happy")),
    "valence": ClassScheme(
        "valence",
        (("negative", ("angry", "disgust", "fear", "sad")), ("neutral", ("neutral",)), ("positive", ("happy",))),
    ),
}


def resolve_scheme(spec: str | ClassScheme | None) -> ClassScheme:
    """A preset (`7`, `4`, `2`, `valence`), a class list (`angry,happy`) or merges (`pos=happy,surprise;neg=sad`)."""
    if spec is None:
        return PRESETS["7"]
    if isinstance(spec, ClassScheme):
        return spec
    text = spec.strip()
    if text in PRESETS:
        return PRESETS[text]
    groups: list[tuple[str, tuple[str, ...]]] = []
    parts = [p for p in text.split(";") if p.strip()] if ("=" in text) else [c for c in text.split(",") if c.strip()]
    for part in parts:
        if "=" in part:
            target, _, members_text = part.partition("=")
            members = tuple(canonical_label(m) for m in members_text.split(",") if m.strip())
            target = target.strip()
        else:
            target = canonical_label(part)
            members = (target,)
        if not target or not members:
            raise ConfigError(f"bad class scheme part '{part}' in '{spec}' (expected name=class,class)")
        groups.append((target, members))
    targets = [t for t, _ in groups]
    if len(set(targets)) != len(targets):
        raise ConfigError(f"class scheme '{spec}' names a target class twice")
    members_all = [m for _, ms in groups for m in ms]
    if len(set(members_all)) != len(members_all):
        raise ConfigError(f"class scheme '{spec}' puts a class in two groups")
    if len(groups) < 2:
        raise ConfigError(f"class scheme '{spec}' leaves fewer than 2 classes")
    return ClassScheme(text, tuple(groups))
