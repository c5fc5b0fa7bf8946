"""What is not set up yet, for the weekly card's "Setup" section (absent once everything is).

The first days after a deploy: a chat channel whose webhook secret still holds its placeholder, a
cost allocation tag nobody activated (Cost Explorer then reports 100 % untagged, without an error),
and Cost Anomaly Detection still learning the account's spend. Each is a setup step, said on the
card; none of them fails a run or pages.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from finops_guard.core.delivery import put_webhook_command
from finops_guard.core.formats import format_day
from finops_guard.costs.attribution import AttributionSummary

# AWS Cost Management user guide, "Detecting unusual spend with AWS Cost Anomaly Detection"
# (https://docs.aws.amazon.com/cost-management/latest/userguide/manage-ad.html): "If you create a new
# monitor, it can take 24 hours to begin detecting new anomalies. For a new service subscription, 10
# days of historical service usage data is needed before anomalies can be detected for that service."
ANOMALY_FIRST_ALERT_HOURS = 24
ANOMALY_LEARNING_DAYS = 10

ACTIVE, INACTIVE = "Active", "Inactive"  # ListCostAllocationTags statuses; a key it does not list is unknown to Billing


@dataclass(frozen=True)
class SetupItem:
    """One thing not set up yet: what it is and how to fix it (plain text, `code` in backticks)."""

    text: str
    fix: str | None = None
    channel: str | None = None  # the chat channel this is about: that channel's own card leaves it out


def tag_keys_to_check(summaries: Iterable[AttributionSummary]) -> list[str]:
    """Tag keys of the `tag:` dimensions that attribute nothing month-to-date. Only then is the tag's
    activation worth a (billed) ListCostAllocationTags request: a healthy account makes none."""
    keys = [s.dimension.key for s in summaries if s.dimension.kind == "tag" and s.attributed == 0]
    return list(dict.fromkeys(keys))


def tag_items(keys: Sequence[str], statuses: Mapping[str, str] | None, month_start: date) -> list[SetupItem]:
    """One item per tag key that attributes nothing this month. `statuses`: key -> Active/Inactive as
    ListCostAllocationTags answered (a key it does not list has never been seen by Billing); None
    when the statuses could not be read. `month_start`: the reporting month's first day."""
    items = []
    for key in keys:
        if statuses is None:
            items.append(
                SetupItem(
                    f"Tag `{key}` carries no spend this month, and whether it is active as a cost allocation tag"
                    " could not be checked.",
                    "Check Billing and Cost Management > Cost allocation tags in the management account"
                    " (only it and standalone accounts can see them).",
                )
            )
        elif statuses.get(key) == INACTIVE:
            items.append(SetupItem(f"Tag `{key}` is not active as a cost allocation tag.", _activate(key, month_start)))
        elif statuses.get(key) == ACTIVE:
            items.append(
                SetupItem(
                    f"Tag `{key}` is active as a cost allocation tag but nothing is tagged with it this month.",
                    f"Tag resources with `{key}` (Tag Editor, or default tags in your infrastructure code);"
                    " spend carries a tag from the moment it is applied.",
                )
            )
        else:
            items.append(
                SetupItem(
                    f"Tag `{key}` is not a cost allocation tag yet: Billing has not seen it on any resource.",
                    f"Tag resources with `{key}`; it is listed under Cost allocation tags within 24 hours, then"
                    f" activate it. {_backfill(month_start)}",
                )
            )
    return items


def _activate(key: str, month_start: date) -> str:
    status = json.dumps([{"TagKey": key, "Status": ACTIVE}], separators=(",", ":"))
    return (
        "Activate it in Billing and Cost Management > Cost allocation tags (management account), or: "
        f"`aws ce update-cost-allocation-tags-status --cost-allocation-tags-status '{status}'`. "
        f"It applies from activation on. {_backfill(month_start)}"
    )


def _backfill(month_start: date) -> str:
    # Billing user guide, "Backfill cost allocation tags" (management account, up to twelve months,
    # once every 24 hours): https://docs.aws.amazon.com/awsaccountbilling/latest/aboutv2/cost-allocation-backfill.html
    return (
        "To attribute this month's spend too, backfill the activation (it can reach 12 months back): "
        f"`aws ce start-cost-allocation-tag-backfill --backfill-from {month_start.isoformat()}T00:00:00Z`"
    )


def anomaly_learning_item(monitor_since: date | None, today: date) -> SetupItem | None:
    """While `today` (UTC) is within ANOMALY_LEARNING_DAYS of the services monitor's start date."""
    if monitor_since is None:
        return None
    learned = monitor_since + timedelta(days=ANOMALY_LEARNING_DAYS)
    if today >= learned:
        return None
    return SetupItem(
        f"Cost anomaly detection started on {format_day(monitor_since)} and is still learning: its first alert"
        f" can take {ANOMALY_FIRST_ALERT_HOURS} hours, and it flags a service only once it has"
        f" {ANOMALY_LEARNING_DAYS} days of that service's history (from {format_day(learned)} for services"
        " already in use).",
    )


def chat_items(unready: Mapping[str, str]) -> list[SetupItem]:
    """`unready`: chat channel -> its webhook secret, for channels whose secret holds its placeholder."""
    names = {"teams": "Microsoft Teams", "slack": "Slack"}
    return [
        SetupItem(
            f"{names.get(channel, channel)} is not set up yet: this report waits for it in the outbox.",
            f"Put its webhook URL: {put_webhook_command(secret)}, then send the report: finops-guard report resend",
            channel=channel,
        )
        for channel, secret in sorted(unready.items())
    ]


def for_channel(items: Iterable[SetupItem], channel: str) -> tuple[SetupItem, ...]:
    """The items a card in `channel` shows: not the one about itself (it is read once it gets through)."""
    return tuple(item for item in items if item.channel != channel)
