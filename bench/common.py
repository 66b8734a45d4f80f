"""Shared helpers for the GPU benchmarks: deterministic inputs, timing, image comparison, results."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
from PIL import Image


def source_image(size: int = 1024, seed: int = 0) -> Image.Image:
    """A deterministic, non-trivial 'photo' (gradients + shapes + noise): never zeros."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    img = np.stack([x, y, 0.5 + 0.5 * np.sin(6.28 * (x + y))], axis=-1)
    img += 0.08 * rng.standard_normal(img.shape)
    cx, cy, r = 0.5, 0.55, 0.2
    disc = ((x - cx) ** 2 + (y - cy) ** 2) < r * r
    img[disc] = [0.85, 0.2, 0.15]
    return Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))


def card_name() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}"
    except Exception:  # noqa: BLE001
        pass
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def compare_images(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """a, b: float arrays in [0, 1], HxWxC. Differences in 8-bit pixel units, PSNR (dB), SSIM."""
    a8 = np.round(np.clip(a, 0, 1) * 255).astype(np.float64)
    b8 = np.round(np.clip(b, 0, 1) * 255).astype(np.float64)
    diff = np.abs(a8 - b8)
    mse = float(np.mean((a8 - b8) ** 2))
    psnr = float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
    return {
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "psnr_db": psnr,
        "ssim": ssim(a8, b8),
    }


def gaussian_blur(z: np.ndarray, sigma: float = 1.5, radius: int = 5) -> np.ndarray:
    """scipy.ndimage.gaussian_filter(z, sigma, truncate=3.5) (mode "reflect"), in numpy: no scipy needed."""
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = np.asarray(z, dtype=np.float64)
    for axis in (0, 1):
        padded = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in range(out.ndim)], mode="symmetric")
        n = out.shape[axis]
        out = sum(w * np.take(padded, np.arange(i, i + n), axis=axis) for i, w in enumerate(taps))
    return out


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM over channels with an 11x11 Gaussian window (sigma 1.5), as in Wang et al. 2004."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for ch in range(a.shape[-1]):
        x, y = a[..., ch], b[..., ch]
        blur = gaussian_blur
        mx, my = blur(x), blur(y)
        sxx, syy, sxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        values.append(s.mean())
    return float(np.mean(values))


class StepTimer:
    """callback_on_step_end that records when each denoise step finished (device-synchronised)."""

    def __init__(self, sync):
        self.sync = sync
        self.stamps: list[float] = []

    def __call__(self, pipe, step, timestep, callback_kwargs):
        self.sync()
        self.stamps.append(time.perf_counter())
        return callback_kwargs

    def per_step(self) -> list[float]:
        return [b - a for a, b in zip(self.stamps, self.stamps[1:])]


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except Exception:  # noqa: BLE001
        return "unknown"


def write_json(path: str | Path | None, payload: dict) -> None:
    text = json.dumps(payload, indent=2, default=str)
    print(text)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
