"""Amazon Rekognition at the edge: retries, rate limit, error translation, and the strategies."""
