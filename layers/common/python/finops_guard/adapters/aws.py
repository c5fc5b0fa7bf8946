"""The boto3 client every AWS adapter holds: created on first use (no I/O at import), injectable."""

from __future__ import annotations

from typing import Any

import boto3


class AwsAdapter:
    service = ""

    def __init__(self, client: Any | None = None) -> None:
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client(self.service)
        return self._client
