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
    # The Service Authorization Reference lists no resource type for these three, so "*" is the
    # only resource they accept: a statement naming the collection would never allow
    # CreateCollection (the worker creates its collection on first start).
    #checkov:skip=CKV_AWS_111:rekognition:CreateCollection has no resource type (Service Authorization Reference): "*" is the only resource it accepts; every other write is scoped.
    #checkov:skip=CKV_AWS_356:CompareFaces, CreateCollection and DetectFaces have no resource type (Service Authorization Reference): "*" is the only resource they accept.
    actions = [
      "rekognition:CompareFaces",
      "rekognition:CreateCollection",
      "rekognition:DetectFaces",
    ]
    resources = ["*"]
  }

  statement {
    sid    = "RekognitionCollection"
    effect = "Allow"
    actions = [
      "rekognition:DeleteFaces",
      "rekognition:DescribeCollection",
      "rekognition:IndexFaces",
      "rekognition:ListFaces",
      "rekognition:SearchFacesByImage",
    ]
    resources = [local.collection_arn]
  }

  statement {
    sid     = "ReadReferencesUploadsAndOwnResults"
    effect  = "Allow"
    actions = ["s3:GetObject"]
    resources = [
      "${local.bucket_arn}/${var.reference_prefix}*",
      "${local.bucket_arn}/${var.upload_prefix}*",
      "${local.bucket_arn}/${var.result_prefix}*",
    ]
  }

  statement {
    sid    = "ReadTheUploadedVersion"
    effect = "Allow"
    # Events name the version of the upload that was created (the bucket is versioned); the
    # worker reads references and results by key only.
    actions   = ["s3:GetObjectVersion"]
    resources = ["${local.bucket_arn}/${var.upload_prefix}*"]
  }

  statement {
    sid       = "WriteResultsOnly"
    effect    = "Allow"
    actions   = ["s3:PutObject"]
    resources = ["${local.bucket_arn}/${var.result_prefix}*"]
  }

  statement {
    sid    = "ListOwnPrefixes"
    effect = "Allow"
    # Listing the references, and the 404s the worker relies on: S3 answers a HEAD/GET of a
    # missing key with 404 only when the caller may s3:ListBucket, else with 403 (API_HeadObject,
    # "Permissions"): the record look-up of every new upload (results/) and an upload deleted
    # before it is processed (uploads/). Only these prefixes; docs/aws-semantics.md, "S3".
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values = [
        "${var.reference_prefix}*",
        "${var.upload_prefix}*",
        "${var.result_prefix}*",
      ]
    }
  }

  statement {
    sid    = "ConsumeUploadQueue"
    effect = "Allow"
    # GetQueueAttributes: the redrive policy's maxReceiveCount, read at start. SendMessage: a
    # message split into its records sends the ones to retry back (SendMessageBatch needs
    # sqs:SendMessage: SQS has no separate permission for the batch actions).
    actions = [
      "sqs:ChangeMessageVisibility",
      "sqs:DeleteMessage",
      "sqs:GetQueueAttributes",
      "sqs:ReceiveMessage",
      "sqs:SendMessage",
    ]
    resources = [aws_sqs_queue.uploads.arn]
  }

  statement {
    sid    = "DeadLetterUnprocessableMessages"
    effect = "Allow"
    # GetQueueAttributes: `worker run` checks that DLQ_URL exists before its first poll.
    actions   = ["sqs:GetQueueAttributes", "sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid    = "PublishResults"
    effect = "Allow"
    # GetTopicAttributes: `worker run` checks that SNS_TOPIC_ARN exists before its first poll.
    actions   = ["sns:GetTopicAttributes", "sns:Publish"]
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
