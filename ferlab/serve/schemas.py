"""Response models of the API: they document the JSON in /docs and /openapi.json."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["Face", "ImageSize", "PredictResponse", "ExplainResponse", "ModelCard", "Health", "ErrorResponse"]


class Face(BaseModel):
    """One detected face; the same fields as a face in `ferlab predict --json`."""

    box: list[int] = Field(description="x, y, width, height in pixels of the uploaded image")
    score: float = Field(description="face detector confidence")
    label: str = Field(description="most probable emotion")
    probs: dict[str, float] = Field(description="probability of each class")


class ImageSize(BaseModel):
    width: int
    height: int


class PredictResponse(BaseModel):
    """Faces found in the upload (an empty list when there is none: that is not an error)."""

    faces: list[Face]
    timing_ms: dict[str, float] = Field(description="decode, inference and total milliseconds")
    image: ImageSize


class ExplainResponse(BaseModel):
    """Why the model chose a label for one face: a heat-map overlay and the share of each facial region."""

    face_index: int
    box: list[int]
    label: str = Field(description="predicted emotion")
    target: str = Field(description="class the heat map explains")
    method: str
    probs: dict[str, float]
    regions: dict[str, float] = Field(description="share of the attribution in each facial region (sums to 1)")
    regions_per_area: dict[str, float] = Field(description="region share divided by region area")
    overlay_png_base64: str = Field(description="PNG of the aligned face with the heat map, base64-encoded")
    timing_ms: dict[str, float]


class ModelCard(BaseModel):
    name: str
    classes: list[str]
    input_size: list[int] = Field(description="channels, height, width of one aligned face")
    metrics: dict[str, float | int | str | None] = Field(default_factory=dict)
    tta: str = Field("none", description="test-time augmentation applied to each face")
    card: str | None = Field(None, description="the bundled model's model card, when it is the one served")


class Health(BaseModel):
    status: str
    model: str
    busy: int = Field(description="requests running or queued")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail
