"""Item photos: checked by content, size-limited, re-encoded without EXIF, named by the server."""

import io
import uuid
import warnings

from django.conf import settings
from django.core.files.base import ContentFile
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from orders.errors import OrderError

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP"}
MAX_PIXELS = 40_000_000  # ~ a 48-megapixel phone photo; beyond that it is a decompression bomb
MAX_SIDE = 2048


class PhotoRejected(OrderError):
    code = "bad_photo"


def photo_process(upload) -> ContentFile:
    """Return a clean JPEG of the upload, or raise PhotoRejected with a message for the user."""
    if upload.size > settings.ORDER_PHOTO_MAX_BYTES:
        raise PhotoRejected(
            _("The photo is too large (at most %(mb)d MB).")
            % {"mb": settings.ORDER_PHOTO_MAX_BYTES // (1024 * 1024)}
        )
    data = upload.read()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format not in ALLOWED_FORMATS:
                    raise PhotoRejected(_("Upload a JPEG, PNG or WebP photo."))
                if probe.width * probe.height > MAX_PIXELS:
                    raise PhotoRejected(_("The photo has too many pixels."))
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image = ImageOps.exif_transpose(image)
                image.thumbnail((MAX_SIDE, MAX_SIDE))
                out = io.BytesIO()
                # Re-encoding drops EXIF (including GPS) and anything hidden after the image data.
                image.convert("RGB").save(out, format="JPEG", quality=85, optimize=True)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoRejected(_("This file is not a photo we can read.")) from None
    except (OSError, SyntaxError, ValueError):
        raise PhotoRejected(_("This photo is damaged and cannot be read.")) from None
    return ContentFile(out.getvalue(), name=f"{uuid.uuid4().hex}.jpg")
