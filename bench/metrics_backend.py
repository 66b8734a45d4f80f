"""Reference-metrics throughput (judge.backend metrics, scorer_service/backends/metrics): edited images
scored per second by the metrics backend in process, through the judge's own path (Judge.score over
prepared samples of a metrics protocol: MagicBrush's five metrics against a ground truth, or Emu
Edit's five against the input and captions), --batch samples per call as the scorer's batcher would
form them. Random images of --size x --size (edit, input, reference), one caption pair per sample.
Timed after one warm-up batch; the device synchronised before the clock stops.

Backbones: --model (CLIP) and --dino-model (DINO) loaded with from_pretrained, or with
--load-format dummy the real full-size architectures (CLIP ViT-B/32, DINO ViT-S/16: the configs
tools/make_tiny_clip.py and make_tiny_dino.py write with --full-size --config-only) with random
weights: the speed is that of the real backbones, the values mean nothing.

    python bench/metrics_backend.py --model models/tiny-clip --dino-model models/tiny-dino --device cpu --n 4 --batch 2 --size 64  # dry run (scorer)
    python bench/metrics_backend.py --load-format dummy --device cpu --n 32 --batch 16 --size 512 --out $OUT/metrics_cpu.json
    python bench/metrics_backend.py --load-format dummy --device cuda --n 512 --batch 64 --size 512 --out $OUT/metrics_gpu.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def full_size_configs(folder: Path) -> tuple[Path, Path]:
    """CLIP ViT-B/32 and DINO ViT-S/16 config folders (no weights), as the tiny-model tools write them."""
    from tools.make_tiny_clip import build_config as clip_config, tiny_clip_tokenizer
    from tools.make_tiny_dino import build_config as dino_config

    clip_dir, dino_dir = folder / "clip-vit-b32", folder / "dino-vits16"
    tokenizer = tiny_clip_tokenizer()
    clip_config(tokenizer, full_size=True).save_pretrained(clip_dir)
    tokenizer.save_pretrained(clip_dir)
    dino_config(full_size=True).save_pretrained(dino_dir)
    return clip_dir, dino_dir


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="CLIP (hub id or folder); with --load-format dummy: the full-size config by default")
    p.add_argument("--dino-model", help="DINO ViT-S/16 (hub id or folder)")
    p.add_argument("--load-format", choices=["auto", "dummy"], default="auto")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--protocol", choices=["magicbrush", "emu_edit"], default="magicbrush")
    p.add_argument("--n", type=int, default=32, help="samples timed (each one edited image)")
    p.add_argument("--batch", type=int, default=16, help="samples per Judge.score call")
    p.add_argument("--encoder-batch", type=int, default=16, help="images or texts per backbone forward")
    p.add_argument("--size", type=int, default=512, help="side of the random images")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--out", help="write the result as JSON here")
    args = p.parse_args()

    import numpy as np
    import torch
    from PIL import Image

    from bench.common import card_name, git_commit, write_json
    from editfleet_common.images import encode_png
    from scorer_service.backends.metrics import MetricsBackend
    from scorer_service.judge import Judge
    from scorer_service.samples import ScoreInput, prepare
    from suites.protocols import load_protocols

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    tmp = tempfile.TemporaryDirectory()
    clip, dino = args.model, args.dino_model
    if args.load_format == "dummy" and not (clip and dino):
        clip_dir, dino_dir = full_size_configs(Path(tmp.name))
        clip, dino = clip or str(clip_dir), dino or str(dino_dir)
    if not (clip and dino):
        p.error("give --model and --dino-model (or --load-format dummy for the full-size architectures)")
    t0 = time.monotonic()
    backend = MetricsBackend.load(clip, dino_model=dino, device=args.device, dtype=args.dtype,
                                  load_format=args.load_format, encoder_batch=args.encoder_batch)
    load_s = time.monotonic() - t0
    judge = Judge(backend)
    registry = load_protocols(default="magicbrush")
    rng = np.random.default_rng(0)

    def image() -> bytes:
        return encode_png(Image.fromarray(rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)))

    def sample(i: int):
        variables = {"output_caption": f"a photo of a red object number {i}"}
        if args.protocol == "emu_edit":
            variables["input_caption"] = f"a photo of an object number {i}"
        return prepare(ScoreInput(f"s{i}", image(), image(), "make it red", "turn1", args.protocol, variables,
                                  reference_images=[image()] if args.protocol == "magicbrush" else []), registry)

    samples = [sample(i) for i in range(args.n + args.batch)]
    warm, timed = samples[:args.batch], samples[args.batch:]

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    judge.score(warm)
    sync()
    started = time.monotonic()
    outcomes = []
    for start in range(0, len(timed), args.batch):
        outcomes += judge.score(timed[start:start + args.batch])
    sync()
    seconds = time.monotonic() - started
    bad = [o.status for o in outcomes if o.status != "OK"]
    result = {
        "bench": "metrics_backend", "protocol": args.protocol, "device": args.device,
        "card": card_name() if args.device.startswith("cuda") else "cpu", "threads": torch.get_num_threads(),
        "load_format": args.load_format, "dtype": backend.identity.dtype, "model_class": backend.identity.model_class,
        "n": len(timed), "batch": args.batch, "encoder_batch": args.encoder_batch, "size": args.size,
        "load_s": round(load_s, 2), "seconds": round(seconds, 3),
        "images_per_s": round(len(timed) / seconds, 2), "metrics_per_s": round(len(timed) * 5 / seconds, 2),
        "not_ok": bad, "commit": git_commit(),
    }
    write_json(args.out, result)
    tmp.cleanup()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
