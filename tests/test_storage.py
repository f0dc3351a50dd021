"""Media storage: the local folder (test_media) or an S3-compatible bucket shared by every process."""
import io

from PIL import Image

from tracker import create_app, services
from tracker.extensions import db


def bucket_app(url: str, s3_server, media_dir) -> object:
    return create_app({"TESTING": True, "SECRET_KEY": "test-secret", "DATABASE_URL": url, "MEDIA_DIR": str(media_dir),
                       "MEDIA_S3_BUCKET": s3_server.bucket, "MEDIA_S3_ENDPOINT_URL": s3_server.url})


def test_media_in_a_bucket_are_served_by_every_process_and_a_refused_upload_leaves_nothing(
        app, s3_server, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    url = app.config["DATABASE_URL"]
    one, other = bucket_app(url, s3_server, tmp_path / "one"), bucket_app(url, s3_server, tmp_path / "other")
    with one.app_context():
        token = services.create_token("photos")[1]
    picture = io.BytesIO()
    Image.new("RGB", (1000, 700), (10, 120, 90)).save(picture, "JPEG")
    made = one.test_client().post("/api/media", headers={"Authorization": f"Bearer {token}"},
                                  content_type="multipart/form-data",
                                  data={"file": (io.BytesIO(picture.getvalue()), "p.jpg"), "alt": "The harbour"})
    assert made.status_code == 201, made.get_json()
    media = made.get_json()["media"]
    key = media["url"].split("/")[2]
    stored = {item["Key"] for item in s3_server.client().list_objects_v2(Bucket=s3_server.bucket,
                                                                         Prefix=f"media/{key}/")["Contents"]}
    assert stored == {f"media/{key}/{width}.{ext}" for width in (480, 960, 1000) for ext in ("webp", "jpg")}
    for variant in media["variants"]:  # served by the other process, from the bucket
        served = other.test_client().get(variant["url"])
        assert served.status_code == 200 and served.mimetype == variant["type"]
        assert Image.open(io.BytesIO(served.data)).size == (variant["width"], variant["height"])
        assert "immutable" in served.headers["Cache-Control"]
    assert not (tmp_path / "one").exists() or not any((tmp_path / "one").iterdir()), "nothing written locally"
    assert other.test_client().get(f"/media/{key}/1600.jpg").status_code == 404
    before = s3_server.client().list_objects_v2(Bucket=s3_server.bucket).get("KeyCount")
    refused = one.test_client().post("/api/media", headers={"Authorization": f"Bearer {token}"},
                                     content_type="multipart/form-data",
                                     data={"file": (io.BytesIO(b"<svg/>"), "x.jpg"), "alt": "No"})
    assert refused.status_code == 415
    assert s3_server.client().list_objects_v2(Bucket=s3_server.bucket).get("KeyCount") == before
    for each in (one, other):
        with each.app_context():
            db.engine.dispose()
