"""`finops-guard`: the operator's command line. Same library, same code paths as the Lambda functions.

  finops-guard report weekly --mock --dry-run --out card.json     render without posting
  finops-guard report weekly                                      build from Cost Explorer and post
  finops-guard report pending                                     list kept (undelivered) messages
  finops-guard report resend [--message-id ID ...]                re-send kept messages
  finops-guard budgets add --id prod --amount 20000 --currency USD --scope account=111111111111
  finops-guard budgets list | show ID | remove ID
  finops-guard budgets apply budgets.yaml [--prune [--yes]] [--dry-run]   idempotent; --prune asks first
  finops-guard outbox list | redrive [--message-id ID ...]       chat messages kept, not delivered
  finops-guard dlq list | redrive [--function weekly-report]      the failure queue: what failed every retry
  finops-guard dlq discard --message-id ID                        delete one handled by hand
  finops-guard invoice create --customer cus_... --amount 1250.00 --currency EUR --description "..."
                                                                  Stripe invoice, sent; card to finance
  finops-guard teams add|list|remove, chargeback run|link        see finops_guard/cli_teams.py
  finops-guard savings list|show|accept|implement|dismiss|reopen  see finops_guard/cli_savings.py

Tables default to the stack's names for --stage (finops-guard-<stage>-budgets, ...); set
AWS_ENDPOINT_URL to work against a local table (moto, DynamoDB Local).

Settings come from the same FINOPSGUARD_* variables as the function (see README); flags override.

Every error is one line on stderr, `finops-guard: <what is wrong>: <what to do>`; --debug adds the
traceback. Exit status (finops_guard/cli_errors.py): 0 done; 1 not found (an unknown message id, budget,
team; a stage not deployed here) or failed (a message not delivered, an event not redriven, AWS denied an
action); 2 bad input (argparse's own, a bad value or file); 4 AWS unavailable (no credentials, no region,
no answer, throttled past retries); 70 internal error; 130 interrupted; 141 stdout closed (`| head`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import traceback
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from finops_guard import cli_doctor, cli_preflight, cli_savings, cli_stage, cli_teams
from finops_guard.cli_errors import (
    EXIT_BAD_INPUT,
    EXIT_BROKEN_PIPE,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_UNAVAILABLE,
    JSON_HELP,
    CliError,
    Progress,
    aws_region_from_environment,
    describe,
    free_port,
    instant,
    one_of,
    operator_log,
    output_file,
    port,
    read_input_file,
    stage_name,
    watch_aws_calls,
    whole_number,
)
from finops_guard.cli_errors import one_line as _one_line
from finops_guard.core.delivery import DeliveryFailed, deliver_all
from finops_guard.core.failures import FUNCTIONS
from finops_guard.costs.budgets import BudgetError, load_budget_file, parse_budget
from finops_guard.costs.settings import ReportSettings

if TYPE_CHECKING:
    from finops_guard.costs.adapters.budget_store import BudgetTable


# Payment terms of a CLI invoice, as the stack's invoiceDaysUntilDue: Stripe takes no negative days, and
# a year is the longest term a finance team means (a typo such as 3000 is refused, not sent).
DAYS_UNTIL_DUE_MAX = 365


def _settings(
    args: argparse.Namespace, function: str = cli_stage.WEEKLY_REPORT, *, guess_budgets: bool = True
) -> ReportSettings:
    """The settings the stage's deployed `function` runs with (cli_stage), flags on top, and the names
    the stack gives every stage where neither says (the budget tables only with `guess_budgets`: the
    weekly card shows budgets only where the deployment has them)."""
    config = ReportSettings.from_env(cli_stage.environment(args, function, offline=_offline(args)))
    flags = {
        "outbox_table": "outbox_table",
        "teams_secret_name": "teams_secret",
        "slack_secret_name": "slack_secret",
        "budgets_table": "budgets_table",
    }
    changes: dict[str, Any] = {name: getattr(args, flag, None) for name, flag in flags.items()}
    changes = {name: value for name, value in changes.items() if value}
    config = replace(config, **changes)
    # The stack names these deterministically from the stage.
    defaults = {
        "teams_secret_name": f"finops-guard/{config.stage}/teams-webhook-url",
        "outbox_table": f"finops-guard-{config.stage}-outbox",
        "budgets_table": f"finops-guard-{config.stage}-budgets",
        "budget_alerts_table": f"finops-guard-{config.stage}-budget-alerts",
    }
    if not guess_budgets:
        defaults = {k: v for k, v in defaults.items() if k not in ("budgets_table", "budget_alerts_table")}
    missing: dict[str, Any] = {name: value for name, value in defaults.items() if getattr(config, name) is None}
    config = replace(config, **missing)
    if getattr(args, "mock", False):
        config = replace(config, use_mock_data=True)
    return config


def _offline(args: argparse.Namespace) -> bool:
    """`--mock --dry-run`: synthetic costs rendered to a file or stdout; nothing is read from AWS."""
    return bool(getattr(args, "mock", False) and getattr(args, "dry_run", False))


def _now(args: argparse.Namespace) -> datetime:
    return args.now or datetime.now(UTC)  # parsed strictly by cli_errors.instant


def _warn(message: str) -> None:
    """A problem worth knowing that does not stop the command (e.g. a service name we don't know)."""
    print(f"finops-guard: warning: {message}", file=sys.stderr)


def cmd_weekly(args: argparse.Namespace) -> int:
    from finops_guard.costs import runtime
    from finops_guard.costs.weekly_report import compose

    config = _settings(args, guess_budgets=False)
    if args.dry_run and args.channel == "slack" and not config.slack_secret_name:
        # A dry run renders the channel asked for, set up or not: nothing is posted, no secret is read.
        config = dataclasses.replace(config, slack_secret_name="dry-run")  # noqa: S106 - a name, never read
    costs = runtime.cost_source(config)
    now = _now(args)
    # What the scheduled run reads (functions/weekly_report/handler.py): budgets, team routes, savings, tags.
    savings = runtime.savings_overview(config, now)
    routing = runtime.routing(config)
    report, messages = compose(
        config,
        costs,
        now=now,
        budgets=[] if _offline(args) else runtime.budget_overview(config, routing, strict=True),
        routing=routing,
        savings=savings.recommendations,
        commitment=savings.commitment,
        tags=runtime.tag_activation(config),
        unready_channels=None if args.dry_run else runtime.chat_setup(config).unready,
        # Never the scheduled run's message ids: its card of the week would be skipped as posted.
        manual_run=f"manual-{datetime.now(UTC):%Y%m%dT%H%M%SZ}",
        breakdown=runtime.report_breakdown(config),
    )
    if args.dry_run:
        chosen = [m for m in messages if m.channel == args.channel and m.secret_name is None]
        text = json.dumps(chosen[0].payload, ensure_ascii=False, indent=2)
        if args.out:
            args.out.write_text(text + "\n", encoding="utf-8")
            print(f"{chosen[0].channel} payload for {report.report_id} written to {args.out} (nothing posted)")
        else:
            print(text)
        return 0
    result = deliver_all(messages, runtime.outbox(config.require("outbox_table")), runtime.webhook_poster(config), now)
    summary = {"delivered": result.delivered, "skipped": result.skipped, "failed": result.failed}
    print(json.dumps({**summary, "not_configured": result.not_configured}, indent=2))
    _print_not_configured(result.not_configured)
    return 1 if result.failed or result.not_configured else 0


def cmd_test_card(args: argparse.Namespace) -> int:
    """A test card to each chat channel of the stage (or to --url, before it goes into its secret):
    posted directly, never kept in the outbox, so a failure is only reported here."""
    from finops_guard.core.adapters.chat import WebhookPoster
    from finops_guard.core.delivery import ChatConfigError, PostFailed, PostRejected
    from finops_guard.core.test_card import test_card
    from finops_guard.costs import runtime
    from finops_guard.costs.teams import webhook_url_problem

    if args.url is not None:
        problem = webhook_url_problem(args.url, args.channel or "teams")
        if problem is not None:
            raise CliError(f"--url {problem}", EXIT_BAD_INPUT)
    stage = cli_stage.stage_of(args)
    if args.url is not None:
        channels = [args.channel or "teams"]
        poster = WebhookPoster(lambda _message: str(args.url))
    else:
        config = _settings(args)
        channels = [args.channel] if args.channel else config.chat_channels
        if args.channel == "slack" and not config.slack_secret_name:
            raise CliError(f"stage {stage!r} has no Slack channel (slackEnabled is off): deploy with it, "
                           "or pass --slack-secret", EXIT_BAD_INPUT)  # fmt: skip
        poster = runtime.webhook_poster(config)
    destination = "the cost cards: weekly report, budget alerts, anomalies, chargeback"
    failed = 0
    for channel in channels:
        message = test_card(stage, channel, destination, datetime.now(UTC))
        try:
            attempts = poster.post(message)
        except (ChatConfigError, PostRejected, PostFailed) as error:
            failed += 1
            print(f"finops-guard: {channel}: not posted: {_one_line(str(error))}", file=sys.stderr)
            continue
        print(f"{channel}: test card posted ({attempts} attempt{'s' if attempts != 1 else ''}); check the channel")
    return EXIT_FAILED if failed else 0


def _print_not_configured(kept: list[tuple[str, str]]) -> None:
    from finops_guard.core.delivery import put_webhook_command

    for secret in dict.fromkeys(secret for _, secret in kept):
        ids = ", ".join(message_id for message_id, s in kept if s == secret)
        print(f"kept, chat not set up yet ({ids}): {put_webhook_command(secret)}", file=sys.stderr)


def cmd_pending(args: argparse.Namespace) -> int:
    from finops_guard.costs import runtime

    config = _settings(args)
    kept = runtime.outbox(config.require("outbox_table")).undelivered()
    if args.json:
        print(json.dumps([{"message_id": item.message.message_id, "kind": item.message.kind,
                           "channel": item.message.channel, "status": item.status, "attempts": item.attempts,
                           "updated_at": item.updated_at, "last_error": item.last_error} for item in kept],
                         indent=2, ensure_ascii=False))  # fmt: skip
        return 0
    for item in kept:
        fields = [item.message.message_id, item.status, f"attempts={item.attempts}", item.updated_at]
        print("\t".join([*fields, item.last_error or ""]))
    if not kept:
        print("no undelivered messages")
    return 0


FINANCE_KINDS = frozenset({"billing-alert", "invoice-sent"})  # posted to the finance channel, not the cost one


def cmd_resend(args: argparse.Namespace) -> int:
    """Re-send kept messages: each to the channel it was meant for (finance cards to finance)."""
    from finops_guard.costs import runtime

    config = _settings(args)
    box = runtime.outbox(config.require("outbox_table"))
    if args.message_id:
        found = [box.get(message_id) for message_id in args.message_id]
        missing = [m for m, k in zip(args.message_id, found, strict=True) if k is None]
        if missing:
            print(f"not in the outbox: {', '.join(missing)}", file=sys.stderr)
            return 1
        kept = [k for k in found if k is not None]
    else:
        kept = box.undelivered()
    if not kept:
        print("nothing to resend")
        return 0
    finance = replace(
        config,
        teams_secret_name=args.finance_teams_secret or f"finops-guard/{config.stage}/finance-teams-webhook-url",
        slack_secret_name=args.finance_slack_secret
        or (f"finops-guard/{config.stage}/finance-slack-webhook-url" if config.slack_secret_name else None),
    )
    failed, not_configured = [], []
    for destination, messages in (
        (config, [k.message for k in kept if k.message.kind not in FINANCE_KINDS]),
        (finance, [k.message for k in kept if k.message.kind in FINANCE_KINDS]),
    ):
        if not messages:
            continue
        # Cost cards, budget alerts (e-mail too when FINOPSGUARD_ALERT_TOPIC_ARN is set), anomaly cards; finance cards.
        result = deliver_all(messages, box, runtime.alert_poster(destination), datetime.now(UTC))
        for message_id in result.delivered:
            print(f"delivered {message_id}")
        for message_id in result.skipped:
            print(f"skipped {message_id} (already delivered or being sent)")
        failed.extend(result.failed)
        not_configured.extend(result.not_configured)
    _print_not_configured(not_configured)
    if failed:
        print(_one_line(str(DeliveryFailed(failed))), file=sys.stderr)
    return 1 if failed or not_configured else 0


def _failure_queue(args: argparse.Namespace) -> tuple[str, Any]:
    from finops_guard.core.adapters.dead_letters import FailureQueue, failure_queue_name

    stage = cli_stage.stage_of(args)
    return stage, FailureQueue(failure_queue_name(stage))


def _read_failures(messages: list[Any], stage: str, function: str | None) -> list[tuple[Any, Any]]:
    """Each message with its parsed failure; with `function`, only that function's."""
    from finops_guard.core.failures import function_of, parse_failure

    read = [(m, parse_failure(m.body, m.attributes, sent_at=m.sent_at)) for m in messages]
    return [(m, f) for m, f in read if function is None or function_of(f, stage) == function]


def cmd_dlq_list(args: argparse.Namespace) -> int:
    """One line per parked failure: id, when, where from, the error, what redrive would do."""
    from finops_guard.core.failures import error_text, format_instant, plan_redrive, source

    stage, queue = _failure_queue(args)
    messages = queue.peek()
    shown = _read_failures(messages, stage, args.function)
    if args.json:
        print(json.dumps([{"message_id": message.message_id, "failed_at": format_instant(failure.failed_at),
                           "source": source(failure, stage), "error": error_text(failure),
                           "redrive": plan_redrive(failure, stage).describe()} for message, failure in shown],
                         indent=2, ensure_ascii=False))  # fmt: skip
        return 0
    for message, failure in shown:
        fields = [message.message_id, format_instant(failure.failed_at), source(failure, stage),
                  error_text(failure)[:300], plan_redrive(failure, stage).describe()]  # fmt: skip
        print("\t".join(_one_line(field) for field in fields))
    scope = f" for {args.function}" if args.function else ""
    others = f" ({len(messages) - len(shown)} other)" if len(messages) > len(shown) else ""
    print(f"{len(shown)} message(s){scope} in {queue.queue_name}{others}")
    return 0


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    """Each parked failure back where it came from (failures.plan_redrive); a message is deleted only
    once Lambda or SQS accepted it, and every other one is made visible again when the run ends."""
    from finops_guard.core.adapters.dead_letters import AsyncInvoker, InboxSender
    from finops_guard.core.failures import InvokeFunction, Keep, plan_redrive

    stage, queue = _failure_queue(args)
    invoker: AsyncInvoker | None = None
    inbox: InboxSender | None = None
    held: list[Any] = []
    redriven = kept = 0
    try:
        for message in queue.take():
            held.append(message)
            matched = _read_failures([message], stage, args.function)
            if not matched:
                continue
            plan = plan_redrive(matched[0][1], stage)
            if args.dry_run:
                print(f"{message.message_id}: would {plan.describe()}")
                continue
            if isinstance(plan, Keep):
                kept += 1
                print(f"kept {message.message_id}: {_one_line(plan.reason)} "
                      f"(finops-guard dlq discard --stage {stage} --message-id {message.message_id})",
                      file=sys.stderr)  # fmt: skip
                continue
            try:
                if isinstance(plan, InvokeFunction):
                    invoker = invoker or AsyncInvoker()
                    invoker.invoke(plan.function_name, plan.payload)
                else:
                    inbox = inbox or InboxSender()
                    inbox.send(plan.queue_name, plan.body)
            except Exception as error:  # not accepted: the message stays in the queue
                kept += 1
                print(f"kept {message.message_id}: {type(error).__name__}: {_one_line(str(error))}", file=sys.stderr)
                continue
            queue.delete(message)
            held.remove(message)
            redriven += 1
            print(f"redriven {message.message_id}: {plan.describe()}")
    finally:
        for message in held:
            queue.release(message)
    print(f"{redriven} redriven, {kept} kept")
    return 1 if kept else 0


def cmd_dlq_discard(args: argparse.Namespace) -> int:
    """Delete the named messages, once their cause was handled by hand (a stream batch, an unrecognised one)."""
    _, queue = _failure_queue(args)
    wanted = set(args.message_id)
    held: list[Any] = []
    try:
        for message in queue.take():
            if message.message_id not in wanted:
                held.append(message)
                continue
            queue.delete(message)
            wanted.discard(message.message_id)
            print(f"discarded {message.message_id}")
    finally:
        for message in held:
            queue.release(message)
    if wanted:
        print(f"not in {queue.queue_name}: {', '.join(sorted(wanted))}", file=sys.stderr)
        return 1
    return 0


def _budget_table(args: argparse.Namespace) -> BudgetTable:
    from finops_guard.costs import runtime

    return runtime.budget_table(_settings(args).require("budgets_table"))


def _scope_document(items: list[str]) -> dict[str, Any]:
    """`account=1`, `service=Amazon EC2`, `tag:team=web`, `cost_category:Environment=prod` -> scope."""
    scope: dict[str, Any] = {}
    for item in items:
        kind_key, sep, value = item.partition("=")
        if not sep:
            raise BudgetError("scope", f"{item!r} is not KIND=VALUE (e.g. account=111111111111, tag:team=web)")
        kind, _, key = kind_key.partition(":")
        if key:
            scope.setdefault(kind, {}).setdefault(key, []).append(value)
        else:
            scope.setdefault(kind, []).append(value)
    return scope


def _csv(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def cmd_budgets_add(args: argparse.Namespace) -> int:
    document = {
        "id": args.id,
        "name": args.name or args.id,
        "scope": _scope_document(args.scope or []),
        "period": args.period,
        "amount": args.amount,
        "currency": args.currency,
        "thresholds": _csv(args.thresholds) or ["50", "75", "90", "100"],
        "alert_on": _csv(args.alert_on) or ["actual", "forecasted"],
        "notify": _csv(args.notify) or ["teams"],
        "owner": args.owner,
        "enforce_hard_limit": args.hard_limit,
        "basis": args.basis,
    }
    budget = parse_budget(document, warn=_warn)
    table = _budget_table(args)
    if table.get(budget.budget_id) is not None:
        print(f"budget {budget.budget_id!r} exists; change it with `budgets apply` or remove it first", file=sys.stderr)
        return 2
    table.put(budget, previous=None, now=datetime.now(UTC))
    print(f"added {budget.budget_id}: {budget.name} ({budget.describe_scope()})")
    return 0


def cmd_budgets_list(args: argparse.Namespace) -> int:
    from finops_guard.core.money import format_money

    budgets = _budget_table(args).all()
    if args.json:
        print(json.dumps([b.to_document() for b in budgets], indent=2, ensure_ascii=False))
        return 0
    for b in budgets:
        thresholds = "/".join(str(t) for t in b.thresholds)
        print(
            f"{b.budget_id}\t{b.period}\t{format_money(b.amount, b.currency)}\t{thresholds} %\t{b.describe_scope()}"
            f"\t{b.basis}"
        )
    if not budgets:
        print("no budgets")
    return 0


def cmd_budgets_show(args: argparse.Namespace) -> int:
    from finops_guard.costs import runtime

    budget = _budget_table(args).get(args.id)
    if budget is None:
        print(f"no budget {args.id!r}", file=sys.stderr)
        return 1
    shown: dict[str, object] = {"budget": budget.to_document()}
    config = _settings(args)
    status = runtime.budget_alert_table(config.require("budget_alerts_table")).get_statuses([budget.budget_id])
    shown["status"] = status.get(budget.budget_id)
    print(json.dumps(shown, indent=2, ensure_ascii=False))
    return 0


def cmd_budgets_remove(args: argparse.Namespace) -> int:
    if not _budget_table(args).delete(args.id):
        print(f"no budget {args.id!r}", file=sys.stderr)
        return 1
    print(f"removed {args.id}")
    return 0


def cmd_budgets_apply(args: argparse.Namespace) -> int:
    path = Path(args.file)
    text = read_input_file(path, "budget file")
    import yaml  # the CLI's own dependency

    try:
        wanted = load_budget_file(text, path.name, warn=_warn)
    except yaml.YAMLError as error:  # safe loading: a !!python/... tag is refused here, never constructed
        raise CliError(f"{path}: {describe(error, None)[0]}", EXIT_BAD_INPUT) from None
    except json.JSONDecodeError as error:
        raise CliError(f"{path}: {describe(error, None)[0]}", EXIT_BAD_INPUT) from None
    table = _budget_table(args)
    stored = {b.budget_id: document for b, document in table.all_with_documents()}
    created: list[str] = []
    updated: list[str] = []
    unchanged: list[str] = []
    for budget in wanted:
        previous = stored.get(budget.budget_id)
        if previous == budget.canonical_json():
            unchanged.append(budget.budget_id)
        else:
            (created if previous is None else updated).append(budget.budget_id)
    extra = sorted(set(stored) - {b.budget_id for b in wanted})
    removed = extra if args.prune else []
    if args.dry_run:
        print(f"dry run, nothing written: would create {len(created)}, would update {len(updated)}, "
              f"would remove {len(removed)}, unchanged {len(unchanged)}")  # fmt: skip
        for label, ids in (("would create", created), ("would update", updated), ("would remove", removed),
                           ("unchanged", unchanged)):  # fmt: skip
            for budget_id in ids:
                print(f"  {label}: {budget_id}")
    else:
        if removed and not _prune_confirmed(removed, file_is_empty=not wanted, yes=args.yes):
            print("not confirmed: nothing written", file=sys.stderr)
            return EXIT_FAILED
        now = datetime.now(UTC)
        by_id = {b.budget_id: b for b in wanted}
        progress = Progress(len(created) + len(updated) + len(removed), "budgets written")
        for budget_id in (*created, *updated):
            table.put(by_id[budget_id], previous=stored.get(budget_id), now=now)
            progress.step()
        for budget_id in removed:
            table.delete(budget_id)
            progress.step()
        print(f"{len(created)} created, {len(updated)} updated, {len(unchanged)} unchanged, {len(removed)} removed")
        for label, ids in (("created", created), ("updated", updated), ("removed", removed)):
            for budget_id in ids:
                print(f"  {label}: {budget_id}")
    if extra and not args.prune:
        print(f"  not in the file (kept; --prune removes them): {', '.join(extra)}")
    return 0


def _prune_confirmed(removed: list[str], *, file_is_empty: bool, yes: bool) -> bool:
    """--prune deletes budgets: with --yes, or after a y on a terminal. A file without budgets would
    remove every one, so it needs --yes even on a terminal; without a terminal it is refused (exit 2)."""
    if yes:
        return True
    count = f"{len(removed)} budget{'s' if len(removed) != 1 else ''}"
    if file_is_empty:
        raise CliError(f"the file has no budgets: --prune would remove all {count}; pass --yes if that is meant",
                       EXIT_BAD_INPUT)  # fmt: skip
    if not sys.stdin.isatty():
        raise CliError(f"--prune would remove {count} not in the file ({_listed(removed)}); pass --yes to confirm"
                       " (no terminal to ask on); --dry-run shows every change", EXIT_BAD_INPUT)  # fmt: skip
    for budget_id in removed:
        print(f"  would remove: {budget_id}")
    try:
        answer = input(f"remove {count} not in the file? [y/N] ")
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def _listed(ids: list[str], shown: int = 5) -> str:
    more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
    return ", ".join(ids[:shown]) + more


def cmd_local_serve(args: argparse.Namespace) -> int:
    """Development only: needs a FinOps Guard checkout (devtools/) and moto installed."""
    repo = Path(__file__).resolve().parents[4]
    sys.path.insert(0, str(repo))
    try:
        from devtools.local_serve import serve
    except ImportError as error:
        raise CliError(
            f"finops-guard local serve runs from a FinOps Guard checkout with `make venv`: {error}", EXIT_BAD_INPUT
        ) from None
    secret = args.secret or os.environ.get("STRIPE_WEBHOOK_SECRET") or ""
    if secret and not secret.startswith("whsec_"):
        raise CliError("--secret must be the whsec_... signing secret (stripe listen prints it)", EXIT_BAD_INPUT)
    free_port(args.port)
    from devtools.stripe_events import TEST_SECRET

    serve(args.port, secret or TEST_SECRET)
    return 0


def cmd_invoice_create(args: argparse.Namespace) -> int:
    """The invoice bot from a terminal: same code path and idempotency as POST /invoices."""
    import uuid

    from finops_guard.billing.adapters.invoice_requests import InvoiceRequestTable
    from finops_guard.billing.adapters.stripe_api import (
        StripeApi,
        StripeRequestError,
        StripeUnavailable,
        read_stripe_api_key,
    )

    # The same strict reading as POST /invoices: ASCII digits only, Stripe's 8-digit maximum.
    from finops_guard.billing.billing_admin import invoice_request
    from finops_guard.billing.cards.invoice import render_invoice_sent
    from finops_guard.billing.invoice_bot import InvoiceRequestError, RequestConflict, announcement, issue_invoice
    from finops_guard.costs import runtime

    stage = cli_stage.stage_of(args)
    request_id = args.request_id or f"cli-{uuid.uuid4()}"
    body = {"customer": args.customer, "amount": args.amount, "currency": args.currency,
            "description": args.description}  # fmt: skip
    try:
        request = invoice_request(body, idempotency_key=request_id)
    except InvoiceRequestError as error:
        print(f"finops-guard: {error}", file=sys.stderr)
        return 2
    # As the stage's billing admin API runs: its Stripe key secret, table, terms and finance chat.
    env = cli_stage.environment(args, cli_stage.BILLING_ADMIN)
    key_secret = env.get("FINOPSGUARD_STRIPE_API_KEY_SECRET_NAME") or f"finops-guard/{stage}/stripe-api-key"
    api = StripeApi(lambda: read_stripe_api_key(key_secret), api_base=env.get("FINOPSGUARD_STRIPE_API_BASE"))
    table = env.get("FINOPSGUARD_INVOICE_REQUESTS_TABLE") or f"finops-guard-{stage}-invoice-requests"
    days_until_due = args.days_until_due
    if days_until_due is None:
        deployed_days = env.get("FINOPSGUARD_INVOICE_DAYS_UNTIL_DUE", "")
        days_until_due = int(deployed_days) if deployed_days.isdigit() and len(deployed_days) <= 3 else 30
    requested_by = f"cli:{os.environ.get('USER') or 'operator'}"
    print(f"request id {request.request_id} (re-run with --request-id {request.request_id} to resume it safely)")
    try:
        issued = issue_invoice(request, api=api, store=InvoiceRequestTable(table), requested_by=requested_by,
                               days_until_due=days_until_due, now=datetime.now(UTC))  # fmt: skip
    except (RequestConflict, StripeRequestError) as error:
        raise CliError(str(error)) from None
    except StripeUnavailable as error:
        raise CliError(f"{error}; run again with --request-id {request.request_id}", EXIT_UNAVAILABLE) from None
    print(json.dumps(issued.to_json(), indent=2))
    if issued.replayed:
        return 0
    finance = cli_stage.deployed(args, cli_stage.BILLING_ADMIN).get("FINOPSGUARD_TEAMS_SECRET_NAME")
    finance_secret = finance or f"finops-guard/{stage}/finance-teams-webhook-url"
    chat = replace(_settings(args, cli_stage.BILLING_ADMIN), teams_secret_name=args.teams_secret or finance_secret)
    messages = announcement(issued, chat.chat_channels, requested_by, render=render_invoice_sent)
    outbox = runtime.outbox(chat.require("outbox_table"))
    result = deliver_all(messages, outbox, runtime.webhook_poster(chat), datetime.now(UTC))
    _print_not_configured(result.not_configured)
    if result.failed:
        print("finance card kept in the outbox (finops-guard report resend)", file=sys.stderr)
    return 0


FALLBACK_VERSION = "0.1.0"  # pyproject's version (a test keeps them equal), when the package metadata is absent
EPILOG = (
    "exit codes: 0 done, 1 not found or failed, 2 bad input, 4 AWS unavailable (no credentials, no region, "
    "no answer, throttled), 70 internal error, 130 interrupted; --debug shows the traceback of an error"
)


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("finops-guard")
    except PackageNotFoundError:
        return FALLBACK_VERSION


class Parser(argparse.ArgumentParser):
    """Every (sub)command: a usage error is one line and exit 2 (argparse prints usage and a second line),
    and --debug is accepted wherever it is put."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="on an error, show the traceback too"
        )

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{message} (see {self.prog} --help)", EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="finops-guard", description="FinOps Guard operator tool", epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"finops-guard {version()}")
    parser.set_defaults(debug=False)
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="weekly cost report").add_subparsers(dest="action", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--stage", type=stage_name, help=cli_stage.STAGE_HELP)
        p.add_argument("--outbox-table", help="outbox table name (stack output OutboxTableName)")
        p.add_argument(
            "--teams-secret", help="Teams webhook secret name (default finops-guard/<stage>/teams-webhook-url)"
        )
        p.add_argument("--slack-secret", help="Slack webhook secret name (Slack is off without it)")

    weekly = report.add_parser("weekly", help="build the weekly report (and post it unless --dry-run)")
    common(weekly)
    weekly.add_argument("--mock", action="store_true", help="deterministic synthetic cost data, no Cost Explorer")
    weekly.add_argument("--dry-run", action="store_true", help="write the payload instead of posting")
    weekly.add_argument(
        "--out", type=output_file, help="with --dry-run: file to write the payload to, in an existing folder"
    )
    weekly.add_argument("--channel", choices=["teams", "slack"], default="teams", help="with --dry-run: which payload")
    weekly.add_argument("--now", type=instant, help="pretend it is this ISO instant or UTC day (default: now)")
    weekly.set_defaults(func=cmd_weekly)

    test = report.add_parser("test-card", help="post a test card to the stage's chat channels (or to --url)")
    common(test)
    test.add_argument("--channel", choices=["teams", "slack"], help="only this channel (default: every one set up)")
    test.add_argument(
        "--url", help="post to this webhook URL instead of the stage's secret: try a URL before you store it"
    )
    test.set_defaults(func=cmd_test_card)

    pending = report.add_parser("pending", help="list messages kept in the outbox, not delivered")
    common(pending)
    pending.add_argument("--json", action="store_true", help=JSON_HELP)
    pending.set_defaults(func=cmd_pending)

    resend = report.add_parser(
        "resend", help="re-send kept messages: weekly reports, budget alerts, anomaly cards (or --message-id)"
    )
    common(resend)
    resend.add_argument("--message-id", action="append", help="a message id (repeatable)")
    resend.add_argument("--finance-teams-secret", help="default finops-guard/<stage>/finance-teams-webhook-url")
    resend.add_argument("--finance-slack-secret", help="default finops-guard/<stage>/finance-slack-webhook-url")
    resend.set_defaults(func=cmd_resend)

    budgets = commands.add_parser("budgets", help="budgets kept in DynamoDB").add_subparsers(
        dest="action", required=True
    )

    def table_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--stage", type=stage_name, help=cli_stage.STAGE_HELP)
        p.add_argument("--budgets-table", help="budgets table (default finops-guard-<stage>-budgets)")

    add = budgets.add_parser("add", help="add one budget")
    table_args(add)
    add.add_argument("--id", required=True)
    add.add_argument("--name")
    add.add_argument("--amount", required=True, help="amount per period, e.g. 20000 or 1500.50")
    add.add_argument("--currency", required=True, help="ISO 4217, e.g. USD")
    add.add_argument("--period", default="monthly", help="monthly | quarterly | annual")
    add.add_argument(
        "--scope", action="append", help="KIND=VALUE, repeatable: account=…, service=…, tag:KEY=…, cost_category:NAME=…"
    )
    add.add_argument("--thresholds", help="comma-separated percentages (default 50,75,90,100)")
    add.add_argument("--alert-on", help="actual,forecasted (default both)")
    add.add_argument("--notify", help="teams,slack,email (default teams)")
    add.add_argument("--owner")
    add.add_argument("--hard-limit", action="store_true", help="publish Budget Exceeded to EventBridge at 100 %%")
    add.add_argument("--basis", help="usage (default: before credits, refunds and tax) or net (after them)")
    add.set_defaults(func=cmd_budgets_add)

    listing = budgets.add_parser("list", help="list budgets")
    table_args(listing)
    listing.add_argument("--json", action="store_true", help=JSON_HELP)
    listing.set_defaults(func=cmd_budgets_list)

    show = budgets.add_parser("show", help="one budget and its latest evaluation")
    table_args(show)
    show.add_argument("id")
    show.set_defaults(func=cmd_budgets_show)

    remove = budgets.add_parser("remove", help="remove a budget")
    table_args(remove)
    remove.add_argument("id")
    remove.set_defaults(func=cmd_budgets_remove)

    apply = budgets.add_parser("apply", help="make the table match a YAML/JSON file (idempotent)")
    table_args(apply)
    apply.add_argument("file")
    apply.add_argument("--prune", action="store_true", help="also remove budgets that are not in the file")
    apply.add_argument("--dry-run", action="store_true", help="show what would change, write nothing")
    apply.add_argument("--yes", action="store_true", help="with --prune: remove without asking (needed without a TTY)")
    apply.set_defaults(func=cmd_budgets_apply)

    invoice = commands.add_parser("invoice", help="the invoice bot").add_subparsers(dest="action", required=True)
    create = invoice.add_parser("create", help="create, finalize and send a Stripe invoice; post it to finance")
    create.add_argument("--customer", required=True, help="Stripe customer id (cus_...)")
    create.add_argument("--amount", required=True, help="in major units, e.g. 1250.00 (JPY: 1500, KWD: 12.345)")
    create.add_argument("--currency", required=True, help="ISO 4217 code")
    create.add_argument("--description", required=True)
    create.add_argument("--request-id", help="resume or replay an earlier request (default: a new id)")
    create.add_argument(
        "--days-until-due",
        type=whole_number(0, DAYS_UNTIL_DUE_MAX, "the stack's invoiceDaysUntilDue range; Stripe refuses negatives"),
        help=f"payment terms in days, 0-{DAYS_UNTIL_DUE_MAX} (default: the stage's invoiceDaysUntilDue, else 30)",
    )
    create.add_argument("--stage", type=stage_name, help=cli_stage.STAGE_HELP)
    create.add_argument("--outbox-table", help="outbox table name (default finops-guard-<stage>-outbox)")
    create.add_argument(
        "--teams-secret", help="finance Teams webhook secret (default finops-guard/<stage>/finance-teams-webhook-url)"
    )
    create.set_defaults(func=cmd_invoice_create)

    outbox = commands.add_parser("outbox", help="chat messages kept in the outbox").add_subparsers(
        dest="action", required=True
    )
    listing_kept = outbox.add_parser("list", help="messages not delivered (failed, or in flight)")
    common(listing_kept)
    listing_kept.add_argument("--json", action="store_true", help=JSON_HELP)
    listing_kept.set_defaults(func=cmd_pending)
    redrive = outbox.add_parser("redrive", help="send them again, each to its channel (finance cards to finance)")
    common(redrive)
    redrive.add_argument("--message-id", action="append", help="a message id (repeatable; default: all kept)")
    redrive.add_argument("--finance-teams-secret", help="default finops-guard/<stage>/finance-teams-webhook-url")
    redrive.add_argument("--finance-slack-secret", help="default finops-guard/<stage>/finance-slack-webhook-url")
    redrive.set_defaults(func=cmd_resend)

    dlq = commands.add_parser(
        "dlq", help="the stage's failure queue: events that failed every retry, poison messages"
    ).add_subparsers(dest="action", required=True)
    for name, handler, text in (
        ("list", cmd_dlq_list, "show each parked failure, its error and what redrive would do (left in the queue)"),
        ("redrive", cmd_dlq_redrive, "send each back (invoke its function, or return it to the anomaly inbox), "
                                     "then delete it"),
        ("discard", cmd_dlq_discard, "delete messages handled by hand (a stream batch, an unrecognised one)"),
    ):  # fmt: skip
        sub = dlq.add_parser(name, help=text)
        sub.add_argument("--stage", type=stage_name, help=cli_stage.STAGE_HELP)
        if name == "discard":
            sub.add_argument("--message-id", action="append", required=True, help="a message id (repeatable)")
        else:
            sub.add_argument(
                "--function",
                type=one_of(FUNCTIONS, "function"),
                help="only this function's, by short name: weekly-report, anomaly-alerts, ...",
            )
        if name == "list":
            sub.add_argument("--json", action="store_true", help=JSON_HELP)
        if name == "redrive":
            sub.add_argument("--dry-run", action="store_true", help="say what would be done; change nothing")
        sub.set_defaults(func=handler)

    local = commands.add_parser("local", help="development tools").add_subparsers(dest="action", required=True)
    serve = local.add_parser("serve", help="run the Stripe webhook endpoint on 127.0.0.1 over an embedded AWS")
    serve.add_argument("--port", type=port, default=8787, help="TCP port on 127.0.0.1 (default 8787)")
    serve.add_argument("--secret", help="the whsec_ signing secret (default STRIPE_WEBHOOK_SECRET or a test secret)")
    serve.set_defaults(func=cmd_local_serve)
    cli_teams.register(commands)
    cli_savings.register(commands)
    cli_preflight.register(commands)
    cli_doctor.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The one error boundary: whatever a command raises becomes one line on stderr and an exit code
    (cli_errors.describe); the traceback only with --debug."""
    args: argparse.Namespace | None = None
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as done:  # --help, --version
            return done.code if isinstance(done.code, int) else 0
        with aws_region_from_environment(), operator_log(debug=args.debug):
            watch_aws_calls()
            code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("finops-guard: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        if args is not None and args.debug:
            traceback.print_exc()
        try:
            stage = cli_stage.stage_of(args)
        except CliError:
            stage = None
        message, code = describe(error, stage)
        print(f"finops-guard: {message}", file=sys.stderr)
        return code


def _silence_stdout() -> None:
    """Whatever is still buffered for the closed pipe is dropped, so Python's exit does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (a test's captured stdout)
        pass


if __name__ == "__main__":
    sys.exit(main())
