"""DynamoDB's billing units from item sizes: request units of reads and writes (index writes and
transactions included), the embedded tables' items as they were before and after a write, and the
storage a month leaves behind."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from devtools.selfcost.prices import GIB

DYNAMODB_ITEM_OVERHEAD_BYTES = 100  # storage overhead per item (and per index entry)


def number_size(text: str) -> int:
    """DynamoDB's size of a number: 1 byte per two significant digits, plus 1."""
    mantissa = text.strip().lstrip("+-").lower().split("e")[0]
    digits = mantissa.replace(".", "").lstrip("0")
    if "." in mantissa:
        digits = digits.rstrip("0") if digits else ""
    else:
        digits = digits.rstrip("0")
    return math.ceil(max(1, len(digits)) / 2) + 1


def attribute_size(value: Mapping[str, Any]) -> int:
    """Size of one DynamoDB attribute value (low-level JSON form), per the DynamoDB developer guide."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        return number_size(str(inner))
    if kind == "B":
        return len(inner) if isinstance(inner, bytes | bytearray) else len(str(inner).encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(v).encode()) for v in inner)
    if kind == "NS":
        return sum(number_size(str(v)) for v in inner)
    if kind == "BS":
        return sum(len(v) if isinstance(v, bytes | bytearray) else len(str(v).encode()) for v in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + attribute_size(v) for k, v in inner.items())
    raise ValueError(f"unknown DynamoDB type {kind}")


def item_size(item: Mapping[str, Mapping[str, Any]] | None) -> int:
    """Bytes of an item: attribute names (UTF-8) plus values; 0 for no item."""
    return sum(len(name.encode()) + attribute_size(value) for name, value in (item or {}).items())


def write_units(size_bytes: int, *, transactional: bool = False) -> int:
    """Write request units of one item write: 1 per started KB (at least 1), doubled in a transaction."""
    units = max(1, math.ceil(size_bytes / 1024))
    return 2 * units if transactional else units


def read_units(size_bytes: int, *, consistent: bool, transactional: bool = False) -> Decimal:
    """Read request units of one read of `size_bytes` (a Query page: the sum of the items it read):
    1 per started 4 KB (at least one), half for eventually consistent, 2 for transactional."""
    blocks = max(1, math.ceil(size_bytes / 4096))
    if transactional:
        return Decimal(2 * blocks)
    return Decimal(blocks) if consistent else Decimal(blocks) / 2


@dataclass(frozen=True)
class ItemWrite:
    """One item a write request touched, as it was before and after (None: absent)."""

    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None
    transactional: bool = False
    index_keys: tuple[tuple[str, ...], ...] = ()  # key attributes of each global secondary index
    failed: bool = False  # a condition failed: charged on the existing item, nothing written


def index_write_units(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, keys: Sequence[str]) -> int:
    """Writes a change makes in one index (ALL projection): none when the item is in neither image,
    one when it enters, leaves or stays with the same keys, two (delete + put) when its keys change."""
    was = before is not None and all(k in before for k in keys)
    now = after is not None and all(k in after for k in keys)
    if not was and not now:
        return 0
    if was and now:
        assert before is not None and after is not None
        if all(before[k] == after[k] for k in keys):
            return write_units(max(item_size(before), item_size(after)))
        return write_units(item_size(before)) + write_units(item_size(after))
    return write_units(item_size(before if was else after))


def write_request_units(write: ItemWrite) -> int:
    """The table write (the larger of the old and new item) plus the index writes it causes."""
    size = item_size(write.before) if write.failed else max(item_size(write.before), item_size(write.after))
    units = write_units(size, transactional=write.transactional)
    if not write.failed:
        units += sum(index_write_units(write.before, write.after, keys) for keys in write.index_keys)
    return units


class MotoTables:
    """The embedded DynamoDB's items, read straight from moto's backend (no request, not counted)
    to size what a request read or wrote."""

    def __init__(self, account: str = "123456789012") -> None:
        self.account = account

    def _table(self, region: str, name: str) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        try:
            return dynamodb_backends[self.account][region].get_table(name)
        except Exception:  # noqa: BLE001 - unknown table: nothing to size
            return None

    def key_names(self, region: str, name: str) -> tuple[str, ...]:
        table = self._table(region, name)
        if table is None:
            return ()
        return tuple(k for k in (table.hash_key_attr, table.range_key_attr) if k)

    def index_keys(self, region: str, name: str) -> tuple[tuple[str, ...], ...]:
        table = self._table(region, name)
        if table is None:
            return ()
        return tuple(tuple(k["AttributeName"] for k in index.schema) for index in table.global_indexes)

    def item(self, region: str, name: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        from moto.dynamodb.models.dynamo_type import DynamoType

        table = self._table(region, name)
        if table is None:
            return None
        try:
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
        except KeyError:
            return None
        found = table.get_item(hash_value, range_value)
        return None if found is None else dict(found.to_json()["Attributes"])


def table_storage(aws: Any, scale: Decimal = Decimal(1),
                  scaled: Sequence[str] = ("stripe-events", "billing-ledger", "billing-objects", "billing-alerts",
                                           "dunning", "invoice-requests")) -> dict[str, str]:  # fmt: skip
    """Bytes stored per table after the month (items + 100 B each, and again per index entry);
    billing tables multiplied by `scale` (they hold the sampled customer groups)."""
    dynamodb = aws.client("dynamodb")
    sizes: dict[str, str] = {}
    for name in dynamodb.list_tables()["TableNames"]:
        indexes = [
            [k["AttributeName"] for k in index["KeySchema"]]
            for index in dynamodb.describe_table(TableName=name)["Table"].get("GlobalSecondaryIndexes", [])
        ]
        total = 0
        for page in dynamodb.get_paginator("scan").paginate(TableName=name):
            for item in page["Items"]:
                size = item_size(item) + DYNAMODB_ITEM_OVERHEAD_BYTES
                total += size + sum(size for keys in indexes if all(k in item for k in keys))
        factor = scale if any(name.endswith(s) for s in scaled) else Decimal(1)
        sizes[name] = str(Decimal(total) * factor)
    return sizes


def storage_counts(sizes: Mapping[str, str], pitr_tables: Sequence[str]) -> dict[str, Decimal]:
    stored = sum((Decimal(v) for v in sizes.values()), Decimal(0)) / GIB
    backed_up = sum((Decimal(v) for k, v in sizes.items() if k in pitr_tables), Decimal(0)) / GIB
    return {"dynamodb.storage": stored, "dynamodb.pitr": backed_up}
