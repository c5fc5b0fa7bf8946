"""Budgets: what they are, how they are validated, and how their scope reads in Cost Explorer terms.

A budget file (YAML or JSON) holds `budgets: [...]`, each like:

    id: prod-compute                 # [a-z0-9-_], unique
    name: Production compute
    scope:                           # empty or absent = the whole account/organisation
      account: ["111111111111"]      # linked accounts (OR within a kind)
      service: ["Amazon Elastic Compute Cloud - Compute"]
      tag: {team: [platform]}        # cost allocation tag key -> values
      cost_category: {Environment: [prod]}
    period: monthly                  # monthly | quarterly | annual
    amount: "20000"                  # > 0, in `currency`
    currency: USD
    thresholds: [50, 75, 90, 100]    # percent of amount, 1..1000
    alert_on: [actual, forecasted]
    notify: [teams]                  # teams | slack | email
    owner: alice@example.com
    enforce_hard_limit: false        # publish `Budget Exceeded` to EventBridge at 100 % actual

Kinds inside a scope are combined with AND, values inside a kind with OR — the Cost Explorer
filter grammar.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from finops_guard.core.money import ISO_4217
from finops_guard.core.periods import PERIOD_KINDS

DEFAULT_THRESHOLDS = (Decimal(50), Decimal(75), Decimal(90), Decimal(100))
ALERT_KINDS = ("actual", "forecasted")
CHANNELS = ("teams", "slack", "email")
SCOPE_KINDS = ("account", "service", "tag", "cost_category")
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_ACCOUNT = re.compile(r"\d{12}")
_FIELDS = {
    "id", "name", "scope", "period", "amount", "currency", "thresholds", "alert_on", "notify", "owner",
    "enforce_hard_limit",
}  # fmt: skip


class BudgetError(ValueError):
    """An invalid budget; `field` names what is wrong (e.g. `budgets[3].thresholds`)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class InvalidStoredBudgets(RuntimeError):
    """Stored budget documents that no longer validate; the others were still evaluated."""

    def __init__(self, errors: list[BudgetError]) -> None:
        self.errors = errors
        super().__init__(
            f"{len(errors)} stored budget(s) are invalid and were skipped: "
            + "; ".join(str(e) for e in errors)
            + " — fix them with `finops-guard budgets apply`"
        )


@dataclass(frozen=True, order=True)
class Dimension:
    """A Cost Explorer grouping: DIMENSION LINKED_ACCOUNT / SERVICE, TAG <key>, COST_CATEGORY <name>."""

    type: str
    key: str

    def group_by(self) -> dict[str, str]:
        return {"Type": self.type, "Key": self.key}

    def value_of(self, group_key: str) -> str:
        """Tag and cost category group keys come as `key$value`; dimensions come bare."""
        if self.type in ("TAG", "COST_CATEGORY") and "$" in group_key:
            return group_key.split("$", 1)[1]
        return group_key


LINKED_ACCOUNT = Dimension("DIMENSION", "LINKED_ACCOUNT")
SERVICE = Dimension("DIMENSION", "SERVICE")


@dataclass(frozen=True)
class ScopeFilter:
    kind: str
    key: str | None
    values: tuple[str, ...]

    @property
    def dimension(self) -> Dimension:
        if self.kind == "account":
            return LINKED_ACCOUNT
        if self.kind == "service":
            return SERVICE
        return Dimension("TAG" if self.kind == "tag" else "COST_CATEGORY", self.key or "")

    def expression(self) -> dict[str, Any]:
        dimension = self.dimension
        if dimension.type == "DIMENSION":
            return {"Dimensions": {"Key": dimension.key, "Values": list(self.values)}}
        field = "Tags" if dimension.type == "TAG" else "CostCategories"
        return {field: {"Key": dimension.key, "Values": list(self.values), "MatchOptions": ["EQUALS"]}}

    def describe(self) -> str:
        label = {"account": "account", "service": "service"}.get(self.kind, f"{self.kind.replace('_', ' ')}")
        values = ", ".join(self.values)
        return f"{label} {self.key}={values}" if self.key else f"{label} {values}"


