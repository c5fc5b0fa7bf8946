"""Budgets: what they are, how they are validated, and how their scope reads in Cost Explorer terms.

A budget file (YAML or JSON) holds `budgets: [...]`, each like:

    id: prod-compute                 # [a-z0-9-_], unique
    name: Production compute
    scope:                           # empty or absent = the whole account/organisation
      account: ["111111111111"]      # linked accounts (OR within a kind)
      service: ["Amazon Elastic Compute Cloud - Compute"]   # Cost Explorer's names (service_names.py)
      tag: {team: [platform]}        # cost allocation tag key -> values
      cost_category: {Environment: [prod]}
    period: monthly                  # monthly | quarterly | annual
    amount: "20000"                  # plain decimal, > 0 and < 10^12, at most the currency's minor-unit places
    currency: USD                    # required, ISO 4217
    thresholds: [50, 75, 90, 100]    # percent of amount, 1..1000
    alert_on: [actual, forecasted]
    notify: [teams]                  # teams | slack | email
    owner: alice@example.com
    enforce_hard_limit: false        # publish `Budget Exceeded` to EventBridge at 100 % actual
    basis: usage                     # usage (default): before credits, refunds and tax | net: after them

Kinds inside a scope are combined with AND, values inside a kind with OR — the Cost Explorer
filter grammar.

`basis: usage` (the default) counts spend before credits, refunds and tax: a credit cannot hide an
overspend (a $5,000 credit would otherwise make a budget look half used), and tax posted once a
month cannot read as a spike. `basis: net` counts what is paid after them. AWS Budgets' own default
includes credits; FinOps Guard's does not, on purpose. All budgets on one basis cost the same Cost
Explorer requests as before; budgets on both bases are planned once per basis.
"""

from __future__ import annotations

import json
import re
import reprlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from finops_guard.core.bounded_json import has_surrogates
from finops_guard.core.documents import DocumentError, join_path, key_text, load_document
from finops_guard.core.money import ISO_4217, minor_units
from finops_guard.core.periods import PERIOD_KINDS
from finops_guard.costs.service_names import close_known_services, cost_explorer_name_for, is_known_service

DEFAULT_THRESHOLDS = (Decimal(50), Decimal(75), Decimal(90), Decimal(100))
ALERT_KINDS = ("actual", "forecasted")
CHANNELS = ("teams", "slack", "email")
SCOPE_KINDS = ("account", "service", "tag", "cost_category")
USAGE_BASIS, NET_BASIS = "usage", "net"
BASES = (USAGE_BASIS, NET_BASIS)
_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_ACCOUNT = re.compile(r"\d{12}")
_PLAIN_DECIMAL = re.compile(r"[+-]?\d+(?:\.\d+)?")
MAX_AMOUNT = Decimal(10) ** 12  # in the budget's currency: below one trillion dollars, euros or yen
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlevel = 2

