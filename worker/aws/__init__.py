"""The AWS edge: clients, error translation, retry policy, SQS limits and batching."""
