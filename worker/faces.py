"""Small frozen value types of the data path: boxes, faces, references, matches. No I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Box:
    """A face's bounding box as ratios of the image (Rekognition's BoundingBox)."""

    left: float
    top: float
    width: float
    height: float

    @classmethod
    def from_rekognition(cls, box: Any) -> Box:
        return cls(
            left=float(box.get("Left", 0.0)),
            top=float(box.get("Top", 0.0)),
            width=float(box.get("Width", 0.0)),
            height=float(box.get("Height", 0.0)),
        )

    def rounded(self) -> Box:
        """The box to 4 decimals, as result records carry it."""
        return Box(
            left=round(self.left, 4),
            top=round(self.top, 4),
            width=round(self.width, 4),
            height=round(self.height, 4),
        )

    def to_json(self) -> dict[str, float]:
        box = self.rounded()
        return {"left": box.left, "top": box.top, "width": box.width, "height": box.height}

    @classmethod
    def from_json(cls, doc: Any) -> Box:
        return cls(
            left=float(doc["left"]),
            top=float(doc["top"]),
            width=float(doc["width"]),
            height=float(doc["height"]),
        )


@dataclass(frozen=True)
class Reference:
    """One reference photo: the label it stands for and the object that holds it."""

    label: str
    key: str
    etag: str


@dataclass(frozen=True)
class Candidate:
    """One face of the upload that a reference matched, at some similarity."""

    label: str
    reference_key: str
    similarity: float
    face: Box
