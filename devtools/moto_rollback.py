"""Item-level rollback for moto's TransactWriteItems (benchmarks only).

moto 5.2 makes a transaction atomic by deep-copying every touched table once per transaction item
(`DynamoDBBackend.transact_write_items`), so one TransactWriteItems costs O(table size x items):
with a few hundred rows, a five-item transaction spends ~90 % of its time copying, and any
events/s figure measures table size rather than the code under test. DynamoDB itself costs
per item written.

`item_level_rollback()` keeps moto's transaction logic (conditions, unicity, cancellation reasons)
and replaces only the backup: the items the transaction names are snapshotted and restored if it
is cancelled. `make bench` runs the webhook baseline and handler both ways and prints both.
Limitation: a cancelled transaction's partial writes still leave stream records (moto's own
rollback restores the table's stream shard with the table); the benchmark never cancels.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _KeepTables:
    """Stands in for the `copy` module inside moto.dynamodb.models: tables pass through uncopied."""

    def __init__(self, table_type: type) -> None:
        self._table_type = table_type

    def deepcopy(self, value: Any, memo: dict[int, Any] | None = None) -> Any:
        return value if isinstance(value, self._table_type) else copy.deepcopy(value, memo)


@contextmanager
def item_level_rollback() -> Iterator[None]:
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    backend = models.DynamoDBBackend
    original = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        snapshot = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op.get("Key") or op.get("Item") or {}
            try:
                hash_value = DynamoType(key[table.hash_key_attr])
                range_value = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            except KeyError:
                continue  # moto rejects it below; nothing of it to restore
            snapshot.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(snapshot):
                _restore(table, hash_value, range_value, item)
            raise

    saved_copy = models.copy
    models.copy = _KeepTables(Table)  # type: ignore[assignment]
    backend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    try:
        yield
    finally:
        backend.transact_write_items = original  # type: ignore[method-assign]
        models.copy = saved_copy


def _restore(table: Any, hash_value: Any, range_value: Any, item: Any) -> None:
    if range_value is None:
        if item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item
    elif item is None:
        table.items.get(hash_value, {}).pop(range_value, None)
    else:
        table.items[hash_value][range_value] = item
