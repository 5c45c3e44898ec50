"""Item and receipt photos: good photos are re-encoded without EXIF, with a thumbnail and a server
name; each bad file is refused with its own message and nothing is stored."""

import io
import json
import os
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from orders import photos
from orders.models import Order
from tests import factories


def stored_files(settings) -> list[str]:
    root = settings.MEDIA_ROOT
    return [os.path.join(d, f) for d, _dirs, files in os.walk(root) for f in files]


def place(client, campus, upload, kind="parcel"):
    payload = {
        "kind": kind,
        "pickup_building": factories.building(campus, "P1").pk,
        "dropoff_building": factories.building(campus, "D3").pk,
        "details": json.dumps(factories.ERRAND_DETAILS["parcel"]),
        "photo": upload,
    }
    return client.post("/api/orders/", payload, format="multipart")


@pytest.fixture
def funded(student):
    factories.fund_wallet(student, at_least=10_000)
    return student


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_jpeg_png_and_webp_are_accepted_and_stored_as_clean_jpegs(
    fmt, funded, campus, api, settings
):
    response = place(api(funded), campus, factories.photo_upload(fmt, size=(1200, 900)))
    assert response.status_code == 201, response.content
    order = Order.objects.get(number=response.json()["number"])
    with order.photo.open("rb") as f, Image.open(f) as image:
        assert image.format == "JPEG" and image.size == (1200, 900)
    with order.photo_thumb.open("rb") as f, Image.open(f) as thumb:
        assert max(thumb.size) == photos.THUMB_SIDE
    # Server-made names: nothing of the uploaded name survives.
    assert "item" not in order.photo.name
    assert order.photo.name.startswith("orders/photos/") and order.photo.name.endswith(".jpg")
    assert len(stored_files(settings)) == 2


def test_exif_and_gps_are_stripped(funded, campus, api):
    upload = factories.photo_upload("JPEG", exif_gps=True)
    with Image.open(io.BytesIO(upload.read())) as original:
        assert original.getexif().get_ifd(0x8825)  # the upload does carry a GPS position
        assert original.getexif()[0x0110] == "Campus Phone 12"
    upload.seek(0)
    response = place(api(funded), campus, upload)
    assert response.status_code == 201, response.content
    order = Order.objects.get(number=response.json()["number"])
    for field in (order.photo, order.photo_thumb):
        with field.open("rb") as f:
            data = f.read()
        with Image.open(io.BytesIO(data)) as image:
            assert not image.getexif()
            assert "exif" not in image.info
        assert b"Campus Phone 12" not in data and b"Exif" not in data


def test_photo_is_served_to_the_owner_only(funded, other_student, campus, api):
    from django.test import Client

    number = place(api(funded), campus, factories.photo_upload()).json()["number"]
    owner, stranger = Client(), Client()
    owner.force_login(funded)
    stranger.force_login(other_student)
    for suffix in ("photo/", "photo/thumb/"):
        response = owner.get(f"/orders/{number}/{suffix}")
        assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
        assert stranger.get(f"/orders/{number}/{suffix}").status_code == 404


def png_bomb(side: int = 20_000) -> bytes:
    """A tiny PNG that claims side x side pixels (all zeros compress to almost nothing)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
        )

    header = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])  # 1-bit greyscale
    row = b"\x00" + b"\x00" * (side // 8)
    body = zlib.compress(row * side, 9)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF"
BAD_FILES = [
    ("renamed.jpg", PDF, "not a photo"),
    ("bomb.png", None, "too many pixels"),
    ("anim.gif", "GIF", "JPEG, PNG or WebP"),
    ("broken.jpg", "TRUNCATED", "damaged"),
    ("empty.jpg", b"", "empty"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_are_refused_with_their_message_and_nothing_is_stored(
    name, content, message, funded, campus, api, settings
):
    if content is None:
        content = png_bomb()
    elif content == "GIF":
        content = factories.image_bytes("GIF")
    elif content == "TRUNCATED":
        content = factories.image_bytes("JPEG", size=(400, 300))[:600]
    response = place(api(funded), campus, SimpleUploadedFile(name, content))
    assert response.status_code == 400
    assert message in response.json()["photo"][0]
    assert not Order.objects.exists()
    assert stored_files(settings) == []


def test_a_40_mb_file_is_refused_before_it_is_read(funded, campus, api, settings):
    big = SimpleUploadedFile("huge.jpg", b"\xff\xd8\xff" + b"\0" * (40 * 1024 * 1024))
    response = place(api(funded), campus, big)
    assert response.status_code == 400
    assert response.json()["photo"] == ["The photo is too large: at most 8 MB."]
    assert not Order.objects.exists() and stored_files(settings) == []


def test_a_file_lying_about_its_size_is_still_cut_at_the_limit(settings):
    settings.ORDER_PHOTO_MAX_BYTES = 1000

    class Liar(io.BytesIO):
        size = 10

    with pytest.raises(photos.PhotoRejected, match="too large"):
        photos.photo_process(Liar(factories.image_bytes("PNG", size=(300, 300))))


def test_the_daily_quota_is_per_user(funded, other_student, campus, api, settings):
    settings.ORDER_PHOTOS_PER_DAY = 2
    client = api(funded)
    for _ in range(2):
        assert place(client, campus, factories.photo_upload()).status_code == 201
    files = len(stored_files(settings))
    third = place(client, campus, factories.photo_upload())
    assert third.status_code == 400
    assert "daily limit" in third.json()["photo"][0]
    assert len(stored_files(settings)) == files
    factories.fund_wallet(other_student, at_least=10_000)
    assert place(api(other_student), campus, factories.photo_upload()).status_code == 201


def test_the_page_form_refuses_a_bad_photo_with_its_message(funded, campus, client):
    from django.test import Client

    page = Client()
    page.force_login(funded)
    data = {
        "kind": "parcel",
        "pickup_building": factories.building(campus, "P1").pk,
        "dropoff_building": factories.building(campus, "D3").pk,
        **factories.ERRAND_DETAILS["parcel"],
        "tip_fen": "0",
        "required_gender": "any",
        "quote_id": "x",
        "photo": SimpleUploadedFile("cv.jpg", b"%PDF-1.4 not an image"),
    }
    response = page.post("/orders/new/?kind=parcel", data)
    assert response.status_code == 400
    assert "not a photo" in response.content.decode()
    assert not Order.objects.exists()


def test_s3_compatible_storage_is_switched_on_by_the_environment(monkeypatch):
    import runpy

    from django.conf import settings as django_settings
    from django.utils.module_loading import import_string

    monkeypatch.setenv("MEDIA_S3_BUCKET", "campus-media")
    monkeypatch.setenv("MEDIA_S3_ENDPOINT_URL", "http://127.0.0.1:9000")
    fresh = runpy.run_path(str(django_settings.BASE_DIR / "campus_errand" / "settings.py"))
    default = fresh["STORAGES"]["default"]
    storage = import_string(default["BACKEND"])(**default["OPTIONS"])  # no connection yet
    assert type(storage).__name__ == "S3Storage"
    assert (storage.bucket_name, storage.location, storage.endpoint_url) == (
        "campus-media",
        "media",
        "http://127.0.0.1:9000",
    )
    assert storage.default_acl == "private" and storage.file_overwrite is False
