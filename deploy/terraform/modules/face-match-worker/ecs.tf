resource "aws_cloudwatch_log_group" "worker" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
  tags              = var.tags
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  # Container Insights publishes RunningTaskCount, the divisor of the backlog-per-task metric.
  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  configuration {
    execute_command_configuration {
      kms_key_id = aws_kms_key.this.arn
      logging    = "OVERRIDE"
      log_configuration {
        cloud_watch_encryption_enabled = true
        cloud_watch_log_group_name     = aws_cloudwatch_log_group.worker.name
      }
    }
  }

  tags = var.tags
}

resource "aws_ecs_task_definition" "worker" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.task_cpu)
  memory                   = tostring(var.task_memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # The root filesystem is read-only; /tmp (the heartbeat file, image scratch) is this volume.
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([
    {
      name      = "worker"
      image     = local.image
      essential = true
      command   = ["run"]

      environment = [
        for key in sort(keys(local.container_environment)) : {
          name  = key
          value = local.container_environment[key]
        }
      ]

      readonlyRootFilesystem = true
      privileged             = false
      mountPoints = [
        { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
      ]
      # tini as PID 1: forwards SIGTERM to the worker and reaps children.
      linuxParameters = { initProcessEnabled = true }

      # SIGTERM, then SIGKILL after stopTimeout: the worker's grace period (25 s) fits inside.
      stopTimeout = local.stop_timeout_seconds

      # `worker health` exits 1 when the poll loop's heartbeat file is stale.
      healthCheck = {
        command     = ["CMD", "worker", "health"]
        interval    = 30
        timeout     = 5
        retries     = 3
        startPeriod = 60
      }

      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.worker.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "worker"
        }
      }
    },
  ])

  tags = var.tags
}

resource "aws_security_group" "worker" {
  name        = "${var.name}-worker"
  description = "face-match worker tasks: no inbound, HTTPS out to AWS APIs only"
  vpc_id      = var.vpc_id

  egress {
    description = "HTTPS to AWS APIs (through NAT or VPC endpoints)"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  tags = var.tags
}

resource "aws_ecs_service" "worker" {
  name             = var.name
  cluster          = aws_ecs_cluster.this.id
  task_definition  = aws_ecs_task_definition.worker.arn
  launch_type      = "FARGATE"
  platform_version = "LATEST"
  # Only the first apply sets it; Application Auto Scaling owns it afterwards.
  desired_count = var.min_tasks

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.worker.id]
    assign_public_ip = false
  }

  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"
  enable_execute_command  = false

  lifecycle {
    ignore_changes = [desired_count]
  }

  tags = var.tags
}
