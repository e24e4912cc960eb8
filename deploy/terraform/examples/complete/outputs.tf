output "bucket_name" {
  description = "BUCKET_NAME"
  value       = module.face_match_worker.bucket_name
}

output "queue_url" {
  description = "QUEUE_URL"
  value       = module.face_match_worker.queue_url
}

output "dlq_url" {
  description = "DLQ_URL"
  value       = module.face_match_worker.dlq_url
}

output "sns_topic_arn" {
  description = "SNS_TOPIC_ARN"
  value       = module.face_match_worker.sns_topic_arn
}

output "cluster_name" {
  description = "ECS cluster"
  value       = module.face_match_worker.cluster_name
}

output "service_name" {
  description = "ECS service"
  value       = module.face_match_worker.service_name
}

output "ecr_repository_url" {
  description = "Where to push the image"
  value       = module.face_match_worker.ecr_repository_url
}