Warn = Callable[[str], None]
_FIELDS = {
    "id", "name", "scope", "period", "amount", "currency", "thresholds", "alert_on", "notify", "owner",
    "enforce_hard_limit", "basis",
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

    def describe(self, names: Mapping[str, str] | None = None) -> str:
        """`account prod-data (222222222222)`, `tag Team=web`; `names`: account id -> account name."""
        label = {"account": "account", "service": "service"}.get(self.kind, f"{self.kind.replace('_', ' ')}")
        known = names if names is not None and self.kind == "account" else {}
        values = ", ".join(f"{known[v]} ({v})" if known.get(v) else v for v in self.values)
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
    basis: str = USAGE_BASIS  # usage: before credits, refunds and tax; net: after them

    @property
    def dimensions(self) -> frozenset[Dimension]:
        return frozenset(f.dimension for f in self.scope)

    def describe_scope(self, names: Mapping[str, str] | None = None) -> str:
        """The scope in words; `names` (account id -> name) puts account names before their ids."""
        return " AND ".join(f.describe(names) for f in self.scope) if self.scope else "whole account / organisation"

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
        document = {
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
        if self.basis != USAGE_BASIS:  # budgets stored before `basis` existed stay equal to their files
            document["basis"] = self.basis
        return document

    def canonical_json(self) -> str:
        return json.dumps(self.to_document(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _shown(raw: Any) -> str:
    """A value as one short line for an error message, whatever it is."""
    if isinstance(raw, Decimal):
        text = str(raw)
    else:
        try:
            text = _REPR.repr(raw)
        except ValueError:  # an integer too long to print
            return "a number too long to show"
    return " ".join(text.split())


def _is_text(raw: Any) -> bool:
    return isinstance(raw, str) or (isinstance(raw, int) and not isinstance(raw, bool) and abs(raw) < 10**18)


def _text(field: str, raw: Any, what: str) -> str:
    if not _is_text(raw):
        raise BudgetError(field, f"{_shown(raw)} is not {what}")
    text = str(raw).strip()
    if has_surrogates(text):
        raise BudgetError(field, f"{_shown(raw)} is not valid UTF-8 text")
    return text


def _strings(field: str, raw: Any) -> tuple[str, ...]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or not items:
        raise BudgetError(field, "expected a non-empty list of strings")
    values = []
    for item in items:
        value = _text(field, item, "a non-empty string")
        if not value:
            raise BudgetError(field, f"{_shown(item)} is not a non-empty string")
        values.append(value)
    return tuple(sorted(set(values)))


def _services(field: str, raw: Any, warn: Warn | None) -> tuple[str, ...]:
    """SERVICE values must be Cost Explorer's names: a known alias is refused, an unknown name warned on."""
    values = _strings(field, raw)
    for value in values:
        meant = cost_explorer_name_for(value)
        if meant is not None:
            raise BudgetError(field, f"{value!r} is not a Cost Explorer service name; did you mean {meant!r}?")
        if warn is not None and not is_known_service(value):
            close = close_known_services(value)
            hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
            warn(
                f"{field}: {_shown(value)} is not a Cost Explorer service name this version knows; {hint}"
                "if Cost Explorer has no such service the budget stays at zero (check the Service filter "
                "in Cost Explorer for the exact spelling)"
            )
    return values


def _parse_scope(field: str, raw: Any, warn: Warn | None = None) -> tuple[ScopeFilter, ...]:
    if raw is None or (isinstance(raw, str | Mapping) and raw in ({}, "organisation", "organization", "account-wide")):
        return ()
    if not isinstance(raw, Mapping):
        raise BudgetError(field, "expected a mapping of scope kinds (account, service, tag, cost_category)")
    filters: list[ScopeFilter] = []
    for kind, value in raw.items():
        if kind not in SCOPE_KINDS:
            raise BudgetError(
                join_path(field, kind), f"unknown scope kind {_shown(kind)}; use one of {', '.join(SCOPE_KINDS)}"
            )
        if kind == "service":
            filters.append(ScopeFilter(kind, None, _services(f"{field}.service", value, warn)))
            continue
        if kind == "account":
            values = _strings(f"{field}.account", value)
            bad = [v for v in values if not _ACCOUNT.fullmatch(v)]
            if bad:
                raise BudgetError(f"{field}.account", f"{_shown(bad[0])} is not a 12-digit AWS account id")
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
            name = _text(join_path(field, key), key, "a tag or cost category name")
            if not name:
                raise BudgetError(field, "an empty name is not a tag or cost category")
            grouped.setdefault(name, []).extend(_strings(join_path(field, key), values))
    else:
        for item in _strings(field, raw):
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise BudgetError(field, f"{_shown(item)} is not key=value")
            grouped.setdefault(key, []).append(value)
    if not grouped:
        raise BudgetError(field, "expected at least one key")
    return [(key, tuple(sorted(set(values)))) for key, values in sorted(grouped.items())]


def _decimal(field: str, raw: Any) -> Decimal:
    """A plain decimal: digits with an optional point. No exponent, NaN, Infinity, or thousands separators.

    Floats (from YAML or JSON) are read as their shortest decimal text, never as the binary value."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        raise BudgetError(field, f"{_shown(raw)} is not a number")
    if isinstance(raw, int):
        return Decimal(raw)
    text = (repr(raw) if isinstance(raw, float) else str(raw)).strip()
    if not _PLAIN_DECIMAL.fullmatch(text):
        try:
            Decimal(text)
        except (InvalidOperation, ValueError):
            raise BudgetError(field, f"{_shown(raw)} is not a number") from None
        raise BudgetError(
            field, f'{_shown(raw)} is not a plain decimal number; write digits with an optional point, like "1500.00"'
        )
    return Decimal(text)


def _canonical(value: Decimal) -> Decimal:
    """One spelling per number (50, 87.5, 20000.25), so equal budgets store equal documents."""
    return Decimal(int(value)) if value == value.to_integral_value() else value.normalize()


def _currency(field: str, raw: Any) -> str:
    if raw is None or raw == "":
        raise BudgetError(field, "is required; write the ISO 4217 code of the amount, such as USD, EUR or JPY")
    code = _text(field, raw, "an ISO 4217 currency code (such as USD, EUR or JPY)").upper()
    if code not in ISO_4217:
        raise BudgetError(
            field, f"{_shown(raw)} is not an ISO 4217 currency code; write three letters such as USD, EUR or JPY"
        )
    return code


def _amount(field: str, raw: Any) -> Decimal:
    """Greater than zero and below `MAX_AMOUNT` (10^12 in the budget's currency)."""
    amount = _decimal(field, raw)
    if amount <= 0:
        raise BudgetError(field, f"{_shown(raw)} must be greater than zero")
    if amount >= MAX_AMOUNT:
        raise BudgetError(field, f"{_shown(raw)} is too large; a budget is below 1,000,000,000,000 (10^12)")
    return amount


def _within_minor_unit(field: str, raw: Any, amount: Decimal, currency: str) -> None:
    """No finer than the currency's minor unit (USD cents, whole JPY, KWD thousandths). Trailing zeros
    do not count: "1500.00" is a whole number of yen."""
    shape = amount.as_tuple()
    digits = "".join(map(str, shape.digits))
    places = max(0, -int(shape.exponent) - (len(digits) - len(digits.rstrip("0"))))
    allowed = minor_units(currency)
    if places > allowed:
        unit = "whole numbers" if allowed == 0 else f"at most {allowed} decimal place{'s' if allowed > 1 else ''}"
        plural = "s" if places > 1 else ""
        raise BudgetError(field, f"{_shown(raw)} has {places} decimal place{plural}; {currency} amounts take {unit}")


def _choices(field: str, raw: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    values = _strings(field, raw)
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise BudgetError(field, f"unknown value {_shown(unknown[0])}; use {', '.join(allowed)}")
    return tuple(v for v in allowed if v in values)


def parse_budget(raw: Any, field: str = "budget", *, warn: Warn | None = None) -> Budget:
    """Validate one budget document; errors name the field (`budget.amount: must be greater than zero`).

    `amount` is in `currency` (major units, e.g. dollars), a plain decimal > 0 and < 10^12 with at most
    the currency's minor-unit places. `warn` receives one-line notes that do not refuse the budget (a
    service name this version does not know); without it they are dropped."""
    if not isinstance(raw, Mapping):
        raise BudgetError(field, "expected a mapping")
    unknown = sorted((key for key in raw if key not in _FIELDS), key=key_text)
    if unknown:
        raise BudgetError(join_path(field, unknown[0]), f"unknown field; use {', '.join(sorted(_FIELDS))}")
    if raw.get("id") is None:
        raise BudgetError(f"{field}.id", "is required; write 1-64 of a-z, 0-9, '-', '_'")
    budget_id = _text(f"{field}.id", raw["id"], "an id")
    if not _ID.fullmatch(budget_id):
        raise BudgetError(f"{field}.id", f"{_shown(budget_id)} must be 1-64 of a-z, 0-9, '-', '_'")
    name = _text(f"{field}.name", raw["name"], "a name") if raw.get("name") is not None else ""
    period = _text(f"{field}.period", raw.get("period") or "monthly", "a period")
    if period not in PERIOD_KINDS:
        raise BudgetError(f"{field}.period", f"{_shown(period)} is not one of {', '.join(PERIOD_KINDS)}")
    if "amount" not in raw:
        raise BudgetError(f"{field}.amount", 'is required; write the budget in its currency, like "1500.00"')
    amount = _amount(f"{field}.amount", raw["amount"])
    currency = _currency(f"{field}.currency", raw.get("currency"))
    _within_minor_unit(f"{field}.amount", raw["amount"], amount, currency)
    thresholds_raw = raw.get("thresholds", [str(t) for t in DEFAULT_THRESHOLDS])
    if not isinstance(thresholds_raw, list | tuple) or not thresholds_raw:
        raise BudgetError(f"{field}.thresholds", "expected a non-empty list of percentages")
    thresholds = sorted({_decimal(f"{field}.thresholds", t) for t in thresholds_raw})
    if thresholds[0] < 1 or thresholds[-1] > 1000:
        bad = thresholds[0] if thresholds[0] < 1 else thresholds[-1]
        raise BudgetError(f"{field}.thresholds", f"{_shown(bad)} is outside 1..1000 (percent of the amount)")
    owner = raw.get("owner")
    owner_text = _text(f"{field}.owner", owner, "an owner (a name or e-mail)") if owner is not None else ""
    hard_limit = raw.get("enforce_hard_limit", False)
    if not isinstance(hard_limit, bool):
        raise BudgetError(f"{field}.enforce_hard_limit", f"{_shown(hard_limit)} must be true or false")
    basis = USAGE_BASIS if raw.get("basis") is None else _text(f"{field}.basis", raw["basis"], "a basis")
    if basis not in BASES:
        raise BudgetError(
            f"{field}.basis",
            f"{_shown(basis)} is not a basis; use usage (before credits, refunds and tax) or net (after them)",
        )
    return Budget(
        budget_id=budget_id,
        name=name or budget_id,
        scope=_parse_scope(f"{field}.scope", raw.get("scope"), warn),
        period=period,
        amount=_canonical(amount),
        currency=currency,
        thresholds=tuple(_canonical(t) for t in thresholds),
        alert_on=_choices(f"{field}.alert_on", raw.get("alert_on", list(ALERT_KINDS)), ALERT_KINDS),
        notify=_choices(f"{field}.notify", raw.get("notify", ["teams"]), CHANNELS),
        owner=owner_text or None,
        enforce_hard_limit=hard_limit,
        basis=basis,
    )


def parse_budgets(documents: Iterable[Any], *, warn: Warn | None = None) -> list[Budget]:
    """Validate every budget before returning any: one invalid budget refuses the whole list."""
    budgets = [parse_budget(doc, f"budgets[{i}]", warn=warn) for i, doc in enumerate(documents)]
    seen: set[str] = set()
    for i, budget in enumerate(budgets):
        if budget.budget_id in seen:
            raise BudgetError(f"budgets[{i}].id", f"{budget.budget_id!r} appears twice")
        seen.add(budget.budget_id)
    return budgets


def load_budget_file(text: str, filename: str, *, warn: Warn | None = None) -> list[Budget]:
    """Parse a YAML (.yaml/.yml) or JSON budget file: `{budgets: [...]}` or a bare list.

    All or nothing: any invalid budget, repeated key or unreadable text raises one `BudgetError`
    (one line, naming the budget by index and the field) and no budget is returned."""
    try:
        data = load_document(text, filename, root="budgets")
    except DocumentError as error:
        raise BudgetError(error.where, error.problem) from None
    documents = data.get("budgets") if isinstance(data, Mapping) else data
    if not isinstance(documents, list):
        raise BudgetError("budgets", "expected a list of budgets (or a mapping with a `budgets` list)")
    return parse_budgets(documents, warn=warn)
