"""A small Rekognition stand-in whose answers depend on the image it is sent.

Test images are PNGs of coloured squares on white: each square is a "face", its colour is the
person (see :func:`face_png`). DetectFaces finds the squares; CompareFaces compares the colour of
the source's largest square with every square of the target (same colour → ~99 %, others → low).
Images are read from S3 (``S3Object``, through the moto server) or from ``Bytes``, so a worker that
sends the wrong object gets the wrong answer. Calls are counted per action, and throttling can be
injected: ``POST /_control {"throttle": N}`` makes the next N calls fail with
ThrottlingException, as the real service does above its quota.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from PIL import Image, UnidentifiedImageError
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

WHITE = (255, 255, 255)
ALICE = (200, 40, 40)
BOB = (40, 40, 200)
CAROL = (40, 160, 40)
# A square smaller than this many pixels is noise, not a face.
MIN_FACE_PIXELS = 64


def face_png(*faces: tuple[int, int, int], size: tuple[int, int] = (240, 160)) -> bytes:
    """A PNG with one coloured square per face, left to right; no faces → a blank image."""
    image = Image.new("RGB", size, WHITE)
    side = min(size[1] // 2, size[0] // (2 * max(len(faces), 1)))
    for index, colour in enumerate(faces):
        left = 10 + index * (side + 10)
        image.paste(colour, (left, 20, left + side, 20 + side))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@dataclass(frozen=True)
class FakeFace:
    colour: tuple[int, int, int]
    box: dict[str, float]
    area: int


class RekognitionError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def find_faces(data: bytes) -> list[FakeFace]:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Image.DecompressionBombError as exc:
        raise RekognitionError(
            "ImageTooLargeException", f"Image size is too large: {exc}"
        ) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise RekognitionError(
            "InvalidImageFormatException", f"Request has invalid image format: {exc}"
        ) from None
    image = image.convert("RGB")
    width, height = image.size
    boxes: dict[tuple[int, int, int], list[int]] = {}
    counts: Counter[tuple[int, int, int]] = Counter()
    pixels = image.load()
    assert pixels is not None
    for y in range(0, height, 2):
        for x in range(0, width, 2):
            colour = tuple(round(c / 40) * 40 for c in pixels[x, y])  # type: ignore[union-attr]
            if max(colour) - min(colour) < 60:  # white, grey, black: background
                continue
            key = (colour[0], colour[1], colour[2])
            counts[key] += 4
            box = boxes.setdefault(key, [x, y, x, y])
            box[0], box[1] = min(box[0], x), min(box[1], y)
            box[2], box[3] = max(box[2], x), max(box[3], y)
    faces = []
    for colour, (x0, y0, x1, y1) in boxes.items():
        if counts[colour] < MIN_FACE_PIXELS:
            continue
        faces.append(
            FakeFace(
                colour=colour,
                box={
                    "Width": (x1 - x0 + 2) / width,
                    "Height": (y1 - y0 + 2) / height,
                    "Left": x0 / width,
                    "Top": y0 / height,
                },
                area=counts[colour],
            )
        )
    return sorted(faces, key=lambda f: f.box["Left"])


def similarity(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    distance = sum(abs(x - y) for x, y in zip(a, b, strict=True))
    return 99.3 if distance == 0 else max(5.0, 60.0 - distance / 10)


class FakeRekognition:
    """A WSGI Rekognition (JSON protocol) on loopback; ``endpoint`` is its URL."""

    def __init__(self, s3_endpoint: str) -> None:
        self._s3 = boto3.client(
            "s3",
            endpoint_url=s3_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # moto's dummy credentials
        )
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self._throttle_next = 0
        # Fault hooks (in-process tests): run before each call, with its action and parameters;
        # keys whose S3Object reads answer InvalidS3ObjectException although the object exists,
        # as AWS does for a KMS key or a permission Rekognition's caller lacks.
        self.before_call: Callable[[str, dict[str, Any]], None] | None = None
        self.unreadable_keys: set[str] = set()
        # Face collections: id → face id → (colour, ExternalImageId, box).
        self.collections_enabled = True
        self.collections: dict[
            str, dict[str, tuple[tuple[int, int, int], str, dict[str, float]]]
        ] = {}
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FakeRekognition:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self._throttle_next = 0
            self.collections.clear()
            self.collections_enabled = True
            self.before_call = None
            self.unreadable_keys = set()

    def throttle(self, calls: int) -> None:
        with self._lock:
            self._throttle_next = calls

    def _app(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        if request.path == "/_control":
            control = json.loads(request.get_data() or b"{}")
            if "throttle" in control:
                self.throttle(int(control["throttle"]))
            if control.get("reset"):
                self.reset()
            response = Response(
                json.dumps({"calls": dict(self.calls)}), mimetype="application/json"
            )
            return response(environ, start_response)
        action = request.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
        try:
            with self._lock:
                self.calls[action] += 1
                if self._throttle_next > 0:
                    self._throttle_next -= 1
                    self.calls["Throttled"] += 1
                    raise RekognitionError("ThrottlingException", "Rate exceeded")
            params = json.loads(request.get_data() or b"{}")
            if self.before_call is not None:
                self.before_call(action, params)
            handler = getattr(self, f"_{action}", None)
            if not self.collections_enabled and action not in {"DetectFaces", "CompareFaces"}:
                handler = None  # a stand-in that knows only the tutorial's two calls
            if handler is None:
                raise RekognitionError("UnknownOperationException", action)
            body, status = json.dumps(handler(params)), 200
        except RekognitionError as exc:
            body, status = json.dumps({"__type": exc.code, "Message": exc.message}), exc.status
        response = Response(body, status=status, mimetype="application/x-amz-json-1.1")
        return response(environ, start_response)

    def _image(self, image: dict[str, Any]) -> bytes:
        if "Bytes" in image:
            return base64.b64decode(image["Bytes"])
        s3_object = image.get("S3Object", {})
        if s3_object.get("Name") in self.unreadable_keys:
            # AWS's own wording (Rekognition developer guide, "Error handling").
            raise RekognitionError(
                "InvalidS3ObjectException",
                "Unable to get object metadata from S3. Check object key, region and/or access "
                "permissions.",
            )
        params = {"Bucket": s3_object.get("Bucket"), "Key": s3_object.get("Name")}
        if s3_object.get("Version"):
            params["VersionId"] = s3_object["Version"]
        try:
            return self._s3.get_object(**params)["Body"].read()
        except self._s3.exceptions.ClientError as exc:
            raise RekognitionError(
                "InvalidS3ObjectException", f"Unable to get object metadata from S3: {exc}"
            ) from None

    def _DetectFaces(self, params: dict[str, Any]) -> dict[str, Any]:
        faces = find_faces(self._image(params["Image"]))
        return {"FaceDetails": [{"BoundingBox": f.box, "Confidence": 99.9} for f in faces]}

    def _CompareFaces(self, params: dict[str, Any]) -> dict[str, Any]:
        source = find_faces(self._image(params["SourceImage"]))
        if not source:
            raise RekognitionError(
                "InvalidParameterException",
                "There are no faces in the image. Should be at least 1.",
            )
        largest = max(source, key=lambda f: f.area)
        threshold = float(params.get("SimilarityThreshold", 80.0))
        matches, unmatched = [], []
        for face in find_faces(self._image(params["TargetImage"])):
            score = similarity(largest.colour, face.colour)
            entry = {"BoundingBox": face.box, "Confidence": 99.9}
            if score >= threshold:
                matches.append({"Similarity": score, "Face": entry})
            else:
                unmatched.append(entry)
        return {
            "SourceImageFace": {"BoundingBox": largest.box, "Confidence": 99.9},
            "FaceMatches": matches,
            "UnmatchedFaces": unmatched,
        }

    # ------------------------------------------------------------------ collections

    def _collection(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.collections[params["CollectionId"]]
        except KeyError:
            raise RekognitionError(
                "ResourceNotFoundException",
                f"The collection id: {params['CollectionId']} does not exist",
            ) from None

    def _CreateCollection(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if params["CollectionId"] in self.collections:
                raise RekognitionError(
                    "ResourceAlreadyExistsException", "The collection already exists"
                )
            self.collections[params["CollectionId"]] = {}
        return {
            "StatusCode": 200,
            "CollectionArn": f"aws:rekognition:us-east-1:123456789012:collection/{params['CollectionId']}",
            "FaceModelVersion": "7.0",
        }

    def _DescribeCollection(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"FaceCount": len(self._collection(params)), "FaceModelVersion": "7.0"}

    def _ListFaces(self, params: dict[str, Any]) -> dict[str, Any]:
        faces = self._collection(params)
        return {
            "Faces": [
                {"FaceId": face_id, "ExternalImageId": ext, "BoundingBox": box, "Confidence": 99.9}
                for face_id, (_, ext, box) in sorted(faces.items())
            ]
        }

    def _IndexFaces(self, params: dict[str, Any]) -> dict[str, Any]:
        faces = self._collection(params)
        found = sorted(find_faces(self._image(params["Image"])), key=lambda f: -f.area)
        records = []
        for face in found[: int(params.get("MaxFaces", 100))]:
            face_id = f"face-{len(self.calls)}-{face.colour}-{len(faces)}".replace(" ", "")
            with self._lock:
                faces[face_id] = (face.colour, params.get("ExternalImageId", ""), face.box)
            records.append(
                {
                    "Face": {
                        "FaceId": face_id,
                        "BoundingBox": face.box,
                        "ExternalImageId": params.get("ExternalImageId", ""),
                        "Confidence": 99.9,
                    },
                    "FaceDetail": {"BoundingBox": face.box},
                }
            )
        return {"FaceRecords": records, "UnindexedFaces": []}

    def _DeleteFaces(self, params: dict[str, Any]) -> dict[str, Any]:
        faces = self._collection(params)
        deleted = []
        with self._lock:
            for face_id in params["FaceIds"]:
                if faces.pop(face_id, None) is not None:
                    deleted.append(face_id)
        return {"DeletedFaces": deleted}

    def _SearchFacesByImage(self, params: dict[str, Any]) -> dict[str, Any]:
        faces = self._collection(params)
        found = find_faces(self._image(params["Image"]))
        if not found:
            raise RekognitionError(
                "InvalidParameterException",
                "There are no faces in the image. Should be at least 1.",
            )
        largest = max(found, key=lambda f: f.area)
        threshold = float(params.get("FaceMatchThreshold", 80.0))
        matches = [
            {
                "Similarity": score,
                "Face": {
                    "FaceId": face_id,
                    "ExternalImageId": ext,
                    "BoundingBox": box,
                    "Confidence": 99.9,
                },
            }
            for face_id, (colour, ext, box) in list(faces.items())
            if (score := similarity(largest.colour, colour)) >= threshold
        ]
        matches.sort(key=lambda m: -m["Similarity"])
        return {
            "SearchedFaceBoundingBox": largest.box,
            "SearchedFaceConfidence": 99.9,
            "FaceMatches": matches[: int(params.get("MaxFaces", 80))],
        }
