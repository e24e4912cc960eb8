# The face-match worker on ECS Fargate in an existing VPC's private subnets.
#
#   terraform init
#   terraform apply -var bucket_name=my-photos -var image_tag=v1 \
#     -var vpc_id=vpc-… -var 'private_subnet_ids=["subnet-…","subnet-…"]'

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.30, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project   = "face-match-worker"
      ManagedBy = "terraform"
    }
  }
}

module "face_match_worker" {
  source = "../../modules/face-match-worker"

  name               = var.name
  bucket_name        = var.bucket_name
  vpc_id             = var.vpc_id
  private_subnet_ids = var.private_subnet_ids
  image_tag          = var.image_tag

  notification_emails = var.notification_emails
  ops_emails          = var.ops_emails

  similarity_threshold = 80
  strategy             = "auto"
  concurrency          = 8
  rekognition_max_tps  = 5

  task_cpu    = 512
  task_memory = 1024 # 371 MB peak RSS measured by bench/decode_memory.py; see the module's variable

  min_tasks                  = var.min_tasks
  max_tasks                  = var.max_tasks
  acceptable_latency_seconds = var.acceptable_latency_seconds
  seconds_per_upload         = var.seconds_per_upload
}
