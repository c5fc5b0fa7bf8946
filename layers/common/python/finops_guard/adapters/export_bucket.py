"""The finance export bucket (S3, versioned, encrypted by the bucket's default encryption).

Objects are written without an explicit ServerSideEncryption: the bucket's default (SSE-S3 or its
KMS key) applies, so a key change is a bucket setting, not a code change. Versioning keeps every
overwritten snapshot.
"""

from __future__ import annotations

from typing import Any

from finops_guard.adapters.aws import AwsAdapter

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"


class ExportBucket(AwsAdapter):
    service = "s3"

    def __init__(self, bucket: str, client: Any | None = None) -> None:
        super().__init__(client)
        self.bucket = bucket

    def put_csv(self, key: str, text: str) -> None:
        """Write `text` (UTF-8) as a CSV object at `key`."""
        self.client.put_object(Bucket=self.bucket, Key=key, Body=text.encode(), ContentType=CSV_CONTENT_TYPE)
