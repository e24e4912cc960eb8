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
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import botocore.session
import structlog
from botocore.model import ListShape, Shape, StructureShape
from werkzeug.exceptions import ClientDisconnected
from werkzeug.wrappers import Request, Response

from worker.local.engine.attributes import COMPUTED, AttributeModels, requested
from worker.local.engine.backend import (
    FACE_MODEL_VERSION,
    ImageSource,
    IndexedFace,
    RekognitionBackend,
)
from worker.local.engine.exceptions import (
    InternalServerError,
    InvalidPaginationTokenException,
    InvalidParameterException,
    RekognitionError,
    SerializationException,
    UnknownOperationException,
    ValidationException,
)
from worker.local.engine.models import Box, Face

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

# The request shapes the engine validates against: botocore's own Rekognition model, so the
# constraints (required, ranges, lengths, patterns, enums) are AWS's.
SERVICE_MODEL = botocore.session.get_session().get_service_model("rekognition")
_PAGE_TOKEN_PREFIX = "v1:"  # noqa: S105 - a format marker, not a secret

Params = dict[str, Any]


def _box(box: Box) -> dict[str, float]:
    return {"Width": box.width, "Height": box.height, "Left": box.left, "Top": box.top}


def _compared_face(face: Face) -> dict[str, Any]:
    """A face as DetectFaces (DEFAULT), CompareFaces and IndexFaces report it.

    Only what is computed: the box, the detection confidence, the landmarks the 5-point model
    gives (eyeLeft, eyeRight, nose; no mouth corners), Pose from those landmarks and Quality
    from the face's pixels. ``Attributes`` adds AgeRange and Gender at most
    (:meth:`RekognitionResponse._details`, :mod:`~worker.local.engine.attributes`).
    """
    return {
        "BoundingBox": _box(face.box),
        "Confidence": face.confidence,
        "Landmarks": [{"Type": name, "X": x, "Y": y} for name, (x, y) in face.landmarks.items()],
        "Pose": {"Roll": face.roll, "Yaw": face.yaw, "Pitch": face.pitch},
        "Quality": {"Brightness": face.brightness, "Sharpness": face.sharpness},
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


def _breaks(shape: Shape, value: Any, path: str) -> list[str]:
    """AWS-style validation messages for ``value`` against a request ``shape`` (wrong JSON
    types raise SerializationException, as AWS's JSON protocol does)."""
    meta = shape.metadata
    where = f"Value {value!r} at '{path}' failed to satisfy constraint: Member must"
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            raise SerializationException(f"{path or 'request'} must be an object")
        out = [
            f"Value null at '{_member(path, name)}' failed to satisfy constraint: "
            "Member must not be null"
            for name in shape.required_members
            if value.get(name) is None
        ]
        for name, member in shape.members.items():
            if value.get(name) is not None:
                out += _breaks(member, value[name], _member(path, name))
        return out
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            raise SerializationException(f"{path} must be a list")
        out = _limits(where, len(value), meta, "have length")
        # AWS words a member's break at the list: Value '[a, b]' at 'path' failed to satisfy
        # constraint: Member must satisfy constraint: [Member must …] (as Lambda's Architectures).
        broken = [b for item in value for b in _breaks(shape.member, item, f"{path}.member")]
        if broken:
            inner = dict.fromkeys(b.split("failed to satisfy constraint: ", 1)[-1] for b in broken)
            out.append(
                f"Value '[{', '.join(map(str, value))}]' at '{path}' failed to satisfy "
                f"constraint: Member must satisfy constraint: [{', '.join(inner)}]"
            )
        return out
    return _scalar_breaks(shape, value, path, where)


def _scalar_breaks(shape: Shape, value: Any, path: str, where: str) -> list[str]:
    meta = shape.metadata
    kind = shape.type_name
    if kind == "string":
        if not isinstance(value, str):
            raise SerializationException(f"{path} must be a string")
        out = _limits(where, len(value), meta, "have length")
        enum = getattr(shape, "enum", None)
        if enum and value not in enum:
            out.append(f"{where} satisfy enum value set: [{', '.join(enum)}]")
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            out.append(f"{where} satisfy regular expression pattern: {meta['pattern']}")
        return out
    if kind in {"integer", "long", "float", "double"}:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SerializationException(f"{path} must be a number")
        return _limits(where, value, meta, "have value")
    if kind == "boolean" and not isinstance(value, bool):
        raise SerializationException(f"{path} must be a boolean")
    return []  # blobs: checked where the image is read (size, format)


def _member(path: str, name: str) -> str:
    name = name[0].lower() + name[1:]
    return f"{path}.{name}" if path else name


def _limits(where: str, value: float, meta: dict[str, Any], what: str) -> list[str]:
    if "min" in meta and value < meta["min"]:
        return [f"{where} {what} greater than or equal to {meta['min']}"]
    if "max" in meta and value > meta["max"]:
        return [f"{where} {what} less than or equal to {meta['max']}"]
    return []


def validate(action: str, params: Params) -> None:
    """Raise ValidationException if ``params`` break the model's constraints for ``action``."""
    shape = SERVICE_MODEL.operation_model(action).input_shape
    found = _breaks(shape, params, "") if shape is not None else []
    if found:
        count = f"{len(found)} validation error{'s' if len(found) > 1 else ''} detected"
        raise ValidationException(f"{count}: {'; '.join(found)}")


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
        raise _validation(name, value, f"have value between {low:g} and {high:g}")
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
        after = _read_token(token)
        items = [item for item in items if ident(item) > after]
    page = items[:size]
    return page, (_make_token(ident(page[-1])) if len(items) > size else None)


def _make_token(last: str) -> str:
    """An opaque NextToken: the last id returned, base64-encoded behind a version prefix."""
    return base64.urlsafe_b64encode((_PAGE_TOKEN_PREFIX + last).encode()).decode()


def _read_token(token: object) -> str:
    try:
        text = base64.urlsafe_b64decode(str(token).encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.startswith(_PAGE_TOKEN_PREFIX):
        raise InvalidPaginationTokenException("Invalid pagination token")
    return text.removeprefix(_PAGE_TOKEN_PREFIX)


class RekognitionResponse:
    """WSGI application answering Rekognition API calls from a :class:`RekognitionBackend`."""

    def __init__(self, backend: RekognitionBackend) -> None:
        self.backend = backend
        self.attributes = AttributeModels()
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
            "SearchFaces": self.search_faces,
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
            validate(action, params)
            body, status = json.dumps(handler(params)).encode(), 200
        except (ClientDisconnected, ConnectionError) as exc:
            # The client went away mid-request: nothing to answer, and not the engine's fault.
            log.info("rekognition.client_disconnected", action=action, error=type(exc).__name__)
            body, status = b"", 400
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
        source_face, matches, unmatched = self.backend.compare_faces(
            source, target, threshold, str(params.get("QualityFilter", "NONE"))
        )
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
        wanted = requested(params.get("Attributes"))
        return {"FaceDetails": self._details(analysis.faces, wanted)}

    def _details(self, faces: Sequence[Face], wanted: frozenset[str]) -> list[Params]:
        """FaceDetail of each face: the DEFAULT members, and those of the ``wanted`` attributes
        that the engine computes (the others are absent)."""
        details = [_compared_face(face) for face in faces]
        if wanted & COMPUTED:
            for detail, estimate in zip(details, self.attributes.estimate(faces), strict=True):
                if estimate is not None:
                    detail.update(estimate.members(wanted))
        return details

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
            collection_id,
            _image(params, "Image"),
            external,
            max_faces,
            str(params.get("QualityFilter", "AUTO")),
        )
        wanted = requested(params.get("DetectionAttributes"))
        kept = self._details([record.face for record in records], wanted)
        others = self._details([face for face, _ in dropped], wanted)
        return {
            "FaceRecords": [
                {"Face": _face_record(record), "FaceDetail": detail}
                for record, detail in zip(records, kept, strict=True)
            ],
            "FaceModelVersion": FACE_MODEL_VERSION,
            "UnindexedFaces": [
                {"Reasons": reasons, "FaceDetail": detail}
                for (_, reasons), detail in zip(dropped, others, strict=True)
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
        deleted, missing = self.backend.delete_faces(collection_id, face_ids)
        return {
            "DeletedFaces": deleted,
            "UnsuccessfulFaceDeletions": [
                {"FaceId": face_id, "Reasons": ["FACE_NOT_FOUND"]} for face_id in missing
            ],
        }

    def search_faces(self, params: Params) -> Params:
        collection_id = str(_string(params, "CollectionId"))
        face_id = str(_string(params, "FaceId"))
        threshold = _number(params, "FaceMatchThreshold", DEFAULT_THRESHOLD, 0, 100)
        max_faces = int(_number(params, "MaxFaces", MAX_SEARCH_FACES, 1, MAX_SEARCH_FACES))
        matches = self.backend.search_faces(collection_id, face_id, threshold, max_faces)
        return {
            "SearchedFaceId": face_id,
            "FaceMatches": [
                {"Similarity": score, "Face": _face_record(record)} for score, record in matches
            ],
            "FaceModelVersion": FACE_MODEL_VERSION,
        }

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
