data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  # SQS's limit on the visibility timeout is 12 hours.
  visibility_timeout_seconds = min(43200, 6 * ceil(var.max_upload_seconds))
  # AWS's recommendation for scaling on a queue: acceptable backlog per task = latency ÷ time per message.
  backlog_per_task_target = var.acceptable_latency_seconds / var.seconds_per_upload
  # The worker's shutdown grace period is 25 s (SHUTDOWN_GRACE_SECONDS); ECS waits a little longer.
  stop_timeout_seconds = 30

  bucket_arn     = aws_s3_bucket.this.arn
  collection_arn = "arn:${local.partition}:rekognition:${local.region}:${local.account_id}:collection/${var.collection_id}"
  image          = coalesce(var.image, "${aws_ecr_repository.this.repository_url}:${var.image_tag}")
  log_group_name = "/ecs/${var.name}"

  # Environment of the container: the variables of CONTRACT.md (names checked by tests/deploy).
  container_environment = merge(
    {
      BUCKET_NAME          = aws_s3_bucket.this.id
      SNS_TOPIC_ARN        = aws_sns_topic.results.arn
      QUEUE_URL            = aws_sqs_queue.uploads.url
      DLQ_URL              = aws_sqs_queue.dlq.url
      REFERENCE_PREFIX     = var.reference_prefix
      UPLOAD_PREFIX        = var.upload_prefix
      RESULT_PREFIX        = var.result_prefix
      SIMILARITY_THRESHOLD = tostring(var.similarity_threshold)
      STRATEGY             = var.strategy
      CONCURRENCY          = tostring(var.concurrency)
      COLLECTION_ID        = var.collection_id
      LOG_FORMAT           = "json"
      LOG_LEVEL            = var.log_level
      # boto3 reads AWS_DEFAULT_REGION; AWS_REGION is the contract's name. Fargate sets both
      # too, these make the task definition say so.
      AWS_REGION         = local.region
      AWS_DEFAULT_REGION = local.region
    },
    var.rekognition_max_tps == null ? {} : { REKOGNITION_MAX_TPS = tostring(var.rekognition_max_tps) },
  )
}

# One customer managed key for the bucket, queues, topics, logs and image repository. A CMK
# (rather than the AWS managed keys) is what lets S3 send events to the encrypted queue and
# CloudWatch publish alarms to the encrypted topic.
resource "aws_kms_key" "this" {
  description             = "${var.name}: bucket, queues, topics, logs and images of the face-match worker"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = var.tags
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

data "aws_iam_policy_document" "kms" {
  # AWS's default key policy ("Enable IAM User Permissions"): the account may do everything with
  # the key, and IAM policies then decide who in the account may. It is what lets an administrator
  # create, update and delete the alias (kms:CreateAlias/UpdateAlias/DeleteAlias are needed on the
  # key too), rotate, schedule deletion and change this policy, and lets the task role's IAM policy
  # (kms:Decrypt, kms:GenerateDataKey) take effect. docs/aws-semantics.md, "KMS".
  statement {
    sid    = "EnableIamUserPermissions"
    effect = "Allow"
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
    #checkov:skip=CKV_AWS_109:The default key policy's account statement: the account administers its own key through IAM (AWS's own default; without it the alias and the task role's grants fail).
    #checkov:skip=CKV_AWS_111:The default key policy's account statement: the account administers its own key through IAM (AWS's own default; without it the alias and the task role's grants fail).
    #checkov:skip=CKV_AWS_356:A key policy's resource is always the key itself ("*" means this key).
    actions   = ["kms:*"]
    resources = ["*"]
  }

  # S3 encrypts the event messages it sends to the upload queue.
  statement {
    sid    = "S3SendsEventsToEncryptedQueue"
    effect = "Allow"
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:s3:::${var.bucket_name}"]
    }
  }

  # CloudWatch publishes the DLQ alarm to the encrypted operations topic.
  statement {
    sid    = "CloudWatchPublishesAlarmsToEncryptedTopic"
    effect = "Allow"
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  # CloudWatch Logs encrypts the worker's log group.
  statement {
    sid    = "CloudWatchLogsEncryptsLogGroup"
    effect = "Allow"
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    actions = [
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:Encrypt",
      "kms:GenerateDataKey",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
    ]
    resources = ["*"]
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_name}"]
    }
  }
}
