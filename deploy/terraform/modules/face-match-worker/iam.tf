# ---------------------------------------------------------------------------------------------
# Task role: what the worker itself may do. Every action is named; resources are scoped to this
# bucket's prefixes, these queues, this topic, this key and this collection wherever the API
# has a resource type.
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    sid     = "EcsTasksOfThisAccount"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"]
    }
  }
}

resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  description        = "face-match worker tasks: Rekognition, the bucket's prefixes, the queues and the results topic"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "task" {
  statement {
    sid    = "RekognitionWithoutResourceType"
    effect = "Allow"
    # DetectFaces and CompareFaces take images, not collections: Rekognition has no resource
    # type for them, so "*" is the only resource they accept.
    actions   = ["rekognition:CompareFaces", "rekognition:DetectFaces"]
    resources = ["*"]
  }

  statement {
    sid    = "RekognitionCollection"
    effect = "Allow"
    actions = [
      "rekognition:CreateCollection",
      "rekognition:DeleteFaces",
      "rekognition:DescribeCollection",
      "rekognition:IndexFaces",
      "rekognition:ListFaces",
      "rekognition:SearchFacesByImage",
    ]
    resources = [local.collection_arn]
  }

  statement {
    sid    = "ReadReferencesUploadsAndOwnResults"
    effect = "Allow"
    # GetObjectVersion: events name the version of the upload that was created.
    actions = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = [
      "${local.bucket_arn}/${var.reference_prefix}*",
      "${local.bucket_arn}/${var.upload_prefix}*",
      "${local.bucket_arn}/${var.result_prefix}*",
    ]
  }

  statement {
    sid       = "WriteResultsOnly"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${local.bucket_arn}/${var.result_prefix}*"]
  }

  statement {
    sid       = "ListReferencesOnly"
    effect    = "Allow"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.reference_prefix, "${var.reference_prefix}*"]
    }
  }

  statement {
    sid    = "ConsumeUploadQueue"
    effect = "Allow"
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ReceiveMessage",
    ]
    resources = [aws_sqs_queue.uploads.arn]
  }

  statement {
    sid       = "DeadLetterUnprocessableMessages"
    effect    = "Allow"
    actions   = ["sqs:GetQueueAttributes", "sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid       = "PublishResults"
    effect    = "Allow"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.results.arn]
  }

  statement {
    sid    = "UseTheModuleKey"
    effect = "Allow"
    # Decrypt: objects, received messages. GenerateDataKey: result objects, DLQ messages, publishes.
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "${var.name}-task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# ---------------------------------------------------------------------------------------------
# Execution role: what ECS needs to start the task (pull the image, write the logs).
# ---------------------------------------------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  description        = "ECS agent for the face-match worker: pull the image, write the logs"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid    = "EcrLogin"
    effect = "Allow"
    # GetAuthorizationToken is account-wide: ECR has no resource type for it.
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid    = "PullWorkerImage"
    effect = "Allow"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [aws_ecr_repository.this.arn]
  }

  statement {
    sid       = "WriteWorkerLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.worker.arn}:log-stream:*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "${var.name}-execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}
