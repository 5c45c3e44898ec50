"""Draw the rider app's icons (static/riders/icons/*.png) with Pillow; the PNGs are committed."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from PIL import Image, ImageDraw

BRAND = (255, 122, 0)
WHITE = (255, 255, 255)


def draw_icon(size: int, *, maskable: bool) -> Image.Image:
    """A white parcel with motion lines on the brand orange; maskable icons keep a safe margin."""
    scale = 4  # draw large, then shrink: smooth edges without anti-aliasing support in ImageDraw
    s = size * scale
    image = Image.new("RGB", (s, s), BRAND)
    draw = ImageDraw.Draw(image)
    if not maskable:
        image = Image.new("RGBA", (s, s), (0, 0, 0, 0))
        draw = ImageDraw.Draw(image)
        draw.rounded_rectangle((0, 0, s - 1, s - 1), radius=s // 5, fill=BRAND)
    inset = 0.30 if maskable else 0.22  # maskable: everything inside the 80% safe circle
    box = (s * (inset + 0.08), s * inset, s * (1 - inset + 0.08), s * (1 - inset))
    w = box[2] - box[0]
    draw.rounded_rectangle(box, radius=w * 0.08, fill=WHITE)
    band = w * 0.16
    mid = (box[0] + box[2]) / 2
    draw.rectangle((mid - band / 2, box[1], mid + band / 2, box[3]), fill=BRAND)
    draw.rectangle((box[0], box[1] + w * 0.28, box[2], box[1] + w * 0.28 + band * 0.6), fill=BRAND)
    for i, length in enumerate((0.16, 0.24, 0.16)):
        y = box[1] + w * (0.30 + 0.2 * i)
        x1 = box[0] - w * 0.06
        draw.rounded_rectangle((x1 - w * length, y, x1, y + w * 0.07), radius=w * 0.035, fill=WHITE)
    return image.resize((size, size), Image.LANCZOS)


class Command(BaseCommand):
    help = "Draw the rider app's PNG icons into static/riders/icons/."

    def handle(self, *args, **options):
        out = Path(settings.BASE_DIR) / "static" / "riders" / "icons"
        out.mkdir(parents=True, exist_ok=True)
        for name, size, maskable in (
            ("icon-192.png", 192, False),
            ("icon-512.png", 512, False),
            ("maskable-512.png", 512, True),
        ):
            draw_icon(size, maskable=maskable).save(out / name, optimize=True)
            self.stdout.write(f"{out / name}")
