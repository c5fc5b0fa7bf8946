"""How `finops-guard` fails: one line on stderr that says what is wrong and what to do, a documented
exit code, and a traceback only with --debug.

Exit codes (every command):
  0    done
  1    not found or failed: an unknown message id, budget, team or recommendation; a stage that is not
       deployed here (no table, queue, secret or bucket of it); AWS denied an action (the line names it);
       a message not delivered, an event not redriven; a --prune not confirmed at the prompt; any other
       error AWS answered
  2    bad input: argparse's usage errors, a value that does not parse (--now, --month, --on, --port,
       --stage, --function), an input file that is missing, a folder, not UTF-8, not valid YAML/JSON
       or not a valid budget, an output folder that does not exist, a port in use
  4    AWS unavailable: no credentials (or credentials AWS refuses), no region, an endpoint that does
       not answer, throttling or a 5xx past the retries
  70   internal error (EX_SOFTWARE): a bug; rerun with --debug and report the traceback
  130  interrupted (Ctrl-C)
  141  stdout closed early (`| head`): quiet, as a process ended by SIGPIPE; nothing on stderr

The commands raise `CliError(message, code)` where they know the cause; `describe` maps everything else
(botocore, files, YAML/JSON, the domain's validation errors) to a line and a code.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 4
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

_NO_CREDENTIALS = (
    NoCredentialsError, PartialCredentialsError, CredentialRetrievalError, TokenRetrievalError, SSOError,
    ProfileNotFound,
)  # fmt: skip
REFUSED_CREDENTIAL_CODES = frozenset(
    {"InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken", "ExpiredTokenException",
     "RequestExpired", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidSignatureException"}
)  # fmt: skip
DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "UnauthorizedException",
     "KMSAccessDeniedException"}
)  # fmt: skip
BUSY_CODES = frozenset(
    {"Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException", "RequestLimitExceeded",
     "ProvisionedThroughputExceededException", "RequestThrottled", "RequestThrottledException", "SlowDown",
     "ServiceUnavailable", "ServiceUnavailableException", "InternalError", "InternalFailure", "InternalServerError",
     "RequestTimeout", "RequestTimeoutException"}
)  # fmt: skip
NOT_FOUND_CODES = frozenset(
    {"ResourceNotFoundException", "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "NoSuchBucket",
     "NoSuchKey", "NotFound", "404", "TableNotFoundException"}
)  # fmt: skip
# The request parameter that names the resource of a call, and what to call that resource in a message.
RESOURCE_PARAMETERS = {"TableName": "table", "QueueName": "queue", "QueueUrl": "queue", "SecretId": "secret",
                       "FunctionName": "function", "Bucket": "bucket"}  # fmt: skip
# Validation errors whose text is already one line naming what to change (not imported: a CLI-only view).
BAD_INPUT_ERRORS = frozenset({"finops_guard.core.documents.DocumentError", "finops_guard.costs.budgets.BudgetError"})
_STAGE = re.compile(r"[a-z0-9-]{1,16}")
_MONTH = re.compile(r"\d{4}-\d{2}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_DENIED_ACTION = re.compile(r"perform: ([A-Za-z0-9-]+:[A-Za-z0-9*]+)")


class CliError(Exception):
    """A failure whose cause the command knows: `message` is one line saying what is wrong and what to do."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def one_line(text: str, limit: int = 600) -> str:
    """A chat service's or AWS's error body may span lines; stderr gets one line per problem."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# --- argparse `type=` functions: strict, so a bad value is a usage error (exit 2) before any work -----


JSON_HELP = "print a JSON array instead of lines (an empty list is [])"


@contextmanager
def operator_log(*, debug: bool) -> Iterator[None]:
    """While a command runs, the library's log records (written for CloudWatch, with fields a person
    does not read) are the command's own business: each command says what happened in its own lines.
    With --debug every record from INFO up is shown on stderr, one line each. The logger's handlers
    are set aside and put back afterwards (a Lambda handler loaded in the same process keeps its own)."""
    logger = logging.getLogger("finops_guard")
    saved = (logger.handlers[:], logger.propagate, logger.level)
    shown = _StderrLog() if debug else logging.NullHandler()
    logger.handlers, logger.propagate = [shown], False
    logger.setLevel(logging.INFO if debug else logging.CRITICAL)
    try:
        yield
    finally:
        logger.handlers, logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])


class _StderrLog(logging.Handler):
    """One line per record on the stderr of the moment (a test's capture, a terminal)."""

    def emit(self, record: logging.LogRecord) -> None:
        standard = logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
        fields = ", ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in standard)
        text = one_line(record.getMessage()) + (f" ({one_line(fields)})" if fields else "")
        print(f"finops-guard: debug: {record.levelname.lower()} {record.name}: {text}", file=sys.stderr)


class Progress:
    """`done/total what` on stderr while a long run writes, at most once every `every` seconds, and only
    for runs of at least `minimum` items: a quick run prints nothing extra, a long one shows it is alive."""

    def __init__(self, total: int, what: str, *, minimum: int = 100, every: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, stream: TextIO | None = None) -> None:  # fmt: skip
        self.total, self.what, self.every, self.clock = total, what, every, clock
        self.stream = stream
        self.on = total >= minimum
        self.done = 0
        self.shown_at = clock()

    def step(self) -> None:
        self.done += 1
        if not self.on or self.done == self.total:
            return
        now = self.clock()
        if now - self.shown_at >= self.every:
            self.shown_at = now
            print(f"  {self.done}/{self.total} {self.what}", file=self.stream or sys.stderr, flush=True)


def stage_name(text: str) -> str:
    stage = text.strip()
    if not _STAGE.fullmatch(stage) or stage.startswith("-") or stage.endswith("-"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: use 1-16 lowercase letters, digits or inner hyphens (it is part of resource names)"
        )
    return stage


def instant(text: str) -> datetime:
    """An ISO instant (2026-12-07T08:00:00Z) or day (2026-12-07, midnight UTC); naive means UTC."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a real date or ISO instant (e.g. 2026-12-07 or 2026-12-07T08:00:00Z)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def day(text: str) -> date:
    try:
        if not _DAY.fullmatch(text.strip()):
            raise ValueError
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a real day YYYY-MM-DD (e.g. 2026-11-03)") from None


def month(text: str) -> str:
    """YYYY-MM with a month from 01 to 12, returned as given."""
    value = text.strip()
    if not _MONTH.fullmatch(value) or not 1 <= int(value[5:]) <= 12:
        raise argparse.ArgumentTypeError(f"{text!r} is not a month YYYY-MM (e.g. 2026-10)")
    return value


def port(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = -1
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return number


def whole_number(low: int, high: int, why: str) -> Any:
    """An integer from `low` to `high` inclusive; `why` says where the range comes from."""

    def parse(text: str) -> int:
        try:
            number = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number ({low}-{high})") from None
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is outside {low}-{high} ({why})")
        return number

    return parse


def output_file(text: str) -> Path:
    """A file to write: its folder must exist (nothing is created), and it must not be a folder."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder: give a file name in it (e.g. {path / 'card.json'})")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"no folder {str(path.parent)!r}: create it (mkdir -p {path.parent}) first")
    return path


