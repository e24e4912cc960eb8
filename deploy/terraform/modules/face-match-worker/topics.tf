# Results: one message per upload (CONTRACT.md), e-mailed to the subscribers.
resource "aws_sns_topic" "results" {
  name              = "${var.name}-results"
  kms_master_key_id = aws_kms_key.this.arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "results_email" {
  for_each  = toset(var.notification_emails)
  topic_arn = aws_sns_topic.results.arn
  protocol  = "email"
  endpoint  = each.value
}

# Operations: alarms about the worker itself.
resource "aws_sns_topic" "ops" {
  name              = "${var.name}-ops"
  kms_master_key_id = aws_kms_key.this.arn
  tags              = var.tags
}

resource "aws_sns_topic_subscription" "ops_email" {
  for_each  = toset(var.ops_emails)
  topic_arn = aws_sns_topic.ops.arn
  protocol  = "email"
  endpoint  = each.value
}

# Anything in the dead-letter queue needs a human: `worker dlq list`, then `worker dlq redrive`.
resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${var.name}-dlq-not-empty"
  alarm_description   = "Messages in ${aws_sqs_queue.dlq.name}: inspect with `worker dlq list`, then `worker dlq redrive` or `worker dlq purge --yes`."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.ops.arn]
  ok_actions          = [aws_sns_topic.ops.arn]
  tags                = var.tags
}
