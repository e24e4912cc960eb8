"""Operator tools: the dead-letter queue, `worker setup` (plan and provisioning)."""
