"""face-match worker: S3 uploads → SQS → Rekognition → one SNS result per upload."""

__version__ = "0.1.0"
