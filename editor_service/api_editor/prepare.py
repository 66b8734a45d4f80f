"""An edit request checked against what the provider takes (its profile) before anything is sent: the
instruction, the input images (from their headers), the size in the provider's vocabulary, steps,
guidance, the seed, editor.extras as the provider's options, partial images; InvalidInput naming the
field. `RequestChecks` is mixed into ApiEditor (editor.py), which holds the profile and the limits."""

from __future__ import annotations

import json
import math
import random
import time
from typing import Any

from editfleet_common.errors import InvalidInput

from ..checks import image_header_size
from ..edits import EditRequest, PreparedEdit


class RequestChecks:
    """The ApiEditor's `prepare` and the checks it makes (see the module docstring)."""

    def prepare(self, request: EditRequest, *, decode: bool = False) -> PreparedEdit:
        """Check a request against what the provider takes (the profile); InvalidInput naming the field.
        Nothing is decoded: each image is checked from its header, as the pipeline's prepare does."""
        started = time.perf_counter()
        p = self.profile
        instruction = (request.instruction or "").strip()
        if not instruction:
            raise InvalidInput("instruction: empty")
        limit = (p.get("prompt") or {}).get("max_chars")
        if limit and len(instruction) > limit:
            raise InvalidInput(f"instruction: {len(instruction)} characters, more than {p.name}'s limit of {limit}")
        for name, value, field_name in (("num_inference_steps", request.num_inference_steps, "steps"),
                                        ("guidance_scale", request.guidance_scale, "guidance"),
                                        ("negative_prompt", request.negative_prompt, "negative_prompt")):
            if value and not p.field(field_name):
                raise InvalidInput(f"{name}: {p.name}'s API takes no {field_name.replace('_', ' ')}; leave it unset")
        if request.guidance_scale is not None and not math.isfinite(request.guidance_scale):
            raise InvalidInput(f"guidance_scale: {request.guidance_scale} is not a finite number")
        inputs = request.inputs()
        if len(inputs) > self.max_images:
            raise InvalidInput(f"images: {len(inputs)} input images, but {p.name} takes at most {self.max_images} "
                               "per edit")
        images = p.get("images") or {}
        sizes = []
        for name, data in inputs:
            sizes.append(image_header_size(data, max_pixels=self.max_input_pixels, field=name))
            if images.get("max_bytes") and len(data) > images["max_bytes"]:
                raise InvalidInput(f"{name}: {len(data)} bytes, more than {p.name}'s limit of {images['max_bytes']}")
        fields: dict[str, Any] = {}
        size = self._size(request.width, request.height)
        if size is not None:
            fields["size"] = size
        if request.num_inference_steps:
            fields["steps"] = request.num_inference_steps
        if request.guidance_scale is not None:
            fields["guidance"] = float(request.guidance_scale)
        if request.negative_prompt:
            fields["negative_prompt"] = request.negative_prompt
        seed = request.seed if request.seed is not None else random.randrange(2**63)
        if self.takes_seed:
            fields["seed"] = seed
        options = self._options(request.extras)
        partial = self._partial_images(request.partial_images)
        kwargs = {"fields": fields, "options": options, "partial_images": partial}
        return PreparedEdit(request, [], seed if self.takes_seed else 0, request.num_inference_steps, kwargs,
                            time.perf_counter() - started, input_sizes=sizes)

    def _size(self, width: int, height: int) -> str | None:
        spec = self.profile.get("size") or {"mode": "none"}
        mode, name = spec.get("mode", "none"), self.profile.name
        if not width:
            return spec.get("auto")
        if mode == "none" or not self.profile.field("size"):
            raise InvalidInput(f"width x height: {name}'s API takes no size; leave editor.width/height at 0")
        if mode == "list":
            asked = f"{width}x{height}"
            if asked not in spec["values"]:
                raise InvalidInput(f"width x height: {asked} is not a size {name} takes ({', '.join(spec['values'])}"
                                   + (f", or 0x0 for {spec['auto']}" if spec.get("auto") else "") + ")")
            return asked
        if mode == "aspect_ratio":
            g = math.gcd(width, height)
            ratio = f"{width // g}:{height // g}"
            if ratio not in spec["values"]:
                raise InvalidInput(f"width x height: {width}x{height} has the aspect ratio {ratio}, which {name} does "
                                   f"not take ({', '.join(spec['values'])}); the provider picks the pixels")
            return ratio
        multiple = spec.get("multiple") or 1
        for side, value in (("width", width), ("height", height)):
            if value % multiple:
                raise InvalidInput(f"{side}: {value} is not a multiple of {multiple} ({name})")
            if spec.get("max_side") and value > spec["max_side"]:
                raise InvalidInput(f"{side}: {value} is more than {name}'s largest side, {spec['max_side']}")
        if spec.get("max_pixels") and width * height > spec["max_pixels"]:
            raise InvalidInput(f"width x height: {width}x{height} is more than {name}'s {spec['max_pixels']} pixels")
        if spec.get("max_aspect") and max(width, height) > spec["max_aspect"] * min(width, height):
            raise InvalidInput(f"width x height: {width}x{height}: {name} takes aspect ratios up to "
                               f"{spec['max_aspect']}:1")
        return f"{width}x{height}"

    def _options(self, extras: dict[str, str]) -> dict[str, Any]:
        """editor.extras (each a JSON value) checked against the options the provider takes."""
        allowed = self.profile.get("options") or {}
        out = {}
        for key, raw in sorted(extras.items()):
            if key not in allowed:
                raise InvalidInput(f"extras: {key} is not an option {self.profile.name} takes"
                                   + (f" ({', '.join(sorted(allowed))})" if allowed else " (it takes none)"))
            try:
                value = json.loads(raw)
            except ValueError:
                raise InvalidInput(f"extras[{key!r}]: not valid JSON") from None
            rule = allowed[key]
            ok = True
            if "values" in rule:
                ok = value in rule["values"]
            elif "int" in rule:
                ok = isinstance(value, int) and not isinstance(value, bool) and rule["int"][0] <= value <= rule["int"][1]
            elif "number" in rule:
                ok = (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
                      and rule["number"][0] <= value <= rule["number"][1])
            elif "string" in rule:
                ok = isinstance(value, str) and len(value) <= 256
            if not ok:
                raise InvalidInput(f"extras[{key!r}]: {value!r} is not a value {self.profile.name} takes ({rule})")
            out[key] = value
        return out

    def _partial_images(self, asked: int) -> int:
        if not asked:
            return self.partial_images
        stream = self.profile.get("stream") or {}
        if not stream:
            raise InvalidInput(f"partial_images: {self.profile.name}'s API does not stream partial images")
        if not 0 <= asked <= stream["partial_images_max"]:
            raise InvalidInput(f"partial_images: {asked} outside {self.profile.name}'s range "
                               f"[0, {stream['partial_images_max']}]")
        return asked
