"""Run a function's handler.py in-process exactly as Lambda would call it."""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


_LOADING = threading.RLock()


def load_handler(function: str) -> ModuleType:
    """Import functions/<function>/handler.py under a unique name (every function has a handler.py)."""
    name = f"handler_{function}"
    with _LOADING:  # threads (concurrency tests) must never see a half-executed module
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function / "handler.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module


class FakeContext:
    """The LambdaContext attributes Powertools reads, with a real countdown to the timeout."""

    function_version = "$LATEST"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def __init__(self, function_name: str, timeout_s: int = 120, memory_mb: int = 256) -> None:
        self.function_name = function_name
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{function_name}"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
