"""The engine's state and logic behind the Rekognition API: collections, indexed faces, and a
cache of analysed images. No HTTP here (that is :mod:`worker.local.engine.responses`).

Cache: an image is analysed (decoded, faces detected) once per *content*: bytes by their SHA-256,
S3 objects by (bucket, key, version or ETag). Concurrent requests for the same image wait for the
first analysis instead of repeating it, so comparing one upload with N references costs one
detection of the upload and one per reference, however many requests run at once. Embeddings are
computed on first use and stay with the cached faces. The cache holds at most
:data:`CACHE_MAX_BYTES` (estimated by :func:`face_bytes`), least recently used out first; a
collection keeps of an indexed face only what a search needs (:func:`searchable`).
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from worker.local.engine.exceptions import (
    ImageTooLargeException,
    InvalidParameterException,
    InvalidS3ObjectException,
    RekognitionError,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from worker.local.engine.models import Analysis, Box, Face, FaceModels

# Rekognition's limits on image size.
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_S3_OBJECT_BYTES = 15 * 1024 * 1024
# CompareFaces looks at the largest 100 faces of the target image.
MAX_COMPARE_TARGET_FACES = 100
# IndexFaces indexes at most 100 faces per call.
MAX_INDEX_FACES = 100
# Cache bound: the bytes the cached analyses hold, as :func:`face_bytes` estimates them;
# least recently used first out. A face holds about 17 KB once embedded (its attribute chips and
# embedding) and 84 KB before (the 150 px chip the embedding is computed from), so 64 MB is some
# 3,700 embedded single-face photos, or 750 that were only detected.
CACHE_MAX_BYTES = 64 * 1024 * 1024
# What a face and a cache entry hold besides their arrays' bytes (the Python objects: Face, Box,
# landmarks; the slot, its key and event). Measured with tracemalloc on 59 corpus photos, 89
# faces: 1,350 bytes a face (tests/engine/test_cache.py checks the estimate against it).
FACE_OVERHEAD_BYTES = 1_536
ENTRY_OVERHEAD_BYTES = 1_024
# What the API reports as the model version.
FACE_MODEL_VERSION = "6.0"
DEFAULT_ACCOUNT_ID = "123456789012"


@dataclass(frozen=True)
class QualityBar:
    """What a face needs to pass a ``QualityFilter`` level (see :func:`quality_reasons`)."""

    min_confidence: float
    min_width_px: float  # face box width in the original image
    min_sharpness: float
    min_brightness: float
    max_pose: float  # |Yaw| and |Pitch|, degrees


# QualityFilter levels. AUTO is LOW: on ../shared/faces every real face passes LOW (sharpness
# 5th percentile 9.7, brightness 34), and references must not be refused for a slight blur.
QUALITY_BARS = {
    "LOW": QualityBar(0.0, 20, 2.0, 5.0, 75.0),
    "MEDIUM": QualityBar(0.0, 40, 5.0, 10.0, 60.0),
    "HIGH": QualityBar(96.0, 60, 15.0, 20.0, 45.0),
}
QUALITY_BARS["AUTO"] = QUALITY_BARS["LOW"]


def quality_reasons(face: Face, image_width: int, level: str) -> list[str]:
    """The ``UnindexedFaces`` reasons for which ``face`` fails ``level`` ([] if it passes)."""
    bar = QUALITY_BARS.get(level)
    if bar is None:  # NONE
        return []
    checks = [
        ("LOW_CONFIDENCE", face.confidence < bar.min_confidence),
        ("SMALL_BOUNDING_BOX", face.box.width * image_width < bar.min_width_px),
        ("EXTREME_POSE", max(abs(face.yaw), abs(face.pitch)) > bar.max_pose),
        ("LOW_SHARPNESS", face.sharpness < bar.min_sharpness),
        ("LOW_BRIGHTNESS", face.brightness < bar.min_brightness),
    ]
    return [reason for reason, failed in checks if failed]


@dataclass(frozen=True)
class ImageSource:
    """An ``Image`` parameter: either ``data`` (Bytes) or an S3 object."""

    data: bytes | None = None
    bucket: str | None = None
    key: str | None = None
    version: str | None = None


@dataclass
class IndexedFace:
    face_id: str
    image_id: str
    external_image_id: str | None
    box: Box
    confidence: float
    face: Face


@dataclass
class Collection:
    collection_id: str
    arn: str
    created: float
    faces: dict[str, IndexedFace] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    similarity: float
    face: Face


class _Pending:
    """A cache slot: filled once by the first caller, awaited by the others."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Analysis | None = None
        self.error: BaseException | None = None

    def nbytes(self) -> int:
        """What this slot holds now (estimated; an embedding drops a face's chip)."""
        faces = self.result.faces if self.result is not None else ()
        return ENTRY_OVERHEAD_BYTES + sum(face_bytes(face) for face in faces)


