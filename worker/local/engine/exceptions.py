"""Rekognition's error codes. Each is sent as HTTP 400 (500 for InternalServerError) with the
JSON body ``{"__type": "<code>", "Message": "<text>"}``, which botocore turns into a
``ClientError`` whose ``response["Error"]["Code"]`` is the code, exactly as with AWS.
"""

from __future__ import annotations

import json


class RekognitionError(Exception):
    """Base of the engine's AWS errors: ``code`` is the ``__type`` botocore reports."""

    code = "InternalServerError"
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> bytes:
        return json.dumps({"__type": self.code, "Message": self.message}).encode()


class InvalidParameterException(RekognitionError):
    code = "InvalidParameterException"


class InvalidImageFormatException(RekognitionError):
    code = "InvalidImageFormatException"


class ImageTooLargeException(RekognitionError):
    code = "ImageTooLargeException"


class InvalidS3ObjectException(RekognitionError):
    code = "InvalidS3ObjectException"


class ResourceNotFoundException(RekognitionError):
    code = "ResourceNotFoundException"


class ResourceAlreadyExistsException(RekognitionError):
    code = "ResourceAlreadyExistsException"


class ValidationException(RekognitionError):
    code = "ValidationException"


class SerializationException(RekognitionError):
    code = "SerializationException"


class UnknownOperationException(RekognitionError):
    code = "UnknownOperationException"


class InternalServerError(RekognitionError):
    code = "InternalServerError"
    status = 500


class InvalidPaginationTokenException(RekognitionError):
    code = "InvalidPaginationTokenException"
