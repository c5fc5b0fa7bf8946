"""Shared test helpers: paths and the sample events in events/."""

from __future__ import annotations

import json

from devtools.lambda_runner import ROOT, load_handler

EVENTS = ROOT / "events"
__all__ = ["EVENTS", "ROOT", "load_event", "load_handler"]


def load_event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())