def _arrays(value: object) -> list[Any]:
    """The arrays a face's field holds: itself, or those in a tuple (the attribute chips)."""
    items = value if isinstance(value, tuple) else (value,)
    return [item for item in items if hasattr(item, "nbytes")]


def face_bytes(face: Face) -> int:
    """The bytes ``face`` holds: the ``nbytes`` of every array among its fields (chips,
    embedding) and :data:`FACE_OVERHEAD_BYTES` for the rest."""
    arrays = (array for member in fields(face) for array in _arrays(getattr(face, member.name)))
    return FACE_OVERHEAD_BYTES + sum(int(array.nbytes) for array in arrays)


def searchable(face: Face) -> Face:
    """What a collection keeps of an indexed face: a copy with its embedding, box and measures
    but none of the chips the analysis cut for the networks (some 15 KB a face)."""
    chips: dict[str, Any] = {
        member.name: None
        for member in fields(face)
        if member.name != "embedding" and _arrays(getattr(face, member.name))
    }
    return replace(face, **chips)


class AnalysisCache:
    """LRU of analysed images with single-flight fill (see the module docstring), bounded by
    the bytes its entries hold (:data:`CACHE_MAX_BYTES`).

    Entries are measured when an analysis is added, all of them (a face's size falls once it is
    embedded), and the least recently used are dropped until the rest fit; an entry still being
    analysed is never dropped (its waiters are on it), nor counted beyond its overhead.
    """

    def __init__(self, max_bytes: int = CACHE_MAX_BYTES) -> None:
        self._lock = threading.Lock()
        self._slots: OrderedDict[object, _Pending] = OrderedDict()
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self.evictions = 0

    def get(self, key: object, compute: Callable[[], Analysis]) -> Analysis:
        with self._lock:
            slot = self._slots.get(key)
            owner = slot is None
            if slot is None:
                slot = self._slots[key] = _Pending()
                self.misses += 1
            else:
                self._slots.move_to_end(key)
                self.hits += 1
        if owner:
            self._fill(key, slot, compute)
        slot.done.wait()
        if slot.error is not None:
            raise slot.error
        assert slot.result is not None
        return slot.result

    def _fill(self, key: object, slot: _Pending, compute: Callable[[], Analysis]) -> None:
        forget = True  # unless the outcome is a property of the image
        try:
            slot.result = compute()
            forget = False
        except RekognitionError as exc:
            # A fresh copy: the original's traceback holds the image bytes alive.
            slot.error = type(exc)(exc.message)
            forget = False
        except Exception as exc:  # noqa: BLE001 - re-raised to every waiter, not remembered
            slot.error = exc
        finally:
            if slot.result is None and slot.error is None:  # interrupted: let waiters fail
                slot.error = RuntimeError("image analysis was interrupted")
            slot.done.set()
            with self._lock:
                if forget and self._slots.get(key) is slot:
                    del self._slots[key]
                self._evict()

    def _evict(self) -> None:
        sizes = {key: slot.nbytes() for key, slot in self._slots.items()}
        held = sum(sizes.values())
        for key in list(self._slots):  # least recently used first
            if held <= self.max_bytes:
                break
            if self._slots[key].done.is_set():
                del self._slots[key]
                held -= sizes[key]
                self.evictions += 1

    def nbytes(self) -> int:
        """The bytes the entries hold now (estimated, as the bound counts them)."""
        with self._lock:
            return sum(slot.nbytes() for slot in self._slots.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._slots)

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()


class FaceDecoder(Protocol):
    """What the backend needs of a face model: :class:`FaceModels` (dlib) unless another is
    given, such as the tests' coloured squares (tests/support/squares.py)."""

    def analyse(self, data: bytes) -> Analysis:
        """Decode ``data`` and detect its faces, largest first (raising the API's errors)."""
        ...

    def embed(self, faces: list[Face]) -> None:
        """Prepare ``faces`` for :meth:`similarity` (idempotent)."""
        ...

    def similarity(self, a: Face, b: Face) -> float:
        """Rekognition-style similarity, 0-100, of two embedded faces."""
        ...


