# ---------------------------------------------------------------------------------------------
# Naming and network
# ---------------------------------------------------------------------------------------------

variable "name" {
  description = "Name prefix of every resource (queue, topic, cluster, service, roles, log group)."
  type        = string
  default     = "face-match"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 characters of lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "bucket_name" {
  description = "Name of the S3 bucket holding references, uploads and results (created by this module)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name (3-63 lower-case letters, digits, dots, hyphens)."
  }
}

variable "force_destroy_bucket" {
  description = "Let `terraform destroy` delete the bucket even when it holds objects. Keep false in production."
  type        = bool
  default     = false
}

variable "vpc_id" {
  description = "VPC of the private subnets; the tasks' security group is created in it."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]+$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "private_subnet_ids" {
  description = "Private subnets for the tasks. They need a route to AWS APIs over HTTPS (NAT gateway or VPC endpoints for S3, SQS, SNS, Rekognition, ECR, CloudWatch Logs)."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) > 0 && alltrue([for s in var.private_subnet_ids : can(regex("^subnet-[0-9a-f]+$", s))])
    error_message = "private_subnet_ids must be a non-empty list of subnet ids (subnet-…)."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# Worker settings (CONTRACT.md); passed to the container as environment variables
# ---------------------------------------------------------------------------------------------

variable "reference_prefix" {
  description = "S3 prefix of the reference faces (REFERENCE_PREFIX). Must end with a slash."
  type        = string
  default     = "references/"

  validation {
    condition     = can(regex("^[^/*][^*]*/$", var.reference_prefix))
    error_message = "reference_prefix must be non-empty, not start with '/', contain no '*' and end with '/'."
  }
}

variable "upload_prefix" {
  description = "S3 prefix of new uploads (UPLOAD_PREFIX); only objects under it are notified and processed. Must end with a slash."
  type        = string
  default     = "uploads/"

  validation {
    condition     = can(regex("^[^/*][^*]*/$", var.upload_prefix))
    error_message = "upload_prefix must be non-empty, not start with '/', contain no '*' and end with '/'."
  }
}

variable "result_prefix" {
  description = "S3 prefix of the result records (RESULT_PREFIX). The only prefix the worker may write to. Must end with a slash."
  type        = string
  default     = "results/"

  validation {
    condition     = can(regex("^[^/*][^*]*/$", var.result_prefix))
    error_message = "result_prefix must be non-empty, not start with '/', contain no '*' and end with '/'."
  }
}

variable "similarity_threshold" {
  description = "Minimum Rekognition similarity (0-100) for a match (SIMILARITY_THRESHOLD)."
  type        = number
  default     = 80

  validation {
    condition     = var.similarity_threshold >= 0 && var.similarity_threshold <= 100
    error_message = "similarity_threshold must be between 0 and 100."
  }
}

variable "strategy" {
  description = "Matching strategy (STRATEGY): compare, collection or auto."
  type        = string
  default     = "auto"

  validation {
    condition     = contains(["compare", "collection", "auto"], var.strategy)
    error_message = "strategy must be one of compare, collection, auto."
  }
}

variable "collection_id" {
  description = "Rekognition collection used by the collection strategy (COLLECTION_ID); the task role's collection permissions are scoped to it."
  type        = string
  default     = "face-match-references"

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{1,255}$", var.collection_id))
    error_message = "collection_id may contain only letters, digits, '_', '.' and '-' (1-255 characters)."
  }
}

variable "concurrency" {
  description = "Uploads in flight per task (CONCURRENCY)."
  type        = number
  default     = 8

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 256 && floor(var.concurrency) == var.concurrency
    error_message = "concurrency must be a whole number between 1 and 256."
  }
}

variable "rekognition_max_tps" {
  description = "Client-side cap on Rekognition calls per second per task (REKOGNITION_MAX_TPS); null for no cap. Keep tasks × this under the account's Rekognition quota."
  type        = number
  default     = null

  validation {
    condition     = var.rekognition_max_tps == null ? true : var.rekognition_max_tps > 0
    error_message = "rekognition_max_tps must be greater than 0 (or null)."
  }
}

variable "log_level" {
  description = "Worker log level (LOG_LEVEL)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], var.log_level)
    error_message = "log_level must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL."
  }
}

# ---------------------------------------------------------------------------------------------
# Queue, notifications, alarms
# ---------------------------------------------------------------------------------------------

