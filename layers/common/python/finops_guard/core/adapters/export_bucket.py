"""An export bucket (S3, versioned, encrypted by the bucket's default encryption): the finance
snapshots and the monthly chargeback CSVs.

Objects are written without an explicit ServerSideEncryption: the bucket's default (SSE-S3 or its
KMS key) applies, so a key change is a bucket setting, not a code change. Versioning keeps every
overwritten snapshot.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from finops_guard.core.adapters.aws import CLIENT_CONFIG, AwsAdapter

CSV_CONTENT_TYPE = "text/csv; charset=utf-8"


class ExportBucket(AwsAdapter):
    service = "s3"

    def __init__(self, bucket: str, client: Any | None = None) -> None:
        super().__init__(client)
        self.bucket = bucket

    @property
    def client(self) -> Any:
        if self._client is None:
            # SigV4 for pre-signed links (S3 rejects SigV2 in newer regions and for KMS objects).
            self._client = boto3.client("s3", config=CLIENT_CONFIG.merge(Config(signature_version="s3v4")))
        return self._client

    def put_csv(self, key: str, text: str) -> str | None:
        """Write `text` (UTF-8) as a CSV object at `key`; returns the new version's id."""
        answer = self.client.put_object(Bucket=self.bucket, Key=key, Body=text.encode(), ContentType=CSV_CONTENT_TYPE)
        return answer.get("VersionId")

    def has(self, key: str) -> bool:
        """Whether the object `key` exists. A missing bucket raises HeadBucket's ClientError (404), so the
        caller can tell "no such month yet" from "no such bucket"."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) not in ("404", "NoSuchKey", "NotFound"):
                raise
            self.client.head_bucket(Bucket=self.bucket)
            return False
        return True

    def download_link(self, key: str, version_id: str | None, expires_in_s: int) -> str:
        """A pre-signed GET for exactly this version. Signed locally (no request); it works while the
        signer's credentials are valid, so a Lambda role's link cannot outlive its session."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        return str(self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in_s))