class RekognitionBackend:
    """Rekognition's face operations over a :class:`FaceDecoder` (``models``; default dlib's
    :class:`FaceModels`, loaded on first use), with S3 objects read through
    ``s3_client_factory()`` (a boto3 S3 client; built once, on first use)."""

    def __init__(
        self,
        s3_client_factory: Callable[[], Any],
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT_ID,
        models: FaceDecoder | None = None,
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.cache = AnalysisCache()
        self.collections: dict[str, Collection] = {}
        self._models: FaceDecoder | None = models
        self._s3_factory = s3_client_factory
        self._s3: Any = None
        self._lock = threading.RLock()

    # -- images ---------------------------------------------------------------------------

    @property
    def models(self) -> FaceDecoder:
        with self._lock:
            if self._models is None:
                self._models = FaceModels()
            return self._models

    def analyse(self, image: ImageSource) -> Analysis:
        """The (cached) analysis of an image parameter."""
        if image.data is not None:
            data = image.data
            if len(data) > MAX_IMAGE_BYTES:
                raise ImageTooLargeException("Image size is too large.")
            digest = hashlib.sha256(data).hexdigest()
            return self.cache.get(("sha256", digest), lambda: self.models.analyse(data))
        return self._analyse_s3(image)

    def _s3_client(self) -> Any:
        with self._lock:
            if self._s3 is None:
                self._s3 = self._s3_factory()
            return self._s3

    def _analyse_s3(self, image: ImageSource) -> Analysis:
        s3 = self._s3_client()
        extra = {"VersionId": image.version} if image.version else {}
        unreadable = InvalidS3ObjectException(
            "Unable to get object metadata from S3. Check object key, region and/or access permissions."
        )
        try:
            head = s3.head_object(Bucket=image.bucket, Key=image.key, **extra)
        except (ClientError, BotoCoreError) as exc:
            raise unreadable from exc
        if head["ContentLength"] > MAX_S3_OBJECT_BYTES:
            raise ImageTooLargeException("Image size is too large.")
        tag = image.version or head.get("VersionId") or head["ETag"]

        def load() -> Analysis:
            try:
                body = s3.get_object(
                    Bucket=image.bucket, Key=image.key, IfMatch=head["ETag"], **extra
                )
                data = body["Body"].read()
            except (ClientError, BotoCoreError) as exc:
                raise unreadable from exc
            return self.models.analyse(data)

        return self.cache.get(("s3", image.bucket, image.key, tag), load)

    def _largest_face(self, image: ImageSource, what: str) -> Face:
        analysis = self.analyse(image)
        if not analysis.faces:
            raise InvalidParameterException(f"There are no faces in the {what} image.")
        face = analysis.faces[0]
        self.models.embed([face])
        return face

    # -- face operations ------------------------------------------------------------------

    def detect_faces(self, image: ImageSource) -> Analysis:
        return self.analyse(image)

    def compare_faces(
        self,
        source: ImageSource,
        target: ImageSource,
        threshold: float,
        quality_filter: str = "NONE",
    ) -> tuple[Face, list[Match], list[Face]]:
        """Largest source face against the target's largest 100 (those passing
        ``quality_filter``): (source face, matches at or above ``threshold`` best first, the
        other target faces).

        No face in the target is InvalidParameterException, as the API reference says ("If no
        faces are detected in the source or target images, CompareFaces returns an
        InvalidParameterException error", API_CompareFaces).
        """
        source_face = self._largest_face(source, "source")
        analysis = self.analyse(target)
        if not analysis.faces:
            raise InvalidParameterException("There are no faces in the target image.")
        targets = [
            face
            for face in analysis.faces[:MAX_COMPARE_TARGET_FACES]
            if not quality_reasons(face, analysis.width, quality_filter)
        ]
        self.models.embed(targets)
        matches: list[Match] = []
        unmatched: list[Face] = []
        for face in targets:
            score = self.models.similarity(source_face, face)
            if score >= threshold:
                matches.append(Match(score, face))
            else:
                unmatched.append(face)
        matches.sort(key=lambda match: match.similarity, reverse=True)
        return source_face, matches, unmatched

    # -- collections ----------------------------------------------------------------------

    def create_collection(self, collection_id: str) -> Collection:
        with self._lock:
            if collection_id in self.collections:
                raise ResourceAlreadyExistsException(
                    f"The collection id: {collection_id} already exists"
                )
            arn = f"aws:rekognition:{self.region}:{self.account_id}:collection/{collection_id}"
            collection = Collection(collection_id, arn, time.time())
            self.collections[collection_id] = collection
            return collection

    def get_collection(self, collection_id: str) -> Collection:
        with self._lock:
            collection = self.collections.get(collection_id)
        if collection is None:
            raise ResourceNotFoundException(f"The collection id: {collection_id} does not exist")
        return collection

    def delete_collection(self, collection_id: str) -> None:
        with self._lock:
            self.get_collection(collection_id)
            del self.collections[collection_id]

    def list_collections(self) -> list[str]:
        with self._lock:
            return sorted(self.collections)

    def index_faces(
        self,
        collection_id: str,
        image: ImageSource,
        external_image_id: str | None,
        max_faces: int | None,
        quality_filter: str = "AUTO",
    ) -> tuple[list[IndexedFace], list[tuple[Face, list[str]]]]:
        """Index the largest ``max_faces`` faces passing ``quality_filter``: (indexed, the
        others with their ``UnindexedFaces`` reasons)."""
        collection = self.get_collection(collection_id)
        analysis = self.analyse(image)
        dropped: list[tuple[Face, list[str]]] = []
        passing: list[Face] = []
        for face in analysis.faces:
            reasons = quality_reasons(face, analysis.width, quality_filter)
            if reasons:
                dropped.append((face, reasons))
            else:
                passing.append(face)
        limit = min(max_faces or MAX_INDEX_FACES, MAX_INDEX_FACES)
        kept = passing[:limit]
        dropped += [(face, ["EXCEEDS_MAX_FACES"]) for face in passing[limit:]]
        self.models.embed(kept)
        image_id = str(uuid.uuid5(uuid.NAMESPACE_OID, _image_identity(image)))
        records = [
            IndexedFace(str(uuid.uuid4()), image_id, external_image_id, f.box, f.confidence, f)
            for f in kept
        ]
        with self._lock:
            for record in records:  # the caller answers with the full faces (their chips)
                collection.faces[record.face_id] = replace(record, face=searchable(record.face))
        return records, dropped

    def list_faces(self, collection_id: str) -> list[IndexedFace]:
        collection = self.get_collection(collection_id)
        with self._lock:
            return sorted(collection.faces.values(), key=lambda record: record.face_id)

    def delete_faces(self, collection_id: str, face_ids: list[str]) -> tuple[list[str], list[str]]:
        """(deleted face ids, face ids not in the collection), each in request order."""
        collection = self.get_collection(collection_id)
        with self._lock:
            deleted = [fid for fid in face_ids if collection.faces.pop(fid, None) is not None]
        gone = set(deleted)
        return deleted, [fid for fid in dict.fromkeys(face_ids) if fid not in gone]

    def search_faces(
        self, collection_id: str, face_id: str, threshold: float, max_faces: int
    ) -> list[tuple[float, IndexedFace]]:
        """The indexed face ``face_id`` against the rest of its collection, best first."""
        collection = self.get_collection(collection_id)
        with self._lock:
            searched = collection.faces.get(face_id)
            records = [r for r in collection.faces.values() if r.face_id != face_id]
        if searched is None:
            raise InvalidParameterException(
                f"Face ID {face_id} does not exist in collection {collection_id}"
            )
        scored = [(self.models.similarity(searched.face, r.face), r) for r in records]
        scored = [pair for pair in scored if pair[0] >= threshold]
        scored.sort(key=lambda pair: pair[0], reverse=True)
        return scored[:max_faces]

    def search_faces_by_image(
        self, collection_id: str, image: ImageSource, threshold: float, max_faces: int
    ) -> tuple[Face, list[tuple[float, IndexedFace]]]:
        """The largest face of ``image`` against the collection: (searched face, best matches)."""
        collection = self.get_collection(collection_id)
        searched = self._largest_face(image, "search")
        with self._lock:
            records = list(collection.faces.values())
        scored = [(self.models.similarity(searched, r.face), r) for r in records]
        scored = [pair for pair in scored if pair[0] >= threshold]
        scored.sort(key=lambda pair: pair[0], reverse=True)
        return searched, scored[:max_faces]

    def reset(self) -> None:
        with self._lock:
            self.collections.clear()
        self.cache.clear()


def _image_identity(image: ImageSource) -> str:
    if image.data is not None:
        return hashlib.sha256(image.data).hexdigest()
    return f"s3://{image.bucket}/{image.key}?{image.version or ''}"
