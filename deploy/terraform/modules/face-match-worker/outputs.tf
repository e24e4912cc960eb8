output "bucket_name" {
  description = "The bucket (BUCKET_NAME)."
  value       = aws_s3_bucket.this.id
}

output "queue_url" {
  description = "URL of the upload queue (QUEUE_URL)."
  value       = aws_sqs_queue.uploads.url
}

output "dlq_url" {
  description = "URL of the dead-letter queue (DLQ_URL)."
  value       = aws_sqs_queue.dlq.url
}

output "sns_topic_arn" {
  description = "ARN of the results topic (SNS_TOPIC_ARN)."
  value       = aws_sns_topic.results.arn
}

output "ops_topic_arn" {
  description = "ARN of the operations topic (DLQ alarm)."
  value       = aws_sns_topic.ops.arn
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "service_name" {
  description = "Name of the ECS service."
  value       = aws_ecs_service.worker.name
}

output "ecr_repository_url" {
  description = "URL of the ECR repository to push the worker image to."
  value       = aws_ecr_repository.this.repository_url
}

output "kms_key_arn" {
  description = "ARN of the module's KMS key; uploaders need kms:GenerateDataKey on it, readers of results kms:Decrypt."
  value       = aws_kms_key.this.arn
}

output "task_role_arn" {
  description = "ARN of the worker tasks' IAM role."
  value       = aws_iam_role.task.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the worker."
  value       = aws_cloudwatch_log_group.worker.name
}
