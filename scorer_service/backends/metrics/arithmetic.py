"""The reference metrics' arithmetic and preprocessing, as the suites' official scripts do them; no model.

    pixel_distance(edited, reference, "l1")   # MagicBrush evaluation/image_eval.py eval_distance
    clip_pixels(image, 224), dino_pixels(image)   # the backbones' inputs (image_eval.py's transforms)
    cosine(u, v), direction(u0, u1, t0, t1)   # the similarities, float64

Pixel distances (MagicBrush `eval_distance`): the first image is resized to the second's size with
PIL's bicubic filter (PIL's default for `Image.resize`), both become float32 tensors in [0, 1]
(torchvision's ToTensor), and the distance is the mean over every channel and pixel of |a - b| (L1,
torch's L1Loss) or (a - b)^2 (L2, MSELoss), computed on the CPU whatever the device.

CLIP's input (clip.load("ViT-B/32")'s transform): resize the shorter side to the model's input size
(224) with bicubic, centre crop, [0, 1], normalised by CLIP's mean and std. DINO's (image_eval.py):
resize the shorter side to 256 with bicubic (interpolation=3), centre crop 224, [0, 1], normalised by
ImageNet's mean and std. Both through torchvision's own transforms, as the official scripts.

Similarities: cosine of two embeddings in float64, as torch's F.cosine_similarity defines it (the
norms' product clamped at 1e-8: a zero vector gives 0, not NaN). CLIP-dir (InstructPix2Pix's
metrics/clip_similarity.py, which Emu Edit's CLIP_dir follows): the embeddings L2-normalised first,
then cos(image_1 - image_0, text_1 - text_0).
"""

from __future__ import annotations

import torch
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)   # openai/CLIP clip.py _transform
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)             # image_eval.py's DINO transform
IMAGENET_STD = (0.229, 0.224, 0.225)
DINO_RESIZE, DINO_CROP = 256, 224
COSINE_EPS = 1e-8                                 # torch.nn.functional.cosine_similarity's default


def _transforms():
    from torchvision import transforms as T

    return T


def to_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB image as a float32 CxHxW tensor in [0, 1] (torchvision's ToTensor)."""
    return _transforms().ToTensor()(image)


def pixel_distance(image: Image.Image, reference: Image.Image, metric: str) -> float:
    """L1 or L2 of `image` (resized to the reference's size, bicubic) to `reference`, in [0, 1]."""
    if metric not in ("l1", "l2"):
        raise ValueError(f"pixel distance {metric!r}: l1 or l2")
    if image.size != reference.size:
        image = image.resize(reference.size, Image.BICUBIC)
    a, b = to_tensor(image.convert("RGB")), to_tensor(reference.convert("RGB"))
    loss = torch.nn.functional.l1_loss if metric == "l1" else torch.nn.functional.mse_loss
    return float(loss(a, b).item())


def clip_pixels(image: Image.Image, size: int) -> torch.Tensor:
    """CLIP's input tensor for one image (3 x size x size)."""
    T = _transforms()
    return T.Compose([T.Resize(size, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(size),
                      T.ToTensor(), T.Normalize(CLIP_MEAN, CLIP_STD)])(image.convert("RGB"))


def dino_pixels(image: Image.Image) -> torch.Tensor:
    """DINO's input tensor for one image (3 x 224 x 224)."""
    T = _transforms()
    return T.Compose([T.Resize(DINO_RESIZE, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(DINO_CROP),
                      T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])(image.convert("RGB"))


def cosine(u: torch.Tensor, v: torch.Tensor) -> float:
    """cos(u, v) in float64: u.v / max(|u| |v|, 1e-8)."""
    u, v = u.detach().double().flatten().cpu(), v.detach().double().flatten().cpu()
    norms = torch.sqrt(torch.clamp_min((u * u).sum() * (v * v).sum(), COSINE_EPS * COSINE_EPS))
    return float(((u * v).sum() / norms).item())


def normalised(u: torch.Tensor) -> torch.Tensor:
    u = u.detach().double().flatten().cpu()
    return u / u.norm()


def direction(image_0: torch.Tensor, image_1: torch.Tensor, text_0: torch.Tensor, text_1: torch.Tensor) -> float:
    """CLIP-dir: cos(n(image_1) - n(image_0), n(text_1) - n(text_0)), n = L2-normalised."""
    return cosine(normalised(image_1) - normalised(image_0), normalised(text_1) - normalised(text_0))
