terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.x: target tracking with metric math (`metrics` blocks), S3 notification filters.
      version = ">= 5.30, < 7.0"
    }
  }
}
