variable "region" {
  description = "AWS region to deploy to (Rekognition must be available there)."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "name" {
  description = "Name prefix of every resource."
  type        = string
  default     = "face-match"
}

variable "bucket_name" {
  description = "Globally unique name of the bucket to create."
  type        = string
}

variable "image_tag" {
  description = "Tag of the worker image pushed to the module's ECR repository."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the private subnets."
  type        = string
}

variable "private_subnet_ids" {
  description = "Private subnets (with NAT or VPC endpoints) for the tasks."
  type        = list(string)
}

variable "notification_emails" {
  description = "Who receives the match results by e-mail."
  type        = list(string)
  default     = []
}

variable "ops_emails" {
  description = "Who is told when messages reach the dead-letter queue."
  type        = list(string)
  default     = []
}

variable "min_tasks" {
  description = "Fewest tasks (0: scale to zero when idle)."
  type        = number
  default     = 0
}

variable "max_tasks" {
  description = "Most tasks."
  type        = number
  default     = 10
}

variable "acceptable_latency_seconds" {
  description = "Longest acceptable time from upload to result."
  type        = number
  default     = 60
}

variable "seconds_per_upload" {
  description = "Measured average task time per upload."
  type        = number
  default     = 0.5
}
