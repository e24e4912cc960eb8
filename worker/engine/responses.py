"""The Rekognition JSON protocol: a WSGI app with one method per API action.

The action comes from the ``X-Amz-Target: RekognitionService.<Action>`` header, the parameters
from the JSON body (``Bytes`` base64-encoded, as botocore sends them); answers are JSON
(``application/x-amz-json-1.1``) and errors ``{"__type", "Message"}`` with HTTP 400.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from werkzeug.wrappers import Request, Response

from worker.engine.backend import (
    FACE_MODEL_VERSION,
    ImageSource,
    IndexedFace,
    RekognitionBackend,
)
from worker.engine.exceptions import (
    InternalServerError,
    InvalidParameterException,
    RekognitionError,
    SerializationException,
    UnknownOperationException,
    ValidationException,
)
from worker.engine.models import Box, Face

TARGET_PREFIX = "RekognitionService."
CONTENT_TYPE = "application/x-amz-json-1.1"
DEFAULT_THRESHOLD = 80.0
# Page sizes: ListFaces and ListCollections accept MaxResults up to 4096.
MAX_PAGE = 4096
DEFAULT_PAGE = 1000
MAX_SEARCH_FACES = 4096
_PATTERNS = {
    "CollectionId": re.compile(r"[a-zA-Z0-9_.\-]+"),
    "ExternalImageId": re.compile(r"[a-zA-Z0-9_.\-:]+"),
    "FaceId": re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"),
}

log = structlog.get_logger(__name__)

Params = dict[str, Any]


def _box(box: Box) -> dict[str, float]:
    return {"Width": box.width, "Height": box.height, "Left": box.left, "Top": box.top}


def _compared_face(face: Face) -> dict[str, Any]:
    return {
        "BoundingBox": _box(face.box),
        "Confidence": face.confidence,
        "Landmarks": [{"Type": name, "X": x, "Y": y} for name, (x, y) in face.landmarks.items()],
        "Pose": {"Roll": face.roll, "Yaw": 0.0, "Pitch": 0.0},
    }


def _face_record(record: IndexedFace) -> dict[str, Any]:
    face: dict[str, Any] = {
        "FaceId": record.face_id,
        "BoundingBox": _box(record.box),
        "ImageId": record.image_id,
        "Confidence": record.confidence,
        "IndexFacesModelVersion": FACE_MODEL_VERSION,
    }
    if record.external_image_id is not None:
        face["ExternalImageId"] = record.external_image_id
    return face


def _validation(field: str, value: object, constraint: str) -> ValidationException:
    return ValidationException(
        f"1 validation error detected: Value {value!r} at '{field[0].lower() + field[1:]}' "
        f"failed to satisfy constraint: Member must {constraint}"
    )


def _string(params: Params, name: str, *, required: bool = True) -> str | None:
    value = params.get(name)
    if value is None:
        if required:
            raise _validation(name, None, "not be null")
        return None
    if not isinstance(value, str):
        raise SerializationException(f"{name} must be a string")
    pattern = _PATTERNS.get(name)
    if not 1 <= len(value) <= 255 and name != "FaceId":
        raise _validation(name, value, "have length between 1 and 255")
    if pattern is not None and not pattern.fullmatch(value):
        raise _validation(name, value, f"satisfy regular expression pattern: {pattern.pattern}")
    return value


def _number(params: Params, name: str, default: float, low: float, high: float) -> float:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SerializationException(f"{name} must be a number")
    if not low <= value <= high:
        raise InvalidParameterException(f"{name} must be between {low:g} and {high:g}")
    return float(value)


def _image(params: Params, name: str) -> ImageSource:
    image = params.get(name)
    if not isinstance(image, dict) or ("Bytes" in image) == ("S3Object" in image):
        raise InvalidParameterException(f"{name} must have exactly one of Bytes or S3Object")
    if "Bytes" in image:
        try:
            data = base64.b64decode(image["Bytes"], validate=True)
        except (binascii.Error, TypeError, ValueError) as exc:
            raise SerializationException(f"{name}.Bytes is not valid base64") from exc
        if not data:
            raise _validation(f"{name}.bytes", "", "have length greater than or equal to 1")
        return ImageSource(data=data)
    s3 = image["S3Object"]
    if not isinstance(s3, dict) or not s3.get("Bucket") or not s3.get("Name"):
        raise InvalidParameterException(f"{name}.S3Object needs Bucket and Name")
    return ImageSource(bucket=s3["Bucket"], key=s3["Name"], version=s3.get("Version"))


def _page(
    items: list[Any], params: Params, ident: Callable[[Any], str]
) -> tuple[list[Any], str | None]:
    """One page of ``items`` (sorted by ``ident``) after ``NextToken`` (the last id returned)."""
    size = int(_number(params, "MaxResults", DEFAULT_PAGE, 0, MAX_PAGE)) or DEFAULT_PAGE
    token = params.get("NextToken")
    if token is not None:
        items = [item for item in items if ident(item) > token]
    page = items[:size]
    return page, (ident(page[-1]) if len(items) > size else None)


class RekognitionResponse:
    """WSGI application answering Rekognition API calls from a :class:`RekognitionBackend`."""

    def __init__(self, backend: RekognitionBackend) -> None:
        self.backend = backend
        self._actions: dict[str, Callable[[Params], Params]] = {
            "CompareFaces": self.compare_faces,
            "DetectFaces": self.detect_faces,
            "CreateCollection": self.create_collection,
            "DeleteCollection": self.delete_collection,
            "DescribeCollection": self.describe_collection,
            "ListCollections": self.list_collections,
            "IndexFaces": self.index_faces,
            "ListFaces": self.list_faces,
            "DeleteFaces": self.delete_faces,
            "SearchFacesByImage": self.search_faces_by_image,
        }

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        target = request.headers.get("X-Amz-Target", "")
        action = target.removeprefix(TARGET_PREFIX)
        try:
            handler = self._actions.get(action) if target.startswith(TARGET_PREFIX) else None
            if handler is None:
                raise UnknownOperationException(f"Unknown operation {target!r}")
            try:
                params = json.loads(request.get_data() or b"{}")
            except ValueError as exc:
                raise SerializationException("The request body is not valid JSON") from exc
            if not isinstance(params, dict):
                raise SerializationException("The request body must be a JSON object")
            body, status = json.dumps(handler(params)).encode(), 200
        except RekognitionError as exc:
            log.info("rekognition.error", action=action, code=exc.code, message=exc.message)
            body, status = exc.body(), exc.status
        except Exception:
            log.exception("rekognition.failed", action=action)
            error = InternalServerError("Internal server error")
            body, status = error.body(), error.status
        response = Response(body, status=status, content_type=CONTENT_TYPE)
        return response(environ, start_response)

    # -- actions ------------------------------------------------------------------------------

    def compare_faces(self, params: Params) -> Params:
        threshold = _number(params, "SimilarityThreshold", DEFAULT_THRESHOLD, 0, 100)
        source = _image(params, "SourceImage")
        target = _image(params, "TargetImage")
        source_face, matches, unmatched = self.backend.compare_faces(source, target, threshold)
        return {
            "SourceImageFace": {
                "BoundingBox": _box(source_face.box),
                "Confidence": source_face.confidence,
            },
            "FaceMatches": [
                {"Similarity": m.similarity, "Face": _compared_face(m.face)} for m in matches
            ],
            "UnmatchedFaces": [_compared_face(face) for face in unmatched],
        }

    def detect_faces(self, params: Params) -> Params:
        analysis = self.backend.detect_faces(_image(params, "Image"))
        return {"FaceDetails": [_compared_face(face) for face in analysis.faces]}

    def create_collection(self, params: Params) -> Params:
        collection = self.backend.create_collection(str(_string(params, "CollectionId")))
        return {
            "StatusCode": 200,
            "CollectionArn": collection.arn,
            "FaceModelVersion": FACE_MODEL_VERSION,
        }

    def delete_collection(self, params: Params) -> Params:
        self.backend.delete_collection(str(_string(params, "CollectionId")))
        return {"StatusCode": 200}

    def describe_collection(self, params: Params) -> Params:
        collection = self.backend.get_collection(str(_string(params, "CollectionId")))
        return {
            "FaceCount": len(collection.faces),
            "FaceModelVersion": FACE_MODEL_VERSION,
            "CollectionARN": collection.arn,
            "CreationTimestamp": collection.created,
            "UserCount": 0,
        }

    def list_collections(self, params: Params) -> Params:
        page, token = _page(self.backend.list_collections(), params, str)
        result: Params = {
            "CollectionIds": page,
            "FaceModelVersions": [FACE_MODEL_VERSION] * len(page),
        }
        if token:
            result["NextToken"] = token
        return result

    def index_faces(self, params: Params) -> Params:
        collection_id = str(_string(params, "CollectionId"))
        external = _string(params, "ExternalImageId", required=False)
        max_faces = params.get("MaxFaces")
        if max_faces is not None and (not isinstance(max_faces, int) or max_faces < 1):
            raise _validation("MaxFaces", max_faces, "have value greater than or equal to 1")
        records, dropped = self.backend.index_faces(
            collection_id, _image(params, "Image"), external, max_faces
        )
        return {
            "FaceRecords": [
                {"Face": _face_record(r), "FaceDetail": _compared_face(r.face)} for r in records
            ],
            "FaceModelVersion": FACE_MODEL_VERSION,
            "UnindexedFaces": [
                {"Reasons": ["EXCEEDS_MAX_FACES"], "FaceDetail": _compared_face(face)}
                for face in dropped
            ],
        }

    def list_faces(self, params: Params) -> Params:
        records = self.backend.list_faces(str(_string(params, "CollectionId")))
        page, token = _page(records, params, lambda record: str(record.face_id))
        result: Params = {
            "Faces": [_face_record(record) for record in page],
            "FaceModelVersion": FACE_MODEL_VERSION,
        }
        if token:
            result["NextToken"] = token
        return result

    def delete_faces(self, params: Params) -> Params:
        collection_id = str(_string(params, "CollectionId"))
        face_ids = params.get("FaceIds")
        if not isinstance(face_ids, list) or not 1 <= len(face_ids) <= 4096:
            raise _validation("FaceIds", face_ids, "have length between 1 and 4096")
        for face_id in face_ids:
            _string({"FaceId": face_id}, "FaceId")
        return {"DeletedFaces": self.backend.delete_faces(collection_id, face_ids)}

    def search_faces_by_image(self, params: Params) -> Params:
        collection_id = str(_string(params, "CollectionId"))
        threshold = _number(params, "FaceMatchThreshold", DEFAULT_THRESHOLD, 0, 100)
        max_faces = int(_number(params, "MaxFaces", MAX_SEARCH_FACES, 1, MAX_SEARCH_FACES))
        searched, matches = self.backend.search_faces_by_image(
            collection_id, _image(params, "Image"), threshold, max_faces
        )
        return {
            "SearchedFaceBoundingBox": _box(searched.box),
            "SearchedFaceConfidence": searched.confidence,
            "FaceMatches": [
                {"Similarity": score, "Face": _face_record(record)} for score, record in matches
            ],
            "FaceModelVersion": FACE_MODEL_VERSION,
        }
