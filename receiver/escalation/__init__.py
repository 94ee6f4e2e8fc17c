"""Escalation: policies, timers, the outbox and the worker that delivers it."""
