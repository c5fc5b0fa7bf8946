"""The shared core every product stands on: chat secrets, the outbox, paging, layers, and how a function is run."""

from pathlib import Path

# Asset folders are resolved from the repository root so synth works from any working directory.
REPO_ROOT = Path(__file__).resolve().parents[2]