def output_folder(text: str) -> Path:
    """An existing folder to write into (nothing is created at its top)."""
    path = Path(text).expanduser()
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise argparse.ArgumentTypeError(f"{text!r} {what}: create the folder (mkdir -p {path}) or choose another")
    return path


def one_of(names: frozenset[str], what: str) -> Any:
    def parse(text: str) -> str:
        if text not in names:
            raise argparse.ArgumentTypeError(f"unknown {what} {text!r}: one of {', '.join(sorted(names))}")
        return text

    return parse


def free_port(number: int) -> None:
    """CliError (exit 2) when 127.0.0.1:`number` cannot be bound: in use, or a privileged port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", number))
        except OSError as error:
            why = "is in use" if error.errno in (98, 48, 10048) else f"cannot be used ({error.strerror})"
            raise CliError(f"port {number} {why}: pass another --port", EXIT_BAD_INPUT) from None


def read_input_file(path: Path, what: str = "file") -> str:
    """The text of a UTF-8 file (a UTF-8 BOM is accepted); CliError (exit 2) naming the problem otherwise."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CliError(f"no such {what}: {path}", EXIT_BAD_INPUT) from None
    except IsADirectoryError:
        raise CliError(f"{path} is a folder: give the {what} in it", EXIT_BAD_INPUT) from None
    except PermissionError:
        raise CliError(f"cannot read {path}: permission denied", EXIT_BAD_INPUT) from None
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror or error}", EXIT_BAD_INPUT) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CliError(f"{path} is UTF-16: save it as UTF-8", EXIT_BAD_INPUT)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise CliError(
            f"{path} is not UTF-8 (byte 0x{data[error.start]:02x} on line {line}; Latin-1 or Windows-1252?):"
            " save it as UTF-8",
            EXIT_BAD_INPUT,
        ) from None


