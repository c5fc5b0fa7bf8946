"""Renderers of a WeeklyReport for each chat channel; pure functions returning the webhook payload."""
