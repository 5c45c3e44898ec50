"""Item and receipt photos: checked by content, limited in size and per user per day, re-encoded
(which drops EXIF and its GPS, and anything hidden after the image data), given server-made
names, thumbnailed, and stored through Django's storage (local files, or S3-compatible storage
when configured: see STORAGES in settings).

Nothing is stored until a photo has passed every check; a refused file leaves no trace.
"""

import io
import uuid
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from orders.errors import OrderError

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP"}
MAX_PIXELS = 40_000_000  # ~ a 48-megapixel phone photo; beyond that: a decompression bomb
MAX_SIDE = 2048
THUMB_SIDE = 320


class PhotoRejected(OrderError):
    code = "bad_photo"


@dataclass(frozen=True)
class ProcessedPhoto:
    """A clean photo ready to store: the JPEG and its thumbnail, both with server-made names."""

    full: ContentFile
    thumb: ContentFile


def photos_uploaded_today(user) -> int:
    """Photos this user stored since local midnight: item photos and receipts."""
    from orders.models import Order

    since = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    items = Order.objects.filter(customer=user, created_at__gte=since).exclude(photo="").count()
    receipts = (
        Order.objects.filter(rider=user, cost_recorded_at__gte=since)
        .exclude(Q(receipt_photo="") | Q(receipt_photo__isnull=True))
        .count()
    )
    return items + receipts


def photo_check_quota(user) -> None:
    limit = settings.ORDER_PHOTOS_PER_DAY
    if user is not None and photos_uploaded_today(user) >= limit:
        raise PhotoRejected(
            _("You have uploaded %(n)d photos today, the daily limit. Try again tomorrow.")
            % {"n": limit}
        )


def photo_process(upload, *, owner=None) -> ProcessedPhoto:
    """Check and re-encode an upload, or raise PhotoRejected with a message for the user.

    `owner` (the uploading user) is held to the daily quota."""
    if isinstance(upload, ProcessedPhoto):
        return upload
    limit = settings.ORDER_PHOTO_MAX_BYTES
    too_large = PhotoRejected(
        _("The photo is too large: at most %(mb)d MB.") % {"mb": limit // (1024 * 1024)}
    )
    if getattr(upload, "size", None) and upload.size > limit:
        raise too_large
    photo_check_quota(owner)
    if hasattr(upload, "seek"):
        upload.seek(0)
    data = upload.read(limit + 1)  # never more than the limit, whatever the size claimed
    if len(data) > limit:
        raise too_large
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in ALLOWED_FORMATS:
                    raise PhotoRejected(_("Upload a JPEG, PNG or WebP photo."))
                if probe.width * probe.height > MAX_PIXELS:
                    raise _too_many_pixels()
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                full = _jpeg(_flatten(ImageOps.exif_transpose(image)), MAX_SIDE, quality=85)
                thumb = _jpeg(_flatten(ImageOps.exif_transpose(image)), THUMB_SIDE, quality=75)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels() from None
    except UnidentifiedImageError:
        raise PhotoRejected(
            _("This file is not a photo: upload a JPEG, PNG or WebP image.")
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise PhotoRejected(_("This photo is damaged and cannot be read.")) from None
    stem = uuid.uuid4().hex
    return ProcessedPhoto(
        full=ContentFile(full, name=f"{stem}.jpg"),
        thumb=ContentFile(thumb, name=f"{stem}_thumb.jpg"),
    )


def _too_many_pixels() -> PhotoRejected:
    return PhotoRejected(
        _("The photo has too many pixels: at most %(mp)d megapixels.")
        % {"mp": MAX_PIXELS // 1_000_000}
    )


def _flatten(image: Image.Image) -> Image.Image:
    """RGB on white: transparent PNG/WebP areas would otherwise turn black in a JPEG."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def _jpeg(image: Image.Image, side: int, *, quality: int) -> bytes:
    image = image.copy()
    image.thumbnail((side, side))
    out = io.BytesIO()
    # No exif= and no icc_profile=: nothing of the original's metadata is written.
    image.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def photo_store(field_file, thumb_file, photo: ProcessedPhoto) -> None:
    """Write both files through the field's storage (no model save)."""
    field_file.save(photo.full.name, photo.full, save=False)
    thumb_file.save(photo.thumb.name, photo.thumb, save=False)


def photo_delete_quietly(*files) -> None:
    """Remove stored files after a failed write (a refused order must leave nothing behind)."""
    for f in files:
        try:
            if f:
                f.storage.delete(f.name)
        except Exception:  # noqa: BLE001 - best effort; the write already failed
            pass
