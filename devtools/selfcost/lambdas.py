"""Lambda as the simulation runs it: one process, one simulated container per function (its caches
kept between warm runs, cleared on a cold start), each run accounted (requests, GB-seconds with the
INIT of cold starts, logs, custom metrics, the AWS requests it made)."""

from __future__ import annotations

import io
import logging
import math
import os
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from types import ModuleType
from typing import Any

from devtools.lambda_runner import ROOT
from devtools.selfcost.metering import AwsMeter, MetricId, emf_metrics, log_ingest_bytes
from devtools.selfcost.prices import GIB
from devtools.selfcost.template import FUNCTION_PREFIX, FunctionFacts, TemplateFacts

WEBHOOK_IDLE_TIMEOUT_S = 600  # assumption: an idle Lambda environment is reclaimed after ~10 minutes


def billed_ms(seconds: float) -> int:
    """Lambda bills duration rounded up to the next millisecond."""
    return max(1, math.ceil(round(seconds * 1000, 6)))


def gb_seconds(memory_mb: int, milliseconds: int) -> Decimal:
    return Decimal(memory_mb) / 1024 * Decimal(milliseconds) / 1000


def cold_starts(arrivals: Sequence[float], idle_timeout_s: float = WEBHOOK_IDLE_TIMEOUT_S) -> list[bool]:
    """For sorted arrival times (seconds): True where the request finds no warm environment, i.e. the
    first one and any after a gap longer than the idle timeout (one environment; overlaps ignored)."""
    return [i == 0 or arrivals[i] - arrivals[i - 1] > idle_timeout_s for i in range(len(arrivals))]


@dataclass
class Invocation:
    function: str
    at: datetime
    cold: bool
    weight: Decimal
    hours: frozenset[int]  # hours of the month the represented invocations fall in (custom metric proration)
    units: defaultdict[str, Decimal]
    calls: Counter[str]
    metrics: set[MetricId]
    duration_ms: int
    init_ms: int
    log_bytes: int
    result: Any = None
    error: str | None = None
    tables_written: set[str] = field(default_factory=set)


