"""Uploaded images: checked by content, oriented, stripped of metadata, scaled, stored, served and shown."""
import io
import struct
import zlib
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image

from tracker import services
from tracker.extensions import db
from tracker.models import Media


@pytest.fixture
def auth(app):
    with app.app_context():
        return {"Authorization": f"Bearer {services.create_token('photo-desk')[1]}"}


def jpeg(size=(2000, 1500), **exif_tags) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    image.paste((20, 20, 200), (0, 0, size[0] // 2, size[1] // 3))  # a mark that shows the orientation
    exif = Image.Exif()
    for tag, value in exif_tags.items():
        exif[int(tag.lstrip("t"))] = value
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"shot by J. Smith")
    return out.getvalue()


# EXIF: 0x0112 Orientation (6: rotate 90 clockwise to view), 0x013B Artist, 0xA431 body serial number, and
# the GPS block 0x8825 (latitude 51.5 N).
GPS = {"t274": 6, "t315": "J. Smith", "t42033": "SN-12345",
       "t34853": {1: "N", 2: (51.0, 30.0, 0.0), 3: "W", 4: (0.0, 7.0, 0.0)}}


def upload(client, data: bytes, headers, name="photo.jpg", **fields):
    form = {"file": (io.BytesIO(data), name), "alt": "Flooded high street", **fields}
    return client.post("/api/media", data=form, headers=headers, content_type="multipart/form-data")


def test_an_upload_is_oriented_stripped_and_scaled_to_variants(app, client, auth):
    made = upload(client, jpeg(**GPS), auth, caption="Water on the high street.", credit="J. Smith / Tracker")
    assert made.status_code == 201, made.get_json()
    media = made.get_json()["media"]
    # Orientation 6 turns the 2000 x 1500 pixels into a 1500 x 2000 picture; nothing is upscaled.
    assert (media["width"], media["height"]) == (1500, 2000)
    assert [(v["width"], v["type"]) for v in media["variants"]] == [
        (480, "image/webp"), (480, "image/jpeg"), (960, "image/webp"), (960, "image/jpeg"),
        (1500, "image/webp"), (1500, "image/jpeg")]
    assert (media["alt"], media["caption"], media["credit"]) == (
        "Flooded high street", "Water on the high street.", "J. Smith / Tracker")
    for variant in media["variants"]:
        served = client.get(variant["url"])
        assert served.status_code == 200 and served.mimetype == variant["type"]
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        assert "immutable" in served.headers["Cache-Control"] and "max-age=31536000" in served.headers["Cache-Control"]
        image = Image.open(io.BytesIO(served.data))
        assert image.size == (variant["width"], variant["height"])
        assert not image.getexif() and not {"exif", "xmp", "icc_profile", "comment"} & set(image.info)
        for secret in (b"J. Smith", b"SN-12345", b"GPS"):
            assert secret not in served.data
    largest = Image.open(io.BytesIO(client.get(media["url"]).data)).convert("RGB")
    assert largest.getpixel((1490, 10))[2] > 150, "the blue mark is at the top right once turned"


def test_transparency_keeps_a_png_fallback_and_an_animated_gif_its_first_frame(client, auth):
    out = io.BytesIO()
    Image.new("RGBA", (300, 200), (0, 0, 0, 0)).save(out, "PNG")
    png = upload(client, out.getvalue(), auth, name="logo.png").get_json()["media"]
    assert [v["type"] for v in png["variants"]] == ["image/webp", "image/png"] and png["width"] == 300
    frames = [Image.new("RGB", (64, 48), color) for color in ((255, 0, 0), (0, 255, 0))]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    gif = upload(client, out.getvalue(), auth, name="a.gif").get_json()["media"]
    first = Image.open(io.BytesIO(client.get(gif["url"]).data)).convert("RGB").getpixel((5, 5))
    assert first[0] > 200 and first[1] < 60


def test_a_phones_photo_uploads_whole(client, auth):
    """12 megapixels in an MPO (a JPEG with a second image, as many phones write them), several megabytes."""
    noise = Image.effect_noise((4032, 3024), 64).convert("RGB")
    out = io.BytesIO()
    noise.save(out, "MPO", save_all=True, append_images=[Image.new("RGB", (640, 480))], quality=95)
    assert len(out.getvalue()) > 3_000_000
    made = upload(client, out.getvalue(), auth, name="IMG_0001.JPG")
    assert made.status_code == 201, made.get_json()
    assert [v["width"] for v in made.get_json()["media"]["variants"]][-1] == 1600


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels in a few bytes (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("data, name, status, message", [
    (b"<!doctype html><script>alert(1)</script>", "photo.jpg", 415, "not a JPEG, PNG, WebP or GIF"),
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "x.svg", 415, "not a JPEG"),
    (b"", "empty.jpg", 415, "The file is empty."),
    (jpeg()[:3000], "cut.jpg", 415, "damaged"),
    (png_header(30_000, 30_000), "bomb.png", 413, "too many pixels"),
], ids=["html-named-jpg", "svg-with-script", "zero-bytes", "truncated-jpeg", "pixel-bomb"])
def test_hostile_files_are_refused_with_a_clear_message_and_leave_nothing(app, client, auth, data, name, status,
                                                                          message):
    refused = upload(client, data, auth, name=name)
    assert refused.status_code == status and message in refused.get_json()["error"]
    with app.app_context():
        assert db.session.query(Media).count() == 0
    assert not list(Path(app.config["MEDIA_DIR"]).glob("*/*")), "no file left behind"


def test_a_polyglot_keeps_only_its_picture(client, auth):
    tail = b"<html><script>alert(1)</script></html>PK\x03\x04hidden.zip"
    media = upload(client, jpeg((800, 600)) + tail, auth).get_json()["media"]
    for variant in media["variants"]:
        stored = client.get(variant["url"]).data
        assert b"<script>" not in stored and b"PK\x03\x04" not in stored


def test_alt_text_is_required_a_token_too_and_size_is_capped(app, client, auth):
    missing = client.post("/api/media", data={"file": (io.BytesIO(jpeg((100, 100))), "a.jpg"), "alt": " "},
                          headers=auth, content_type="multipart/form-data")
    assert missing.status_code == 422 and missing.get_json()["field"] == "alt"
    assert upload(client, jpeg((100, 100)), {}).status_code == 401
    app.config["MEDIA_MAX_BYTES"] = 10_000
    too_big = upload(client, jpeg(), auth)
    assert too_big.status_code == 413 and "too large" in too_big.get_json()["error"]
    assert client.get("/media/0123456789abcdef0123456789abcdef/480.svg").status_code == 404


def test_an_update_shows_its_images_to_readers_live_and_on_the_page(app, client, auth, story, socket_client):
    first, second = (upload(client, jpeg((1200, 800)), auth, caption=f"Picture {n}").get_json()["media"]
                     for n in (1, 2))
    reader = socket_client()
    reader.emit("join", {"story": story, "since": 0}, callback=True)
    made = client.post(f"/api/stories/{story}/entries", headers=auth,
                       json={"body": "Two pictures.", "media": [second["id"], first["id"]]}).get_json()["entry"]
    assert [m["id"] for m in made["media"]] == [second["id"], first["id"]] and made["media"][0] == second
    [event] = [e["args"][0] for e in reader.get_received() if e["name"] == "entry"]
    assert event["media"] == made["media"]
    page = client.get(f"/stories/{story}").get_data(as_text=True)
    img = page[page.index('<img src="' + second["url"]):]
    img = img[:img.index(">")]
    assert 'alt="Flooded high street"' in img and 'width="1200" height="800"' in img
    assert img.count("w,") >= 1 and "srcset=" in img, "at least two candidates"
    assert "Picture 2" in page
    catchup = client.get(f"/api/stories/{story}/entries?after_rev=0").get_json()["entries"]
    assert catchup[-1]["media"] == made["media"]
    bad = client.post(f"/api/stories/{story}/entries", headers=auth, json={"body": "x", "media": [999]})
    assert bad.status_code == 422 and "no media with id 999" in bad.get_json()["error"]
    cleared = client.patch(f"/api/entries/{made['id']}", headers=auth, json={"media": []}).get_json()["entry"]
    assert cleared["media"] == [] and cleared["rev"] > made["rev"]


def test_feeds_json_ld_and_cards_carry_the_images(app, client, auth, story):
    lead, photo = (upload(client, jpeg((1600, 900)), auth, alt=alt).get_json()["media"]
                   for alt in ("The river at dawn", "Sandbags at the door"))
    assert client.patch(f"/api/stories/{story}", headers=auth, json={"image_media": lead["id"]}).status_code == 200
    client.post(f"/api/stories/{story}/entries", headers=auth, json={"body": "Sandbags.", "media": [photo["id"]]})
    base = app.config["PUBLIC_URL"]
    page = client.get(f"/stories/{story}").get_data(as_text=True)
    assert f'<meta property="og:image" content="{base}{lead["url"]}">' in page
    assert '<meta property="og:image:alt" content="The river at dawn">' in page
    assert f'"image": "{base}{lead["url"]}"' in page and f'"image": ["{base}{photo["url"]}"]' in page
    feed = client.get(f"/stories/{story}/feed.atom").get_data(as_text=True)
    assert f'&lt;img src="{base}{photo["url"]}" alt="Sandbags at the door" width="1600" height="900"&gt;' in feed
    assert client.patch(f"/api/stories/{story}", headers=auth, json={"image_media": 999}).status_code == 422


def test_an_images_alt_text_caption_and_credit_are_corrected_live_everywhere_it_shows(app, client, auth, story,
                                                                                   socket_client):
    media = upload(client, jpeg((800, 600)), auth, alt="A flood").get_json()["media"]
    made = [client.post(f"/api/stories/{story}/entries", headers=auth, json={"body": f"Update {n}.",
                                                                               "media": [media["id"]]}).get_json()
            for n in range(2)]
    reader = socket_client()
    reader.emit("join", {"story": story, "since": 0}, callback=True)
    fixed = client.patch(f"/api/media/{media['id']}", headers=auth,
                         json={"alt": "Flood water at the town hall steps", "credit": "A. Reader"})
    assert fixed.status_code == 200 and fixed.get_json()["media"]["alt"] == "Flood water at the town hall steps"
    events = [e["args"][0] for e in reader.get_received() if e["name"] == "entry"]
    assert sorted(e["id"] for e in events) == sorted(m["entry"]["id"] for m in made)
    assert all(e["media"][0]["credit"] == "A. Reader" and e["rev"] > made[-1]["entry"]["rev"] for e in events)
    assert "Flood water at the town hall steps" in client.get(f"/stories/{story}").get_data(as_text=True)
    assert client.patch(f"/api/stories/{story}", headers=auth, json={"image_media": media["id"]}).status_code == 200
    reader.get_received()
    client.patch(f"/api/media/{media['id']}", headers=auth, json={"caption": "The town hall, Tuesday"})
    [lead] = [e["args"][0] for e in reader.get_received() if e["name"] == "story"]
    assert lead["image"]["caption"] == "The town hall, Tuesday" and lead["image_media"] == media["id"]
    assert client.get(f"/api/stories/{story}").get_json()["story"]["image"] == lead["image"]
    assert client.patch(f"/api/media/{media['id']}", headers=auth, json={"alt": ""}).status_code == 422
    assert client.patch("/api/media/999", headers=auth, json={"alt": "x"}).status_code == 404


def test_an_image_taken_down_leaves_every_update_and_story_live_and_its_files_go(app, client, auth, story,
                                                                                 socket_client):
    media, kept = (upload(client, jpeg((800, 600)), auth).get_json()["media"] for _ in range(2))
    made = client.post(f"/api/stories/{story}/entries", headers=auth,
                       json={"body": "Two.", "media": [media["id"], kept["id"]]}).get_json()["entry"]
    client.patch(f"/api/stories/{story}", headers=auth, json={"image_media": media["id"]})
    reader = socket_client()
    reader.emit("join", {"story": story, "since": 0}, callback=True)
    assert client.delete(f"/api/media/{media['id']}", headers=auth).status_code == 204
    events = {e["name"]: e["args"][0] for e in reader.get_received() if e["name"] in ("entry", "story")}
    assert [m["id"] for m in events["entry"]["media"]] == [kept["id"]] and events["entry"]["rev"] > made["rev"]
    assert events["story"]["image"] is None and events["story"]["image_media"] is None
    assert client.get(media["url"]).status_code == 404 and client.get(kept["url"]).status_code == 200
    assert media["url"] not in client.get(f"/stories/{story}").get_data(as_text=True)
    assert client.delete(f"/api/media/{media['id']}", headers=auth).status_code == 404


def test_prune_media_deletes_only_old_images_nothing_shows(app, client, auth, story):
    shown, fresh, abandoned = (upload(client, jpeg((600, 400)), auth).get_json()["media"] for _ in range(3))
    client.post(f"/api/stories/{story}/entries", headers=auth, json={"body": "One.", "media": [shown["id"]]})
    with app.app_context():
        for media in db.session.scalars(db.select(Media).where(Media.id.in_([shown["id"], abandoned["id"]]))):
            media.created_at -= timedelta(days=2)
        db.session.commit()
    result = app.test_cli_runner().invoke(args=["prune-media", "--older-than", "24"])
    assert result.exit_code == 0 and "Deleted 1 unused image." in result.output
    assert client.get(abandoned["url"]).status_code == 404
    assert client.get(shown["url"]).status_code == 200 and client.get(fresh["url"]).status_code == 200
