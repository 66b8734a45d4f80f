"""The demo judge: the tiny random Qwen3-VL (tools/make_tiny_qwen3_vl.py) taught, in seconds, to
answer every shipped protocol (suites/seed/seed-0-10.yaml, suites/gedit/viescore.yaml) in its format, so
that `make run` shows parsed scores, batch averages and the category table.

    python tools/make_taught_judge.py models/tiny-qwen3-vl models/tiny-qwen3-vl-taught

ITS SCORES MEAN NOTHING. It was taught one answer per protocol (seed-0-10: 7; viescore: SC [8, 6],
PQ [7, 9], so O = sqrt(6 * 7)) and gives about that whatever the edited image shows; only the
expected score (the probability-weighted digits) moves a little from sample to sample. It exists to show the path that real
scores take (parsing, expected score, summary, report, compare), not to judge anything.

Lessons: see lessons(); the vision tower stays as it is. A prompt far from the taught ones may get
an answer that does not parse (recorded as PARSE_FAILED, as ever). Deterministic (fixed seeds).
"""

from __future__ import annotations

import argparse
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


# What it answers, whatever it is shown.
SEED_ANSWER = {"score": 7, "response": "Demo judge: a taught answer, not a judgement."}
VIESCORE_SC = {"score": [8, 6], "reasoning": "Demo judge."}
VIESCORE_PQ = {"score": [7, 9], "reasoning": "Demo judge."}


def noise_png(rng: random.Random, size: int = 64) -> bytes:
    from PIL import Image

    img = Image.frombytes("RGB", (size, size), bytes(rng.randrange(256) for _ in range(size * size * 3)))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def lessons(benchmark: Path = EXAMPLE, seed: int = 0):
    """One answer per protocol, taught on one example prompt per category for seed-0-10 (two were
    not enough once the merged protocols changed the prompts: 6 of 10 parsed) and one for viescore, each with a random "edited" image. The answers do not depend on
    the prompt, so they carry over to other prompts: every example prompt for seed-0-10; for
    viescore most SC answers on other prompts do not parse (PARSE_FAILED, with the raw reply), and
    teaching it a second sample did not change that but cost seed-0-10 two prompts. Teaching time
    grows with the prompt tokens: about 450 for a seed-0-10 prompt, 800 and 700 for viescore's two
    questions."""
    from scorer_service.judge import ScoreInput

    rng = random.Random(seed)
    samples = [json.loads(line) for line in benchmark.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    firsts = list({s["category"]: s for s in reversed(samples)}.values())[::-1]  # the first sample of each category
    for n, s in enumerate(firsts):
        source = (benchmark.parent / s["image"]).read_bytes()
        edited = noise_png(rng)
        variables = {"original_description": s.get("description", "")}
        out.append((ScoreInput("lesson", source, edited, s["instruction"], s["category"], "seed-0-10", variables), False,
                    {"score": json.dumps(SEED_ANSWER)}))
        if n == 0:
            out.append((ScoreInput("lesson", source, edited, s["instruction"], s["category"], "viescore", variables), False,
                        {"SC": json.dumps(VIESCORE_SC), "PQ": json.dumps(VIESCORE_PQ)}))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("base", type=Path, help="the tiny random judge (tools/make_tiny_qwen3_vl.py)")
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1e-2)
    args = parser.parse_args(argv)

    import torch

    from tools.teach_judge import teach

    torch.set_num_threads(args.threads)
    t0 = time.monotonic()
    taught = lessons()
    loss = teach(args.base, args.outdir, taught, max_steps=args.max_steps, lr=args.lr, target_loss=0.01, freeze_vision=True,
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
