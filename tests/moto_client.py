"""A boto3 client straight to the test session's moto server (past any fault proxy): what a store really holds."""

from __future__ import annotations

from typing import Any

import boto3


def moto_client(endpoint: str, bucket: str, *, versioned: bool = False) -> Any:
    """A client on ``endpoint`` with ``bucket`` created if missing (and versioned when asked)."""
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    if bucket not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
        client.create_bucket(Bucket=bucket)
    if versioned:
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return client
