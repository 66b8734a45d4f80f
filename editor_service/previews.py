"""Partial images: the edit as the denoise goes, decoded from the current latents (the HTTP route's
`stream=true` with `partial_images`, OpenAI's `image_edit.partial_image` events).

After a chosen denoise step, the latents the pipeline holds are decoded by its own VAE the way the
pipeline decodes its final latents: unpacked from 2x2 patches (`pipe._unpack_latents`), then either
de-normalised per channel and decoded as one frame (Qwen-Image's 3-D VAE: `latents_mean`,
`latents_std`) or unscaled and shifted (FLUX's VAE: `scaling_factor`, `shift_factor`). What is shown
is the state of the denoise at that step (noisy early on), not a guess of the final image.

The latents carry no height and width: they come from the asked size, or else from the sequence's
length and the aspect ratio of the input that decides the output size (the last input image): of the
factor pairs of the packed length, the one closest to that ratio.

Pipelines without `_unpack_latents` and one of those two VAE conventions have no preview decoder: a
request for partial images is then refused naming `partial_images`. A preview costs one VAE decode.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from PIL import Image

PreviewDecoder = Callable[[torch.Tensor, int, int], Image.Image]
PATCH = 2  # latents are packed in 2x2 patches by the Qwen-Image and FLUX pipelines


def preview_decoder(pipe) -> PreviewDecoder | None:
    """decode(latents, width_hint, height_hint) -> PIL image for pipelines this module knows; else None."""
    vae = getattr(pipe, "vae", None)
    unpack = getattr(pipe, "_unpack_latents", None)
    processor = getattr(pipe, "image_processor", None)
    scale = getattr(pipe, "vae_scale_factor", None)
    if vae is None or unpack is None or processor is None or not scale:
        return None
    config = vae.config
    qwen = getattr(config, "latents_mean", None) is not None and getattr(config, "z_dim", None)
    flux = getattr(config, "scaling_factor", None) is not None and getattr(config, "shift_factor", None) is not None
    if not (qwen or flux):
        return None

    def decode(latents: torch.Tensor, width_hint: int, height_hint: int) -> Image.Image:
        width, height = latent_size(latents.shape[1], width_hint, height_hint, scale * PATCH)
        x = unpack(latents[:1], height, width, scale).to(vae.dtype)
        if qwen:
            shape = (1, config.z_dim, 1, 1, 1)
            mean = torch.tensor(config.latents_mean).view(shape).to(x.device, x.dtype)
            std = torch.tensor(config.latents_std).view(shape).to(x.device, x.dtype)
            pixels = vae.decode(x * std + mean, return_dict=False)[0][:, :, 0]
        else:
            pixels = vae.decode(x / config.scaling_factor + config.shift_factor, return_dict=False)[0]
        return processor.postprocess(pixels.float(), output_type="pil")[0]

    return decode


def latent_size(patches: int, width_hint: int, height_hint: int, pixels_per_patch: int) -> tuple[int, int]:
    """(width, height) in pixels of a packed latent sequence of `patches` 2x2 patches: the factor pair
    closest to the hinted aspect ratio (exact when the hint is the asked size)."""
    want = math.log(max(width_hint, 1) / max(height_hint, 1))
    best = None
    for rows in range(1, int(math.isqrt(patches)) + 1):
        if patches % rows:
            continue
        for h, w in ((rows, patches // rows), (patches // rows, rows)):
            gap = abs(math.log(w / h) - want)
            if best is None or gap < best[0]:
                best = (gap, w, h)
    _, w, h = best
    return w * pixels_per_patch, h * pixels_per_patch


def preview_steps(steps: int, count: int) -> tuple[int, ...]:
    """The denoise steps after which `count` previews are decoded: evenly spread over the steps before
    the last (the final image comes after it). Fewer when there are fewer steps, as OpenAI's own
    stream may send the final image before all the partial images asked for."""
    if count <= 0 or steps <= 1:
        return ()
    chosen = {min(steps - 1, max(1, round(steps * (i + 1) / (count + 1)))) for i in range(count)}
    return tuple(sorted(chosen))