# --- AWS: which resource a failed call was about ------------------------------------------------------

_calls: dict[str, tuple[str, dict[str, str]]] = {}  # operation -> (IAM prefix, resource parameters)


def _remember_call(params: dict[str, Any], model: Any, **_: Any) -> None:
    names = {key: value for key, value in params.items() if key in (*RESOURCE_PARAMETERS, "Key")}
    prefix = model.service_model.signing_name or model.service_model.endpoint_prefix
    _calls[model.name] = (prefix, {key: str(value) for key, value in names.items()})


def watch_aws_calls() -> None:
    """Remember each AWS call's resource name (TableName, QueueName, ...) so a not-found or access-denied
    line can name it; ClientError does not carry the request. Clients made before this are not watched."""
    import boto3

    try:
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
    except BotoCoreError:
        return  # a bad AWS_PROFILE: the command's first AWS call fails the same way and is described
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-parameter-build", _remember_call, unique_id="finops-guard-cli")


@contextmanager
def aws_region_from_environment() -> Iterator[None]:
    """AWS_REGION counts, as for the AWS CLI, the CDK and preflight: botocore itself reads only
    AWS_DEFAULT_REGION (and the profile). Set for the command's duration, then restored."""
    region, default = os.environ.get("AWS_REGION"), os.environ.get("AWS_DEFAULT_REGION")
    if region and not default:
        os.environ["AWS_DEFAULT_REGION"] = region
    try:
        yield
    finally:
        if region and not default:
            os.environ.pop("AWS_DEFAULT_REGION", None)


def _region() -> str | None:
    import boto3

    try:
        session = boto3.DEFAULT_SESSION
        return os.environ.get("AWS_REGION") or (session.region_name if session else None)
    except BotoCoreError:
        return None


def _endpoint_hint() -> str:
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    return f"check the network, or AWS_ENDPOINT_URL ({endpoint})" if endpoint else "check the network and proxy"


def _resource(names: dict[str, str]) -> tuple[str, str] | None:
    for key, kind in RESOURCE_PARAMETERS.items():
        if key in names:
            name = names[key].rsplit("/", 1)[-1] if key == "QueueUrl" else names[key]
            return kind, name
    return None


def _not_found(error: ClientError, code: str, stage: str | None, names: dict[str, str]) -> str:
    where = f" in {region}" if (region := _region()) else ""
    deploy = f"deploy it (make deploy STAGE={stage}) or pass --stage" if stage else "deploy it or pass --stage"
    if code == "NoSuchKey" and "Bucket" in names:
        return f"no object {names.get('Key', '')} in bucket {names['Bucket']}: run the job that writes it first"
    found = _resource(names)
    if found is None:
        detail = one_line(error.response.get("Error", {}).get("Message", "") or code)
        return f"not found{where} ({error.operation_name}: {detail}); is stage {stage!r} deployed here? {deploy}"
    kind, name = found
    if stage and (name.startswith(f"finops-guard-{stage}-") or name.startswith(f"finops-guard/{stage}/")):
        return f"stage {stage!r} is not deployed here: no {kind} {name}{where}; {deploy}"
    return f"no {kind} {name}{where}: check the name given (its flag or FINOPSGUARD_* variable), or the AWS account"


