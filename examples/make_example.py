"""Draw the example benchmark: 10 small scenes in five reasoning categories, made with PIL only,
so the images are license-clean and the benchmark can be rebuilt byte for byte.

    python examples/make_example.py [OUT_DIR]     (default: examples/benchmark)

Writes OUT_DIR/benchmark.jsonl (native format) and OUT_DIR/images/<id>.png.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 256
SKY, GRASS, WOOD = (170, 210, 240), (90, 160, 80), (150, 100, 60)


def canvas(background=SKY, ground=GRASS):
    img = Image.new("RGB", (SIZE, SIZE), background)
    draw = ImageDraw.Draw(img)
    if ground:
        draw.rectangle([0, 190, SIZE, SIZE], fill=ground)
    return img, draw


def ice_cube():
    img, d = canvas(ground=WOOD)
    d.polygon([(90, 110), (150, 100), (170, 130), (110, 140)], fill=(215, 240, 255), outline=(120, 160, 200))
    d.polygon([(110, 140), (170, 130), (170, 185), (110, 192)], fill=(190, 225, 250), outline=(120, 160, 200))
    d.polygon([(90, 110), (110, 140), (110, 192), (90, 165)], fill=(170, 210, 240), outline=(120, 160, 200))
    d.ellipse([200, 20, 240, 60], fill=(255, 220, 60))
    return img


def glass_on_table():
    img, d = canvas(background=(235, 230, 220), ground=None)
    d.rectangle([30, 150, 226, 165], fill=WOOD)
    d.rectangle([50, 165, 62, 250], fill=WOOD)
    d.rectangle([194, 165, 206, 250], fill=WOOD)
    d.rectangle([180, 95, 210, 150], outline=(120, 150, 170), width=3, fill=(220, 235, 245))
    return img


def tree_summer():
    img, d = canvas()
    d.rectangle([118, 120, 138, 195], fill=(110, 70, 40))
    d.ellipse([70, 40, 186, 140], fill=(40, 140, 50))
    return img


def riverside():
    img, d = canvas()
    d.polygon([(0, 215), (256, 200), (256, 230), (0, 245)], fill=(70, 120, 200))
    d.ellipse([20, 20, 70, 70], fill=(255, 220, 60))
    return img


def house():
    img, d = canvas()
    d.rectangle([70, 110, 186, 195], fill=(220, 200, 170))
    d.polygon([(60, 110), (128, 55), (196, 110)], fill=(170, 60, 50))
    d.rectangle([115, 150, 141, 195], fill=(110, 70, 40))
    return img


def dinner_table():
    img, d = canvas(background=(240, 235, 225), ground=None)
    d.ellipse([30, 120, 226, 200], fill=(250, 250, 250), outline=(200, 200, 200))
    d.ellipse([100, 140, 156, 180], fill=(255, 255, 255), outline=(170, 170, 170))
    return img


def candle():
    img, d = canvas(background=(60, 50, 70), ground=None)
    d.rectangle([110, 90, 146, 220], fill=(245, 240, 220))
    d.line([128, 90, 128, 78], fill=(30, 30, 30), width=2)
    d.ellipse([120, 55, 136, 80], fill=(255, 190, 60))
    return img


def balloon():
    img, d = canvas()
    d.ellipse([90, 40, 166, 130], fill=(220, 50, 60))
    d.line([128, 130, 128, 200], fill=(60, 60, 60), width=2)
    return img


def shapes_row():
    img, d = canvas(background=(250, 250, 250), ground=None)
    d.ellipse([20, 100, 60, 140], fill=(60, 60, 200))
    d.ellipse([90, 80, 170, 160], fill=(60, 170, 60))
    d.ellipse([195, 105, 225, 135], fill=(230, 180, 40))
    return img


def cup_and_square():
    img, d = canvas(background=(250, 250, 250), ground=None)
    d.rectangle([40, 110, 90, 170], fill=(230, 130, 40))
    d.rectangle([150, 100, 210, 160], fill=(40, 80, 220))
    return img


SAMPLES = [
    ("phys-01", "physical", ice_cube, "An ice cube on a wooden table in bright sunshine.",
     "Show the ice cube after it has been left in the hot sun for an hour."),
    ("phys-02", "physical", glass_on_table, "A glass standing at the very edge of a wooden table.",
     "Show the glass a moment after it is pushed off the table."),
    ("env-01", "environmental", tree_summer, "A green leafy tree on a summer meadow.",
     "Show the same tree in the middle of winter."),
    ("env-02", "environmental", riverside, "A calm river under a sunny sky.",
     "Show the river after a week of heavy rain."),
    ("cult-01", "cultural", house, "A small house with a red roof.",
     "Decorate the house for the Lunar New Year."),
    ("cult-02", "cultural", dinner_table, "An empty white plate on a round table.",
     "Set the table for a traditional Thanksgiving dinner."),
    ("cause-01", "causal", candle, "A tall lit candle in a dark room.",
     "Show the candle after it has burned for three hours."),
    ("cause-02", "causal", balloon, "A red balloon on a string above the grass.",
     "Show what happens right after the balloon is pricked with a pin."),
    ("ref-01", "referential", shapes_row, "Three circles of different sizes in a row.",
     "Make the largest circle red."),
    ("ref-02", "referential", cup_and_square, "An orange square to the left of a blue square.",
     "Remove the shape that is to the left of the blue square."),
]


def main(out_dir: Path) -> None:
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    lines = []
    for sample_id, category, draw, description, instruction in SAMPLES:
        draw().save(images / f"{sample_id}.png", optimize=True)
        lines.append(
            json.dumps(
                {
                    "id": sample_id,
                    "category": category,
                    "image": f"images/{sample_id}.png",
                    "instruction": instruction,
                    "description": description,
                },
                ensure_ascii=False,
            )
        )
    (out_dir / "benchmark.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(lines)} samples to {out_dir / 'benchmark.jsonl'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "benchmark")