variable "max_upload_seconds" {
  description = "Longest time one upload may take in the worker (download, Rekognition calls, result, publish). The queue's visibility timeout is six times this (the worker also extends visibility with a heartbeat while it works)."
  type        = number
  default     = 30

  validation {
    condition     = var.max_upload_seconds >= 5 && var.max_upload_seconds <= 7200
    error_message = "max_upload_seconds must be between 5 and 7200 (six times it must stay under SQS's 12-hour limit)."
  }
}

variable "max_receive_count" {
  description = "Receives before SQS moves a message to the dead-letter queue (redrive policy)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "notification_emails" {
  description = "E-mail addresses subscribed to the results topic (each must confirm the subscription)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.notification_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "notification_emails must contain e-mail addresses."
  }
}

variable "ops_emails" {
  description = "E-mail addresses subscribed to the operations topic (DLQ alarm)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.ops_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "ops_emails must contain e-mail addresses."
  }
}

# ---------------------------------------------------------------------------------------------
# Container, task and service
# ---------------------------------------------------------------------------------------------

variable "image_tag" {
  description = "Tag of the worker image in this module's ECR repository (tags are immutable: push a new tag per release)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a valid Docker tag."
  }
}

variable "image" {
  description = "Full image reference overriding the ECR repository and image_tag (e.g. a digest in another registry); null to use ECR."
  type        = string
  default     = null
}

variable "task_cpu" {
  description = "Fargate task CPU units (256, 512, 1024, 2048, 4096, 8192, 16384)."
  type        = number
  default     = 512

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.task_cpu)
    error_message = "task_cpu must be one of 256, 512, 1024, 2048, 4096, 8192, 16384."
  }
}

# Sized from `python -m bench.decode_memory` (2026-11-27, 2 cores, 24 GiB): one worker at
# CONCURRENCY=8 with four hostile conversions in flight peaked at 371 MB RSS (at the decode caps of
# worker/images.py; 5.4 GB before them). 1024 MiB, the least Fargate pairs with 512 CPU units, also
# holds the downloads in flight (up to CONCURRENCY x MAX_OBJECT_BYTES, 8 x 50 MB).
variable "task_memory" {
  description = "Fargate task memory in MiB; must be a combination Fargate accepts for task_cpu."
  type        = number
  default     = 1024

  validation {
    condition     = var.task_memory >= 512 && var.task_memory <= 122880
    error_message = "task_memory must be between 512 and 122880 MiB."
  }
}

variable "cpu_architecture" {
  description = "CPU architecture of the image: X86_64 or ARM64."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "log_retention_days" {
  description = "Retention of the worker's CloudWatch log group."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, …, 365, …, 3653)."
  }
}

# ---------------------------------------------------------------------------------------------
# Scaling on backlog per task
# ---------------------------------------------------------------------------------------------

variable "min_tasks" {
  description = "Fewest running tasks. 0 lets the service scale to zero when the queue is empty (a step policy starts the first task again)."
  type        = number
  default     = 0

  validation {
    condition     = var.min_tasks >= 0 && floor(var.min_tasks) == var.min_tasks
    error_message = "min_tasks must be a whole number >= 0."
  }
}

variable "max_tasks" {
  description = "Most running tasks. Mind the Rekognition quota: max_tasks × concurrency calls may be in flight."
  type        = number
  default     = 10

  validation {
    condition     = var.max_tasks >= 1 && var.max_tasks <= 1000 && floor(var.max_tasks) == var.max_tasks
    error_message = "max_tasks must be a whole number between 1 and 1000."
  }
}

variable "acceptable_latency_seconds" {
  description = "Longest acceptable time between an upload and its result. With seconds_per_upload it sets the backlog-per-task target (AWS: acceptable backlog per instance = acceptable latency ÷ average processing time per message)."
  type        = number
  default     = 60

  validation {
    condition     = var.acceptable_latency_seconds > 0
    error_message = "acceptable_latency_seconds must be greater than 0."
  }
}

variable "seconds_per_upload" {
  description = "Measured average time one task spends per upload, concurrency included (task busy time ÷ uploads it processed)."
  type        = number
  default     = 0.5

  validation {
    condition     = var.seconds_per_upload > 0
    error_message = "seconds_per_upload must be greater than 0."
  }
}

variable "scale_in_cooldown_seconds" {
  description = "Seconds after a scale-in before another scale-in."
  type        = number
  default     = 300

  validation {
    condition     = var.scale_in_cooldown_seconds >= 0
    error_message = "scale_in_cooldown_seconds must be >= 0."
  }
}

variable "scale_out_cooldown_seconds" {
  description = "Seconds after a scale-out before another scale-out."
  type        = number
  default     = 60

  validation {
    condition     = var.scale_out_cooldown_seconds >= 0
    error_message = "scale_out_cooldown_seconds must be >= 0."
  }
}