def _client_error(error: ClientError, stage: str | None) -> tuple[str, int]:
    details = error.response.get("Error", {})
    code = str(details.get("Code", ""))
    message = one_line(str(details.get("Message", "")), 300)
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    prefix, names = _calls.get(error.operation_name, ("", {}))
    found = _resource(names)
    on = f" on {found[0]} {found[1]}" if found else ""
    if code in REFUSED_CREDENTIAL_CODES:
        return f"AWS refused the credentials ({code}): refresh them (aws sso login, or new keys)", EXIT_UNAVAILABLE
    if code in DENIED_CODES:
        named = _DENIED_ACTION.search(message)
        action = named.group(1) if named else f"{prefix or 'the service'}:{error.operation_name}"
        return (f"AWS denied {action}{on} ({code}): grant {action} to the caller's IAM role or user"
                " (README: operator permissions)", EXIT_FAILED)  # fmt: skip
    if code in BUSY_CODES or status >= 500:
        return (f"AWS is busy or unavailable: {code or status} on {error.operation_name}{on} after retries;"
                " wait a minute and run the command again", EXIT_UNAVAILABLE)  # fmt: skip
    if code in NOT_FOUND_CODES:
        return _not_found(error, code, stage, names), EXIT_FAILED
    return f"AWS answered {code} to {error.operation_name}{on}: {message}", EXIT_FAILED


def _boto_error(error: BotoCoreError) -> tuple[str, int]:
    if isinstance(error, ProfileNotFound):
        return f"{error}: fix AWS_PROFILE, or add the profile to ~/.aws/config", EXIT_UNAVAILABLE
    if isinstance(error, _NO_CREDENTIALS):
        return (f"no usable AWS credentials ({type(error).__name__}: {one_line(str(error), 200)}): set AWS_PROFILE,"
                " or run aws configure / aws sso login", EXIT_UNAVAILABLE)  # fmt: skip
    if isinstance(error, NoRegionError):
        return "no AWS region: set AWS_REGION, or a region in your AWS profile (aws configure)", EXIT_UNAVAILABLE
    if isinstance(error, BotoConnectionError | HTTPClientError):
        return f"cannot reach AWS ({one_line(str(error), 200)}): {_endpoint_hint()}", EXIT_UNAVAILABLE
    if isinstance(error, ParamValidationError):
        return f"AWS would refuse the request: {one_line(str(error), 300)}", EXIT_BAD_INPUT
    return f"AWS call failed: {type(error).__name__}: {one_line(str(error), 300)}", EXIT_FAILED


def _file_error(error: OSError) -> tuple[str, int]:
    name = error.filename or "a file"
    if isinstance(error, FileNotFoundError):
        return f"no such file or folder: {name}", EXIT_BAD_INPUT
    if isinstance(error, IsADirectoryError):
        return f"{name} is a folder, not a file", EXIT_BAD_INPUT
    if isinstance(error, PermissionError):
        return f"permission denied: {name}", EXIT_BAD_INPUT
    return f"cannot use {name}: {error.strerror or error}", EXIT_FAILED


def _yaml_error(error: BaseException) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"not valid YAML: {one_line(str(problem), 200)}{at}"


def describe(error: BaseException, stage: str | None) -> tuple[str, int]:
    """The one line (without the `finops-guard: ` prefix) and the exit code for an error a command raised."""
    from finops_guard.core.settings import SettingsError
    from finops_guard.costs.budgets import BudgetError
    from finops_guard.costs.teams import TeamConfigError, TeamWebhooksError
    from finops_guard.preflight import AwsUnreachable, PreflightInputError

    if isinstance(error, CliError):
        return one_line(error.message), error.code
    if any(f"{kind.__module__}.{kind.__qualname__}" in BAD_INPUT_ERRORS for kind in type(error).__mro__):
        return one_line(str(error)), EXIT_BAD_INPUT
    if isinstance(error, SettingsError | BudgetError | TeamConfigError | TeamWebhooksError | PreflightInputError):
        return one_line(str(error)), EXIT_BAD_INPUT
    if isinstance(error, AwsUnreachable):
        return one_line(str(error)), EXIT_UNAVAILABLE
    if isinstance(error, ClientError):
        return _client_error(error, stage)
    if isinstance(error, BotoCoreError):
        return _boto_error(error)
    if isinstance(error, UnicodeDecodeError):
        return f"input is not UTF-8 ({one_line(str(error), 200)}): save it as UTF-8", EXIT_BAD_INPUT
    if isinstance(error, OSError):
        return _file_error(error)
    if isinstance(error, json.JSONDecodeError):
        return f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}", EXIT_BAD_INPUT
    if type(error).__module__.split(".")[0] == "yaml":
        return _yaml_error(error), EXIT_BAD_INPUT
    return (f"internal error: {type(error).__name__}: {one_line(str(error), 300)}; rerun with --debug and report it",
            EXIT_INTERNAL)  # fmt: skip