@dataclass(frozen=True)
class Budget:
    budget_id: str
    name: str
    scope: tuple[ScopeFilter, ...]
    period: str
    amount: Decimal
    currency: str
    thresholds: tuple[Decimal, ...] = DEFAULT_THRESHOLDS
    alert_on: tuple[str, ...] = ALERT_KINDS
    notify: tuple[str, ...] = ("teams",)
    owner: str | None = None
    enforce_hard_limit: bool = False

    @property
    def dimensions(self) -> frozenset[Dimension]:
        return frozenset(f.dimension for f in self.scope)

    def describe_scope(self) -> str:
        return " AND ".join(f.describe() for f in self.scope) if self.scope else "whole account / organisation"

    def cost_explorer_filter(self) -> dict[str, Any] | None:
        expressions = [f.expression() for f in self.scope]
        if not expressions:
            return None
        return expressions[0] if len(expressions) == 1 else {"And": expressions}

    def matches(self, values: Mapping[Dimension, str]) -> bool:
        """Does a cost row with these grouping values fall inside the scope?"""
        return all(values.get(f.dimension) in f.values for f in self.scope)

    def to_document(self) -> dict[str, Any]:
        """Canonical, JSON-safe form: what files hold and the table stores (equal budgets, equal documents)."""
        scope: dict[str, Any] = {}
        for f in self.scope:
            if f.key is None:
                scope[f.kind] = list(f.values)
            else:
                scope.setdefault(f.kind, {})[f.key] = list(f.values)
        return {
            "id": self.budget_id,
            "name": self.name,
            "scope": scope,
            "period": self.period,
            "amount": str(self.amount),
            "currency": self.currency,
            "thresholds": [str(t) for t in self.thresholds],
            "alert_on": list(self.alert_on),
            "notify": list(self.notify),
            "owner": self.owner,
            "enforce_hard_limit": self.enforce_hard_limit,
        }

    def canonical_json(self) -> str:
        return json.dumps(self.to_document(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _strings(field: str, raw: Any) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or not items:
        raise BudgetError(field, "expected a non-empty list of strings")
    values = []
    for item in items:
        if not isinstance(item, str | int) or not str(item).strip():
            raise BudgetError(field, f"{item!r} is not a non-empty string")
        values.append(str(item).strip())
    return tuple(sorted(set(values)))


def _parse_scope(field: str, raw: Any) -> tuple[ScopeFilter, ...]:
    if raw in (None, {}, "organisation", "organization", "account-wide"):
        return ()
    if not isinstance(raw, Mapping):
        raise BudgetError(field, "expected a mapping of scope kinds (account, service, tag, cost_category)")
    filters: list[ScopeFilter] = []
    for kind, value in raw.items():
        if kind not in SCOPE_KINDS:
            raise BudgetError(f"{field}.{kind}", f"unknown scope kind {kind!r}; use one of {', '.join(SCOPE_KINDS)}")
        if kind in ("account", "service"):
            values = _strings(f"{field}.{kind}", value)
            if kind == "account":
                bad = [v for v in values if not _ACCOUNT.fullmatch(v)]
                if bad:
                    raise BudgetError(f"{field}.account", f"{bad[0]!r} is not a 12-digit AWS account id")
            filters.append(ScopeFilter(kind, None, values))
            continue
        pairs = _key_values(f"{field}.{kind}", value)
        filters.extend(ScopeFilter(kind, key, values) for key, values in pairs)
    return tuple(sorted(filters, key=lambda f: (f.dimension, f.values)))


def _key_values(field: str, raw: Any) -> list[tuple[str, tuple[str, ...]]]:
    """`{team: [a, b]}` or `["team=a", "team=b"]` -> [("team", ("a", "b"))]."""
    grouped: dict[str, list[str]] = {}
    if isinstance(raw, Mapping):
        for key, values in raw.items():
            grouped.setdefault(str(key), []).extend(_strings(f"{field}.{key}", values))
    else:
        for item in _strings(field, raw):
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise BudgetError(field, f"{item!r} is not key=value")
            grouped.setdefault(key, []).append(value)
    if not grouped:
        raise BudgetError(field, "expected at least one key")
    return [(key, tuple(sorted(set(values)))) for key, values in sorted(grouped.items())]


def _decimal(field: str, raw: Any) -> Decimal:
    if isinstance(raw, float):
        raw = repr(raw)  # YAML/JSON floats: read their decimal text, never the binary value
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise BudgetError(field, f"{raw!r} is not a number") from None
    if not value.is_finite():
        raise BudgetError(field, f"{raw!r} is not a finite number")
    return value


def _canonical(value: Decimal) -> Decimal:
    """One spelling per number (50, 87.5, 20000.25), so equal budgets store equal documents."""
    return Decimal(int(value)) if value == value.to_integral_value() else value.normalize()


def _choices(field: str, raw: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    values = _strings(field, raw)
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise BudgetError(field, f"unknown value {unknown[0]!r}; use {', '.join(allowed)}")
    return tuple(v for v in allowed if v in values)


def parse_budget(raw: Any, field: str = "budget") -> Budget:
    """Validate one budget document; errors name the field (`budget.amount: must be positive`)."""
    if not isinstance(raw, Mapping):
        raise BudgetError(field, "expected a mapping")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise BudgetError(f"{field}.{unknown[0]}", "unknown field")
    budget_id = str(raw.get("id", "")).strip()
    if not _ID.fullmatch(budget_id):
        raise BudgetError(f"{field}.id", f"{budget_id!r} must be 1-64 of a-z, 0-9, '-', '_'")
    name = str(raw.get("name") or budget_id).strip()
    period = str(raw.get("period", "monthly"))
    if period not in PERIOD_KINDS:
        raise BudgetError(f"{field}.period", f"{period!r} is not one of {', '.join(PERIOD_KINDS)}")
    if "amount" not in raw:
        raise BudgetError(f"{field}.amount", "is required")
    amount = _decimal(f"{field}.amount", raw["amount"])
    if amount <= 0:
        raise BudgetError(f"{field}.amount", f"{raw['amount']!r} must be greater than zero")
    currency = str(raw.get("currency", "")).strip().upper()
    if currency not in ISO_4217:
        raise BudgetError(f"{field}.currency", f"{raw.get('currency')!r} is not an ISO 4217 currency code")
    thresholds_raw = raw.get("thresholds", [str(t) for t in DEFAULT_THRESHOLDS])
    if not isinstance(thresholds_raw, list | tuple) or not thresholds_raw:
        raise BudgetError(f"{field}.thresholds", "expected a non-empty list of percentages")
    thresholds = sorted({_decimal(f"{field}.thresholds", t) for t in thresholds_raw})
    if thresholds[0] < 1 or thresholds[-1] > 1000:
        bad = thresholds[0] if thresholds[0] < 1 else thresholds[-1]
        raise BudgetError(f"{field}.thresholds", f"{bad} is outside 1..1000 (percent of the amount)")
    owner = raw.get("owner")
    hard_limit = raw.get("enforce_hard_limit", False)
    if not isinstance(hard_limit, bool):
        raise BudgetError(f"{field}.enforce_hard_limit", f"{hard_limit!r} must be true or false")
    return Budget(
        budget_id=budget_id,
        name=name,
        scope=_parse_scope(f"{field}.scope", raw.get("scope")),
        period=period,
        amount=_canonical(amount),
        currency=currency,
        thresholds=tuple(_canonical(t) for t in thresholds),
        alert_on=_choices(f"{field}.alert_on", raw.get("alert_on", list(ALERT_KINDS)), ALERT_KINDS),
        notify=_choices(f"{field}.notify", raw.get("notify", ["teams"]), CHANNELS),
        owner=str(owner).strip() if owner else None,
        enforce_hard_limit=hard_limit,
    )


def parse_budgets(documents: Iterable[Any]) -> list[Budget]:
    budgets = [parse_budget(doc, f"budgets[{i}]") for i, doc in enumerate(documents)]
    seen: set[str] = set()
    for i, budget in enumerate(budgets):
        if budget.budget_id in seen:
            raise BudgetError(f"budgets[{i}].id", f"{budget.budget_id!r} appears twice")
        seen.add(budget.budget_id)
    return budgets


def load_budget_file(text: str, filename: str) -> list[Budget]:
    """Parse a YAML (.yaml/.yml) or JSON budget file: `{budgets: [...]}` or a bare list."""
    if filename.endswith((".yaml", ".yml")):
        import yaml  # CLI-only dependency

        data = yaml.safe_load(text)
    else:
        data = json.loads(text)
    documents = data.get("budgets") if isinstance(data, Mapping) else data
    if not isinstance(documents, list):
        raise BudgetError("budgets", "expected a list of budgets (or a mapping with a `budgets` list)")
    return parse_budgets(documents)
