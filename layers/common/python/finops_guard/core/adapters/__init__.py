"""Shared adapters: AWS clients, chat webhooks, the outbox, secrets, SNS/EventBridge, dead letters."""
