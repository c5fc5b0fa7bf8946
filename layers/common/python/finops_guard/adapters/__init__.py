"""Adapters of the top-level front doors (preflight's read-only account facts)."""
