"""The engine's state and logic behind the Rekognition API: collections, indexed faces, and a
cache of analysed images. No HTTP here (that is :mod:`worker.engine.responses`).

Cache: an image is analysed (decoded, faces detected) once per *content*: bytes by their SHA-256,
S3 objects by (bucket, key, version or ETag). Concurrent requests for the same image wait for the
first analysis instead of repeating it, so comparing one upload with N references costs one
detection of the upload and one per reference, however many requests run at once. Embeddings are
computed on first use and stay with the cached faces.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from worker.engine.exceptions import (
    ImageTooLargeException,
    InvalidParameterException,
    InvalidS3ObjectException,
    RekognitionError,
    ResourceAlreadyExistsException,
    ResourceNotFoundException,
)
from worker.engine.models import Analysis, Box, Face, FaceModels, distance, similarity

# Rekognition's limits on image size.
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_S3_OBJECT_BYTES = 15 * 1024 * 1024
# CompareFaces looks at the largest 100 faces of the target image.
MAX_COMPARE_TARGET_FACES = 100
# IndexFaces indexes at most 100 faces per call.
MAX_INDEX_FACES = 100
# Cache bound: analysed images kept, and faces held across them (an unembedded face holds a
# 67 KB chip, so at most about 70 MB of chips).
CACHE_MAX_IMAGES = 512
CACHE_MAX_FACES = 1024
# What the API reports as the model version.
FACE_MODEL_VERSION = "6.0"
DEFAULT_ACCOUNT_ID = "123456789012"


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


class AnalysisCache:
    """LRU of analysed images with single-flight fill (see the module docstring)."""

    def __init__(self, max_images: int = CACHE_MAX_IMAGES, max_faces: int = CACHE_MAX_FACES):
        self._lock = threading.Lock()
        self._slots: OrderedDict[object, _Pending] = OrderedDict()
        self._max_images = max_images
        self._max_faces = max_faces
        self.hits = 0
        self.misses = 0

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
        faces = sum(len(s.result.faces) for s in self._slots.values() if s.result is not None)
        while len(self._slots) > 1 and (
            len(self._slots) > self._max_images or faces > self._max_faces
        ):
            _, slot = self._slots.popitem(last=False)
            faces -= len(slot.result.faces) if slot.result is not None else 0

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()


class RekognitionBackend:
    """Rekognition's face operations over :class:`FaceModels`, with S3 objects read through
    ``s3_client_factory()`` (a boto3 S3 client; built once, on first use)."""

    def __init__(
        self,
        s3_client_factory: Callable[[], Any],
        region: str = "us-east-1",
        account_id: str = DEFAULT_ACCOUNT_ID,
        models: FaceModels | None = None,
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.cache = AnalysisCache()
        self.collections: dict[str, Collection] = {}
        self._models = models
        self._s3_factory = s3_client_factory
        self._s3: Any = None
        self._lock = threading.RLock()

    # -- images ---------------------------------------------------------------------------

    @property
    def models(self) -> FaceModels:
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
        self, source: ImageSource, target: ImageSource, threshold: float
    ) -> tuple[Face, list[Match], list[Face]]:
        """Largest source face against the target's largest 100: (source face, matches at or
        above ``threshold`` best first, the other target faces)."""
        source_face = self._largest_face(source, "source")
        targets = list(self.analyse(target).faces[:MAX_COMPARE_TARGET_FACES])
        self.models.embed(targets)
        matches: list[Match] = []
        unmatched: list[Face] = []
        for face in targets:
            score = similarity(distance(source_face, face))
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
    ) -> tuple[list[IndexedFace], list[Face]]:
        """Index the largest ``max_faces`` faces: (indexed, left out for EXCEEDS_MAX_FACES)."""
        collection = self.get_collection(collection_id)
        faces = list(self.analyse(image).faces)
        limit = min(max_faces or MAX_INDEX_FACES, MAX_INDEX_FACES)
        kept, dropped = faces[:limit], faces[limit:]
        self.models.embed(kept)
        image_id = str(uuid.uuid5(uuid.NAMESPACE_OID, _image_identity(image)))
        records = [
            IndexedFace(str(uuid.uuid4()), image_id, external_image_id, f.box, f.confidence, f)
            for f in kept
        ]
        with self._lock:
            for record in records:
                collection.faces[record.face_id] = record
        return records, dropped

    def list_faces(self, collection_id: str) -> list[IndexedFace]:
        collection = self.get_collection(collection_id)
        with self._lock:
            return sorted(collection.faces.values(), key=lambda record: record.face_id)

    def delete_faces(self, collection_id: str, face_ids: list[str]) -> list[str]:
        collection = self.get_collection(collection_id)
        with self._lock:
            return [fid for fid in face_ids if collection.faces.pop(fid, None) is not None]

    def search_faces_by_image(
        self, collection_id: str, image: ImageSource, threshold: float, max_faces: int
    ) -> tuple[Face, list[tuple[float, IndexedFace]]]:
        """The largest face of ``image`` against the collection: (searched face, best matches)."""
        collection = self.get_collection(collection_id)
        searched = self._largest_face(image, "search")
        with self._lock:
            records = list(collection.faces.values())
        scored = [(similarity(distance(searched, r.face)), r) for r in records]
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
