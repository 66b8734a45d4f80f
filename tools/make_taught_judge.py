"""The demo judge: the tiny random Qwen3-VL (tools/make_tiny_qwen3_vl.py) taught, in seconds, to
answer every shipped protocol (scorer_service/protocols: seed-0-10, viescore) in its format, so
that `make run` shows parsed scores, batch averages and the category table.

    python tools/make_taught_judge.py models/tiny-qwen3-vl models/tiny-qwen3-vl-taught

ITS SCORES MEAN NOTHING. They are numbers it was taught for the example benchmark's instructions
(a fixed function of the sample id), whatever the edited image shows. It exists to show the path that real
scores take (parsing, expected score, summary, report, compare), not to judge anything.

Lessons: the example samples' prompts with a random "edited" image, for both protocols (see
lessons()); the vision tower stays as it is. Other benchmarks' prompts may get answers that do not
parse (recorded as PARSE_FAILED, as ever). Deterministic (fixed seeds).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

EXAMPLE = REPO_ROOT / "examples" / "benchmark" / "benchmark.jsonl"


def taught_score(sample_id: str, salt: str = "") -> int:
    """The number taught for a sample: fixed, 2..9, and saying nothing about the edit."""
    return 2 + int.from_bytes(hashlib.sha256(f"{salt}{sample_id}".encode()).digest()[:4], "big") % 8


def noise_png(rng: random.Random, size: int = 64) -> bytes:
    from PIL import Image

    img = Image.frombytes("RGB", (size, size), bytes(rng.randrange(256) for _ in range(size * size * 3)))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def lessons(benchmark: Path = EXAMPLE, seed: int = 0):
    """The first example sample of each category for seed-0-10 (teaching time grows with the prompt
    tokens: about 450 a prompt here), the first sample for viescore (two questions of about 800 and
    700 tokens), each with a random "edited" image. The other samples are not taught: the format
    carries over to them (the score digits are whatever the model says)."""
    from scorer_service.judge import ScoreInput

    rng = random.Random(seed)
    samples = [json.loads(line) for line in benchmark.read_text(encoding="utf-8").splitlines() if line.strip()]
    first_of_category = list({s["category"]: s for s in reversed(samples)}.values())[::-1]
    out = []
    for n, s in enumerate(first_of_category):
        source = (benchmark.parent / s["image"]).read_bytes()
        edited = noise_png(rng)
        variables = {"original_description": s.get("description", "")}
        answer = {"score": taught_score(s["id"]), "response": "Demo judge: a taught answer, not a judgement."}
        out.append((ScoreInput("lesson", source, edited, s["instruction"], s["category"], "seed-0-10", variables), False,
                    {"score": json.dumps(answer)}))
        if n == 0:
            sc = [taught_score(s["id"], "sc"), taught_score(s["id"], "oe")]
            pq = [taught_score(s["id"], "nat"), taught_score(s["id"], "art")]
            out.append((ScoreInput("lesson", source, edited, s["instruction"], s["category"], "viescore", variables), False,
                        {"SC": json.dumps({"score": sc, "reasoning": "Demo judge."}),
                         "PQ": json.dumps({"score": pq, "reasoning": "Demo judge."})}))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("base", type=Path, help="the tiny random judge (tools/make_tiny_qwen3_vl.py)")
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=2e-2)
    args = parser.parse_args(argv)

    import torch

    from tools.teach_judge import teach

    torch.set_num_threads(args.threads)
    t0 = time.monotonic()
    taught = lessons()
    loss = teach(args.base, args.outdir, taught, max_steps=args.max_steps, lr=args.lr, target_loss=0.005, freeze_vision=True,
                 group_by_question=True,
                 log=lambda text: print(text, flush=True))
    (args.outdir / "README.md").write_text(
        "# tiny-qwen3-vl-taught: a demo judge whose scores mean nothing\n\n"
        "Written by tools/make_taught_judge.py: the tiny random Qwen3-VL taught to answer the shipped protocols'\n"
        "formats with fixed numbers for the example benchmark. It does not look at the edits.\n", encoding="utf-8")
    print(f"wrote {args.outdir}: taught {len(taught)} lessons in {time.monotonic() - t0:.1f}s, final loss {loss:.4f}")
    if loss > 0.05:
        print(f"error: the judge did not learn its lines (loss {loss:.3f} > 0.05)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
