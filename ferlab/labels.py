"""The canonical emotion names and every dataset's label map, in one place."""

from __future__ import annotations

__all__ = ["EMOTIONS", "FER2013_CSV_IDS", "LABEL_ALIASES", "canonical_label"]

#: Canonical class order: alphabetical, the order of the Kaggle FER2013 folders.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

#: Label ids of the original FER2013 CSV (`emotion` column). NOT the alphabetical order.
FER2013_CSV_IDS: dict[int, str] = {
    0: "angry",
    1: "disgust",
    2: "fear",
    3: "happy",
    4: "sad",
    5: "surprise",
    6: "neutral",
}

#: Folder names used by other face datasets (CK+, JAFFE, RAF-DB, AffectNet, ...) -> canonical names.
LABEL_ALIASES: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "an": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "di": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "fe": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "ha": "happy",
    "neutral": "neutral",
    "ne": "neutral",
    "calm": "neutral",
    "sad": "sad",
    "sadness": "sad",
    "sa": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "su": "surprise",
    "contempt": "contempt",
}


def canonical_label(name: str) -> str:
    """Map a folder or label name to its canonical emotion; unknown names are kept (lower-cased)."""
    key = name.strip().lower().replace(" ", "_")
    return LABEL_ALIASES.get(key, key)