class Lambdas:
    """Runs handlers as Lambda would, one simulated container per function, and accounts each run."""

    def __init__(
        self,
        facts: TemplateFacts,
        environments: Mapping[str, Mapping[str, str]],
        init_ms: Mapping[str, int],
        meter: AwsMeter,
        chat_bytes: Callable[[], int],
        month_start: datetime,
    ) -> None:
        from finops_guard.billing import runtime as billing_runtime
        from finops_guard.core import runtime as core_runtime
        from finops_guard.core.adapters import secrets
        from finops_guard.costs import cadence_runtime, runtime

        from devtools.lambda_runner import load_handler

        self.facts = facts
        self.environments = environments
        self.init_ms = init_ms
        self.meter = meter
        self.chat_bytes = chat_bytes
        self.month_start = month_start
        # every cached client and setting
        self.runtimes = (core_runtime, runtime, billing_runtime, cadence_runtime)
        self.secrets = secrets
        self.records: list[Invocation] = []
        self._saved: dict[str, dict[str, dict[Any, Any]]] = {}
        self._last: str | None = None
        self._base_env = {k: v for k, v in os.environ.items() if not k.startswith(("FINOPSGUARD_", "POWERTOOLS_"))}
        self.handlers: dict[str, ModuleType] = {}
        for name, function in facts.functions.items():
            self._set_env(name)
            self.handlers[name] = load_handler(function.handler_dir)

    def _set_env(self, function: str, overrides: Mapping[str, str] | None = None) -> None:
        os.environ.clear()
        os.environ.update(self._base_env)
        os.environ.update(self.environments[function])
        os.environ.update(overrides or {})

    def _caches(self) -> list[dict[Any, Any]]:
        """The secrets adapter's module-level caches (private lower-case dicts): a container's state."""
        return [v for k, v in vars(self.secrets).items() if k.startswith("_") and not k.startswith("__")
                and k[1:2].islower() and isinstance(v, dict)]  # fmt: skip

    def _enter(self, function: str, cold: bool) -> None:
        from aws_lambda_powertools.utilities import parameters
        from finops_guard.core.adapters import chat

        saved = self._saved.get(function, {})
        for index, cache in enumerate(self._caches()):
            cache.clear()
            if not cold:
                cache.update(saved.get(str(index), {}))
        if cold:
            parameters.clear_caches()
        if cold or self._last != function:  # env-dependent singletons (clients, settings): no AWS call to rebuild
            for module in (*self.runtimes, self.handlers[function]):
                for value in vars(module).values():
                    if callable(getattr(value, "cache_clear", None)):
                        value.cache_clear()
        chat.PACER = type(chat.PACER)()  # posting pace is per container, and simulated runs are hours apart

    def _leave(self, function: str) -> None:
        self._saved[function] = {str(i): dict(cache) for i, cache in enumerate(self._caches())}
        self._last = function

    @contextmanager
    def _captured_logs(self, function: str) -> Iterator[io.StringIO]:
        """Only this function's log handlers on the finops_guard loggers, writing to a buffer."""
        buffer = io.StringIO()
        own = list(self.handlers[function].logger._logger.handlers)
        loggers = [logging.getLogger(n) for n in list(logging.Logger.manager.loggerDict)
                   if n == "finops_guard" or n.startswith("finops_guard.")]  # fmt: skip
        saved = [(lg, list(lg.handlers)) for lg in loggers if lg.handlers]
        streams = [(h, h.stream) for h in own if isinstance(h, logging.StreamHandler)]
        for lg, _ in saved:
            lg.handlers = list(own)
        for handler, _ in streams:
            handler.setStream(buffer)
        try:
            with redirect_stdout(buffer):  # Powertools prints EMF metrics with print()
                yield buffer
        finally:
            for handler, stream in streams:
                handler.setStream(stream)
            for lg, handlers in saved:
                lg.handlers = handlers

    def hour(self, at: datetime) -> int:
        return int((at - self.month_start).total_seconds() // 3600)

    def invoke(
        self,
        function: str,
        event: Mapping[str, Any],
        *,
        at: datetime,
        cold: bool,
        weight: Decimal = Decimal(1),
        hours: Iterable[int] | None = None,
        extra: Mapping[str, Decimal] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Invocation:
        from devtools.lambda_runner import FakeContext

        facts = self.facts.functions[function]
        self._set_env(function, env)
        self._enter(function, cold)
        context = FakeContext(f"{FUNCTION_PREFIX}{function}", timeout_s=facts.timeout_s, memory_mb=facts.memory_mb)
        chat_before = self.chat_bytes()
        result, error = None, None
        with self._captured_logs(function) as buffer:
            self.meter.start()
            started = time.perf_counter()
            try:
                result = self.handlers[function].lambda_handler(dict(event), context)
            except Exception as exc:  # noqa: BLE001 - Lambda records the error; the caller decides on retries
                error = f"{type(exc).__name__}: {exc}"[:300]
            elapsed = time.perf_counter() - started
            metered = self.meter.stop()
        self._leave(function)
        duration = billed_ms(max(0.0, elapsed - metered.overhead_s))
        init = self.init_ms[function] if cold else 0
        lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
        lines += platform_log_lines(function, duration, facts.memory_mb, init)
        log_bytes = log_ingest_bytes(lines)
        units = defaultdict(Decimal, metered.units)
        units["lambda.request"] += 1
        units["lambda.gb_second"] += gb_seconds(facts.memory_mb, duration + init)
        units["logs.ingest"] += Decimal(log_bytes) / GIB
        units["logs.storage"] += Decimal(log_bytes) / GIB  # one-month retention: a month of logs is stored
        units["dataout.internet"] += Decimal(self.chat_bytes() - chat_before) / GIB
        for key, quantity in (extra or {}).items():
            units[key] += quantity
        record = Invocation(
            function=function,
            at=at,
            cold=cold,
            weight=weight,
            hours=frozenset(hours if hours is not None else [self.hour(at)]),
            units=units,
            calls=metered.calls,
            metrics=emf_metrics(lines, function),
            duration_ms=duration,
            init_ms=init,
            log_bytes=log_bytes,
            result=result,
            error=error,
            tables_written=metered.tables_written,
        )
        self.records.append(record)
        return record

    def invoke_async(self, function: str, event: Mapping[str, Any], *, at: datetime, **kwargs: Any) -> list[Invocation]:
        """An asynchronous invocation (a schedule): Lambda retries a failed event (warm) as often as the
        function's EventInvokeConfig says, then sends it to its on-failure destination, the core's
        failure queue (one SQS request)."""
        runs = [self.invoke(function, event, at=at, cold=True, **kwargs)]
        kwargs.pop("extra", None)
        for attempt in range(self.facts.functions[function].retry_attempts):
            if runs[-1].error is None:
                break
            runs.append(self.invoke(function, event, at=at + timedelta(minutes=1 + attempt), cold=False, **kwargs))
        if runs[-1].error is not None:
            runs[-1].units["sqs.request"] += 1
        return runs


def platform_log_lines(function: str, duration_ms: int, memory_mb: int, init_ms: int) -> list[str]:
    """The lines Lambda itself writes to the function's log group for one invocation."""
    request = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    lines = [
        f"START RequestId: {request} Version: $LATEST",
        f"END RequestId: {request}",
        f"REPORT RequestId: {request}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {duration_ms + init_ms} ms\t"
        f"Memory Size: {memory_mb} MB\tMax Memory Used: {min(memory_mb, 120)} MB"
        + (f"\tInit Duration: {init_ms:.2f} ms" if init_ms else ""),
    ]
    if init_ms:
        lines.insert(0, "INIT_START Runtime Version: python:3.13.v9\tRuntime Version ARN: arn:aws:lambda:us-east-1::"
                        "runtime:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")  # fmt: skip
    return lines


def measure_init_ms(functions: Mapping[str, FunctionFacts], environments: Mapping[str, Mapping[str, str]],
                    runs: int = 3) -> dict[str, int]:  # fmt: skip
    """A cold start's INIT, measured as a fresh interpreter importing the function's handler.py
    (median of `runs`, after one run that writes the bytecode cache)."""

    def one(name: str) -> int:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FINOPSGUARD_", "POWERTOOLS_"))}
        env.update({k: v for k, v in environments[name].items() if k.startswith("POWERTOOLS_")})
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "layers/common/python"), str(ROOT / "functions" / functions[name].handler_dir)]
        )
        timings = []
        for i in range(runs + 1):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import handler"], env=env, check=True, capture_output=True)
            if i or not runs:
                timings.append(time.perf_counter() - started)
        return billed_ms(statistics.median(timings))

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(functions, pool.map(one, functions), strict=True))
