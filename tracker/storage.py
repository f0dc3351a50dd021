"""Where media files live: a local folder (MEDIA_DIR, by default instance/media), or an S3-compatible
bucket (MEDIA_S3_BUCKET, through boto3) that every process and machine shares.

Files are written once under a random key and never changed, so they may be cached for good.
"""
from __future__ import annotations

import os
from pathlib import Path

from flask import current_app

CONTENT_TYPES = {".webp": "image/webp", ".jpg": "image/jpeg", ".png": "image/png"}
IMMUTABLE = "public, max-age=31536000, immutable"


def remote() -> bool:
    """Whether media live in a bucket (else in the local folder)."""
    return bool(current_app.config["MEDIA_S3_BUCKET"])


def folder() -> Path:
    """The local media folder, made on first use."""
    path = Path(current_app.config["MEDIA_DIR"] or Path(current_app.instance_path) / "media")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _s3():
    """This app's S3 client (made once), its bucket and its key prefix."""
    config = current_app.config
    client = current_app.extensions.get("tracker.s3")
    if client is None:
        # Imported here: boto3 costs 50 ms of every start, and by default media are local.
        import boto3
        from botocore.config import Config as BotoConfig

        client = current_app.extensions["tracker.s3"] = boto3.client(
            "s3", endpoint_url=config["MEDIA_S3_ENDPOINT_URL"], region_name=config["MEDIA_S3_REGION"],
            config=BotoConfig(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3}))
    return client, config["MEDIA_S3_BUCKET"], config["MEDIA_S3_PREFIX"]


def save(key: str, files: dict[str, bytes]) -> None:
    """Store a media item's files under its key (locally: each written to a temporary name, then renamed)."""
    if remote():
        client, bucket, prefix = _s3()
        for name, data in files.items():
            client.put_object(Bucket=bucket, Key=f"{prefix}{key}/{name}", Body=data,
                              ContentType=CONTENT_TYPES[Path(name).suffix], CacheControl=IMMUTABLE)
        return
    target = folder() / key
    target.mkdir()
    for name, data in files.items():
        partial = target / f".{name}.part"
        partial.write_bytes(data)
        os.replace(partial, target / name)


def read(key: str, name: str) -> bytes | None:
    """One stored file's bytes, or None when there is no such file."""
    if remote():
        from botocore.exceptions import ClientError  # boto3 is imported by _s3

        client, bucket, prefix = _s3()
        try:
            return client.get_object(Bucket=bucket, Key=f"{prefix}{key}/{name}")["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
    path = folder() / key / name
    return path.read_bytes() if path.is_file() else None


def remove(key: str) -> None:
    """Delete a media item's files (when its row could not be saved, or was deleted)."""
    if remote():
        client, bucket, prefix = _s3()
        listed = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}{key}/").get("Contents", [])
        if listed:
            client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": item["Key"]} for item in listed]})
        return
    target = folder() / key
    for path in target.glob("*") if target.is_dir() else ():
        path.unlink()
    if target.is_dir():
        target.rmdir()
