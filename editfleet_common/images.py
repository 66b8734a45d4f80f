"""Safe image decoding: every way an input image can be bad becomes InvalidInput."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InvalidInput

DEFAULT_MAX_PIXELS = 40_000_000  # ~6300x6300: far above any edit model's input, far below a bomb
# An image file read from disk (a benchmark's images, imported edits, export's edit files): refused from
# its size, before it is read, above this: the largest gRPC message the services take (64 MiB).
MAX_IMAGE_FILE_BYTES = 64 * 1024 * 1024


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, field: str = "image") -> Image.Image:
    """Decode encoded bytes into an RGB image, refusing empty, corrupt, zero-size and oversized ones.

    The pixel bound is checked from the header, before any pixel data is decoded, so a
    decompression bomb costs nothing. EXIF orientation is applied; alpha is composited on white.
    """
    if not data:
        raise InvalidInput(f"{field}: empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            if width <= 0 or height <= 0:
                raise InvalidInput(f"{field}: zero-size image ({width}x{height})")
            if width * height > max_pixels:
                raise InvalidInput(
                    f"{field}: {width}x{height} = {width * height} pixels exceeds the limit of {max_pixels}"
                )
            img.load()
            img = ImageOps.exif_transpose(img)
    except InvalidInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidInput(f"{field}: refused as a decompression bomb ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidInput(f"{field}: cannot decode image ({type(exc).__name__}: {exc})") from None
    return to_rgb(img)


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
