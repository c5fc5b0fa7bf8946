"""FinOps Guard CDK constructs, one module per concern."""

from pathlib import Path

# Asset folders are resolved from the repository root so synth works from any working directory.
REPO_ROOT = Path(__file__).resolve().parents[2]
