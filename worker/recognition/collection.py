"""The ``collection`` strategy: references indexed once into a Rekognition face collection; an
upload costs one DetectFaces plus one SearchFacesByImage per face found, whatever the number of
references.

Each reference photo is indexed with ``ExternalImageId = <sha256(key)[:40]>.<eTag>``: keys may hold
any character while ExternalImageId allows only ``[a-zA-Z0-9_.\\-:]``, and the eTag part makes a
replaced photo a different face. Search hits are mapped back to label and key through the cached
reference list; faces whose reference is gone are deleted at the next sync.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from worker.errors import AlreadyExistsError, NoFaceError, NotFoundError, PermanentError
from worker.faces import Box, Candidate, Reference
from worker.recognition.client import Image, Rekognition
from worker.recognition.crops import crop_face
from worker.recognition.strategy import Begun, Search, StrategyResult
from worker.references import ReferenceCache
from worker.telemetry.logs import get_logger

log = get_logger(__name__)

# Rekognition limits: faces per DeleteFaces call, matches per search.
DELETE_FACES_BATCH = 4096
SEARCH_MAX_FACES = 100
_ETAG_CHARS = re.compile(r"[^a-zA-Z0-9_.\-:]")


def external_id(ref: Reference) -> str:
    digest = hashlib.sha256(ref.key.encode("utf-8", "surrogatepass")).hexdigest()[:40]
    return f"{digest}.{_ETAG_CHARS.sub('', ref.etag)[:64]}"


@dataclass(frozen=True)
class IndexedFace:
    face_id: str
    external_id: str


@dataclass(frozen=True)
class SyncPlan:
    to_index: tuple[Reference, ...]
    to_delete: tuple[str, ...]


def plan_sync(refs: tuple[Reference, ...], indexed: list[IndexedFace]) -> SyncPlan:
    """What to index and what to delete so that the collection holds exactly ``refs``. Pure."""
    wanted = {external_id(ref): ref for ref in refs}
    present = {face.external_id for face in indexed}
    return SyncPlan(
        to_index=tuple(ref for ext, ref in wanted.items() if ext not in present),
        to_delete=tuple(face.face_id for face in indexed if face.external_id not in wanted),
    )


@dataclass(frozen=True)
class SyncReport:
    indexed: int
    deleted: int
    without_face: int
    total: int
    unusable: tuple[tuple[Reference, str], ...] = ()
    """References IndexFaces could not use (it reads the photo alone), with the reason."""


class Collection:
    """The face collection at the edge: create, list, index, delete, search."""

    def __init__(self, rekognition: Rekognition, collection_id: str, bucket: str) -> None:
        self._rek, self.collection_id, self._bucket = rekognition, collection_id, bucket

    def ensure(self) -> None:
        try:
            self._rek.call("describe_collection", CollectionId=self.collection_id)
        except NotFoundError:
            try:
                self._rek.call("create_collection", CollectionId=self.collection_id)
                log.info("collection_created", collection_id=self.collection_id)
            except AlreadyExistsError:
                pass  # another replica created it meanwhile

    def faces(self) -> list[IndexedFace]:
        found: list[IndexedFace] = []
        token: str | None = None
        while True:
            params = {"CollectionId": self.collection_id, "MaxResults": 4096}
            if token:
                params["NextToken"] = token
            page = self._rek.call("list_faces", **params)
            found += [
                IndexedFace(face["FaceId"], face.get("ExternalImageId", ""))
                for face in page.get("Faces", [])
            ]
            token = page.get("NextToken")
            if not token:
                return found

    def index(self, ref: Reference) -> str | None:
        """Index the largest face of ``ref``; its face id, or None when it shows no face."""
        response = self._rek.call(
            "index_faces",
            CollectionId=self.collection_id,
            Image={"S3Object": {"Bucket": self._bucket, "Name": ref.key}},
            ExternalImageId=external_id(ref),
            MaxFaces=1,
            QualityFilter="AUTO",
            DetectionAttributes=[],
        )
        records = response.get("FaceRecords", [])
        return str(records[0]["Face"]["FaceId"]) if records else None

    def delete(self, face_ids: tuple[str, ...]) -> None:
        for start in range(0, len(face_ids), DELETE_FACES_BATCH):
            chunk = list(face_ids[start : start + DELETE_FACES_BATCH])
            self._rek.call("delete_faces", CollectionId=self.collection_id, FaceIds=chunk)

    def search(self, image: Image, threshold: float) -> tuple[Box | None, list[tuple[str, float]]]:
        """The largest face in ``image`` and (external id, similarity) of indexed faces like it."""
        response = self._rek.call(
            "search_faces_by_image",
            CollectionId=self.collection_id,
            Image=image,
            FaceMatchThreshold=threshold,
            MaxFaces=SEARCH_MAX_FACES,
        )
        box = response.get("SearchedFaceBoundingBox")
        return Box.from_rekognition(box) if box else None, [
            (str(match["Face"].get("ExternalImageId", "")), float(match["Similarity"]))
            for match in response.get("FaceMatches", [])
        ]


class CollectionStrategy:
    name = "collection"

    def __init__(
        self,
        collection: Collection,
        references: ReferenceCache,
        load_bytes: Callable[[Image], bytes],
        executor: Executor,
        detect: Callable[[Image], list[Box]],
    ) -> None:
        self._detect = detect
        self._collection = collection
        self._refs = references
        self._load_bytes = load_bytes
        self._executor = executor
        self._lock = threading.Lock()
        self._synced: frozenset[tuple[str, str]] | None = None

    def sync(self, refs: tuple[Reference, ...] | None = None) -> SyncReport:
        """Make the collection hold exactly the bucket's references (idempotent).

        The collection is shared by every replica, so what it must hold is what the bucket lists,
        not what this replica could use: a photo this replica failed to read is never deleted
        from it (only a photo gone from the bucket is).
        """
        refs = self._refs.listed() if refs is None else refs
        self._collection.ensure()
        plan = plan_sync(refs, self._collection.faces())
        if plan.to_delete:
            self._collection.delete(plan.to_delete)
        unusable = tuple(
            (ref, problem)
            for ref, problem in zip(
                plan.to_index, self._executor.map(self._index_one, plan.to_index), strict=True
            )
            if problem is not None
        )
        self._synced = frozenset((r.key, r.etag) for r in refs)
        report = SyncReport(
            indexed=len(plan.to_index) - len(unusable),
            deleted=len(plan.to_delete),
            without_face=len(unusable),
            total=len(refs),
            unusable=unusable,
        )
        if plan.to_index or plan.to_delete:
            log.info(
                "collection_synced",
                indexed=report.indexed,
                deleted=report.deleted,
                without_face=report.without_face,
                total=report.total,
            )
        return report

    def indexed_faces(self) -> dict[str, str]:
        """External id → face id of what the collection holds now (no sync)."""
        return {face.external_id: face.face_id for face in self._collection.faces()}

    def _index_one(self, ref: Reference) -> str | None:
        """Index ``ref``; None when done, else why the photo cannot be a reference."""
        try:
            face_id = self._collection.index(ref)
        except PermanentError as exc:
            log.warning("reference_not_indexed", reference_key=ref.key, error=str(exc))
            return str(exc)
        return None if face_id else "no face found when indexing"

    def detect(self, upload: Image) -> list[Box]:
        return self._detect(upload)

    def begin(self, upload: Image, threshold: float) -> Begun:
        """Bring the collection up to date and start searching the upload's largest face, so
        that DetectFaces runs beside it: 1 + F calls, a single-face upload in one round trip."""
        unusable: tuple[tuple[Reference, str], ...] = ()
        with self._lock:
            if self._synced != frozenset((r.key, r.etag) for r in self._refs.listed()):
                unusable = self.sync().unusable
        skip = {ref.key for ref, _ in unusable}
        refs = tuple(ref for ref in self._refs.get() if ref.key not in skip)
        search = self._executor.submit(self._search, upload, threshold)
        return Begun(self.name, refs, search=search, unusable=unusable)

    def match(
        self, begun: Begun, upload: Image, faces: list[Box], threshold: float
    ) -> StrategyResult:
        """One more search per face the whole-upload search did not cover."""
        refs = begun.refs
        if begun.search is None:  # begun by another strategy: search now
            begun = self.begin(upload, threshold)
        assert begun.search is not None
        largest, hits = begun.search.result()
        if not faces:
            return StrategyResult(
                [], [], references=len(refs), strategy=self.name, unusable=begun.unusable
            )
        searched = [(_closest(faces, largest), hits)] if largest is not None else []
        others = [box for box in faces if not searched or box is not searched[0][0]]
        if others:
            data = self._load_bytes(upload)
            futures = [
                (
                    box,
                    self._executor.submit(self._search, {"Bytes": crop_face(data, box)}, threshold),
                )
                for box in others
            ]
            searched += [(box, future.result()[1]) for box, future in futures]
        by_id = {external_id(ref): ref for ref in refs}
        candidates = [
            Candidate(label=ref.label, reference_key=ref.key, similarity=similarity, face=box)
            for box, found in searched
            for ext, similarity in found
            if (ref := by_id.get(ext)) is not None
        ]
        return StrategyResult(
            faces, candidates, references=len(refs), strategy=self.name, unusable=begun.unusable
        )

    def _search(self, image: Image, threshold: float) -> Search:
        try:
            return self._collection.search(image, threshold)
        except NoFaceError:  # no usable face in what was sent
            return None, []


def _closest(faces: list[Box], target: Box) -> Box:
    """The detected face that a search's SearchedFaceBoundingBox names (by overlap)."""
    return max(faces, key=lambda box: _overlap(box, target))


def _overlap(a: Box, b: Box) -> float:
    width = min(a.left + a.width, b.left + b.width) - max(a.left, b.left)
    height = min(a.top + a.height, b.top + b.height) - max(a.top, b.top)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (a.width * a.height + b.width * b.height - inter)
