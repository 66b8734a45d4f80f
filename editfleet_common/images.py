"""Safe image decoding: every way an input image can be bad becomes InvalidInput, in one line that
names the image (its request field, or its file) and, for a size, the limit and the flag that sets it.

Pillow's own decompression-bomb guard answers before the size is known to us (above its
MAX_IMAGE_PIXELS, 89 M) with "could be decompression bomb DOS attack": the header is then read again
without it, and the declared size is checked against our limit like any other (a service whose
--max-input-pixels is above Pillow's takes what its flag says). Pillow names an image it cannot identify by its file object
("<_io.BytesIO object at 0x...>"): the object handed to it here is named after the field instead.
"""

from __future__ import annotations

import io
import re
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InvalidInput

DEFAULT_MAX_PIXELS = 40_000_000  # ~6300x6300: far above any edit model's input, far below a bomb
PIXEL_FLAG = "--max-input-pixels"  # the services' flag that sets the bound (editfleet_common.service)
# An image file read from disk (a benchmark's images, imported edits, export's edit files): refused from
# its size, before it is read, above this: the largest gRPC message the services take (64 MiB).
MAX_IMAGE_FILE_BYTES = 64 * 1024 * 1024

_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")  # Pillow's "Image size (N pixels) exceeds limit of M pixels, ..."
_UNREADABLE = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError)


class _Named(io.BytesIO):
    """An image's bytes as Pillow's file object, named for its messages ("cannot identify image file %r")."""

    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self._name = name

    def __repr__(self) -> str:
        return self._name


def _in(source: str | None) -> str:
    return f": {source}" if source else ""


def header_size(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, field: str = "image",
                source: str | None = None, flag: str = PIXEL_FLAG) -> tuple[int, int]:
    """The size an encoded image declares, read from its header only (no pixel is decoded): refuses
    empty data, unknown formats, zero sizes and more than `max_pixels`. field: the image's name in the
    request ("source_image", "images[1]"); source: its file, where it came from one; flag: what sets
    `max_pixels`. A truncated body is found only when decoded (decode_image)."""
    with _opened(data, max_pixels=max_pixels, field=field, source=source, flag=flag) as img:
        return img.size


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, field: str = "image",
                 source: str | None = None, flag: str = PIXEL_FLAG) -> Image.Image:
    """Decode encoded bytes into an RGB image, refusing empty, corrupt, zero-size and oversized ones
    (field, source, flag: as header_size).

    The pixel bound is checked from the header, before any pixel data is decoded, so a
    decompression bomb costs nothing. EXIF orientation is applied; alpha is composited on white.
    """
    img = _opened(data, max_pixels=max_pixels, field=field, source=source, flag=flag)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
            img = ImageOps.exif_transpose(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # a frame or tile larger than the image
        raise InvalidInput(_bomb_message(exc, None, max_pixels, field, source, flag)) from None
    except _UNREADABLE as exc:
        raise InvalidInput(f"{field}: cannot decode image ({type(exc).__name__}: {exc}){_in(source)}") from None
    return to_rgb(img)


def _opened(data: bytes, *, max_pixels: int, field: str, source: str | None, flag: str) -> Image.Image:
    """The image opened (its header read, no pixel decoded) and its declared size checked."""
    if not data:
        raise InvalidInput(f"{field}: empty (0 bytes){_in(source)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(_Named(data, source or field))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        img = _open_unguarded(data, source or field)  # our bound decides, from the same header
        if img is None or img.size[0] * img.size[1] > max_pixels:
            raise InvalidInput(_bomb_message(exc, img, max_pixels, field, source, flag)) from None
    except UnidentifiedImageError:
        raise InvalidInput(f"{field}: cannot decode image (not an image format Pillow reads; {len(data)} bytes "
                           f"starting {data[:8]!r}){_in(source)}") from None
    except _UNREADABLE as exc:
        raise InvalidInput(f"{field}: cannot decode image ({type(exc).__name__}: {exc}){_in(source)}") from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise InvalidInput(f"{field}: zero-size image ({width}x{height}){_in(source)}")
    if width * height > max_pixels:
        raise InvalidInput(_over(field, f"{width}x{height} = {width * height}", max_pixels, flag, source))
    return img


def _over(field: str, size: str, max_pixels: int, flag: str, source: str | None) -> str:
    return f"{field}: {size} pixels exceeds the limit of {max_pixels} ({flag}){_in(source)}"


def _bomb_message(exc: Exception, img: Image.Image | None, max_pixels: int, field: str, source: str | None,
                  flag: str) -> str:
    """Pillow's bomb guard, said as the declared size against our limit (the size as the format's own
    reader gives it, else the pixel count in Pillow's message)."""
    if img is not None:
        pixels, shown = img.size[0] * img.size[1], f"{img.size[0]}x{img.size[1]} = {img.size[0] * img.size[1]}"
    else:
        found = _BOMB_PIXELS.search(str(exc))
        if found is None:
            return f"{field}: refused by Pillow's decompression-bomb guard ({exc}){_in(source)}"
        pixels = int(found.group(1))
        shown = str(pixels)
    if pixels > max_pixels:
        return _over(field, shown, max_pixels, flag, source)
    # within our limit, over Pillow's own where its format's reader checks it again (a GIF frame, a tile)
    return (f"{field}: {shown} pixels exceeds Pillow's own limit of {Image.MAX_IMAGE_PIXELS} "
            f"(PIL.Image.MAX_IMAGE_PIXELS; {flag} is {max_pixels}){_in(source)}")


def _open_unguarded(data: bytes, name: str) -> Image.Image | None:
    """The image opened as Image.open does (the first plugin of its registry that accepts the bytes),
    without Pillow's bomb guard, which refuses above its own MAX_IMAGE_PIXELS before the size is known
    to us: the caller checks the size against its own bound before any pixel is decoded. None where
    no plugin reads it."""
    prefix = data[:16]
    for fmt in list(Image.ID):
        factory, accept = Image.OPEN[fmt]
        try:
            accepted = not accept or accept(prefix)  # as Image.open asks (a str: a warning, not a match)
            if not accepted or isinstance(accepted, str):
                continue
            return factory(_Named(data, name), "")
        except Exception:  # noqa: BLE001 - another plugin, or none, reads it
            continue
    return None


def to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grey: scale to 8 bits instead of clipping everything to white
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        peak = arr.max() if arr.size and arr.max() > 0 else 1.0
        scale = 255.0 / (65535.0 if peak > 255 else 255.0)
        return Image.fromarray(np.clip(arr * scale, 0, 255).astype("uint8")).convert("RGB")
    return img.convert("RGB")


def encode_png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
