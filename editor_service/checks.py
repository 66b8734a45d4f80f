"""The checks a request passes before the editor admits it: each small and named, each raising
InvalidInput (INVALID_ARGUMENT) that names the field and the limit. They need no model and decode no
pixels, so `EditPipeline.prepare` runs them all in the handler's thread before the request takes a
queue slot; the images are decoded by the worker, when the edit's turn comes (a queued edit is held
encoded, and a refused one never costs a decode).

- sample_id: at most --max-id-chars characters (`check_sample_id`, in the server's admission);
- input images: the size each one declares, read from its header (`image_header_size`);
- guidance: a finite number in GUIDANCE_RANGE (NaN used to turn true CFG off silently, +inf made NaN
  pixels);
- output size: multiples the pipeline needs, the pixel bound, and an aspect ratio of at most
  MAX_ASPECT_RATIO (Qwen-Image's rotary table has 4096 positions: 100000x16 failed deep in the
  transformer);
- extras: JSON of finite numbers (no NaN, Infinity or 1e999), integers in int64, nested at most
  MAX_EXTRAS_DEPTH deep (100k levels used to end in a RecursionError);
- a step schedule given in extras (`sigmas`, `timesteps`): its length is the number of denoise steps
  that run, so it is what the step range bounds and what the result records.
"""

from __future__ import annotations

import json
import math
from typing import Any

from editfleet_common.errors import InvalidInput
from editfleet_common.images import header_size

# The generic guidance scale (true_cfg_scale / guidance_scale). True CFG is off at or below 1; models
# are used between about 1 and 10, so 100 leaves room without admitting a scale that only overflows.
GUIDANCE_RANGE = (0.0, 100.0)
# The longer side of an asked output size at most this many times the shorter one. Every size the
# models are trained and documented for is within 4:1; the pixel bound (--max-input-pixels) then keeps
# each side at most sqrt(16 x max pixels) (25298 at 40M: 1581 Qwen-Image tokens, inside its table).
MAX_ASPECT_RATIO = 16
# The longest sample_id a request may carry, in characters (--max-id-chars; the scorer's default too):
# an id is a label for logs and results, and a 1 MB one wrote a 1 MB log line per request.
DEFAULT_MAX_ID_CHARS = 512
# Nesting of one extras value ({"a": [1]} is 2 deep); pipeline arguments need 2 or 3.
MAX_EXTRAS_DEPTH = 16
# Call arguments that carry the step schedule itself: when given, their length is the step count.
STEP_LIST_ARGUMENTS = ("sigmas", "timesteps")
# Integers an extras value may hold: what a pipeline argument (an int64 or a float) can take.
INT64_RANGE = (-(2**63), 2**63 - 1)


def check_finite(field: str, value: float) -> None:
    if not math.isfinite(value):
        raise InvalidInput(f"{field}: {value} is not a finite number")


def check_guidance(field: str, value: float) -> None:
    check_finite(field, value)
    low, high = GUIDANCE_RANGE
    if not low <= value <= high:
        raise InvalidInput(f"{field}: {value} outside the allowed range [{low:g}, {high:g}]")


def check_step_count(field: str, steps: int, low: int, high: int, *, fewest: int = 1, schedule: bool = False,
                     pipeline: str = "the pipeline") -> None:
    """`steps` within [low, high] (--min-steps, --max-steps); `schedule`: counted from a step schedule's
    values; `fewest`: the fewest `pipeline`'s scheduler can run, said when that is why."""
    if low <= steps <= high:
        return
    counted = f"{steps} values, one denoise step each: " if schedule else ""
    why = f" ({pipeline}'s scheduler cannot run fewer than {fewest})" if steps < fewest else ""
    raise InvalidInput(f"{field}: {counted}{steps} outside the allowed range [{low}, {high}]{why}")


def check_output_size(width: int, height: int, *, multiple: int, max_pixels: int) -> None:
    """An asked output size (0 x 0: the pipeline's own choice) that the pipeline can make."""
    for name, value in (("width", width), ("height", height)):
        if value and value % multiple:
            raise InvalidInput(f"{name}: {value} is not a multiple of {multiple} for this pipeline")
    if bool(width) != bool(height):
        raise InvalidInput("width/height: give both or neither")
    if not width:
        return
    if width * height > max_pixels:
        raise InvalidInput(f"width x height: {width}x{height} exceeds the limit of {max_pixels} pixels")
    longer, shorter = ("width", "height") if width >= height else ("height", "width")
    sides = {"width": width, "height": height}
    if sides[longer] > MAX_ASPECT_RATIO * sides[shorter]:
        raise InvalidInput(
            f"{longer}: {sides[longer]} is more than {MAX_ASPECT_RATIO} times {shorter} {sides[shorter]} "
            f"(aspect ratio limit {MAX_ASPECT_RATIO}:1)"
        )


def check_sample_id(sample_id: str, max_chars: int) -> None:
    """sample_id within --max-id-chars (never cut: the result carries it back as sent)."""
    if len(sample_id) > max_chars:
        raise InvalidInput(f"sample_id: {len(sample_id)} characters exceed the limit of {max_chars} (--max-id-chars)")


def image_header_size(data: bytes, *, max_pixels: int, field: str) -> tuple[int, int]:
    """The size an encoded image declares, read from its header only (no pixel is decoded): refuses
    empty data, unknown formats, zero sizes and more than `max_pixels` (--max-input-pixels), as
    `editfleet_common.images.decode_image` does when it decodes it later (the same check, one copy)."""
    return header_size(data, max_pixels=max_pixels, field=field)


def decode_extra(key: str, raw: str) -> Any:
    """One extras value from its JSON: finite numbers, int64 integers, at most MAX_EXTRAS_DEPTH deep."""
    field = f"extras[{key!r}]"

    def finite_float(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):  # 1e999
            raise InvalidInput(f"{field}: {text} is not a finite number")
        return value

    def no_constant(text: str):  # NaN, Infinity, -Infinity: Python's json takes them, JSON does not
        raise InvalidInput(f"{field}: {text} is not a finite number")

    def int64(text: str) -> int:
        value = int(text)
        if not INT64_RANGE[0] <= value <= INT64_RANGE[1]:
            shown = text if len(text) <= 40 else text[:40] + "..."
            raise InvalidInput(f"{field}: {shown} outside the 64-bit integer range")
        return value

    try:
        value = json.loads(raw, parse_float=finite_float, parse_constant=no_constant, parse_int=int64)
    except RecursionError:
        raise InvalidInput(f"{field}: nested deeper than the limit of {MAX_EXTRAS_DEPTH} levels") from None
    except ValueError as exc:
        raise InvalidInput(f"{field}: not valid JSON ({exc})") from None
    if nesting_depth(value) > MAX_EXTRAS_DEPTH:
        raise InvalidInput(f"{field}: nested deeper than the limit of {MAX_EXTRAS_DEPTH} levels")
    return value


def nesting_depth(value: Any) -> int:
    """How deep lists and objects nest in a JSON value (a scalar: 0), walked without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def schedule_steps(extras: dict[str, Any]) -> tuple[str, int] | None:
    """(argument, denoise steps) of a step schedule given in extras, or None: a non-empty list of
    finite numbers whose length is the number of steps the pipeline runs (it overrides
    num_inference_steps)."""
    given = [name for name in STEP_LIST_ARGUMENTS if extras.get(name) is not None]
    if not given:
        return None
    if len(given) > 1:
        raise InvalidInput(f"extras: {' and '.join(given)} both set; give one step schedule")
    name = given[0]
    schedule = extras[name]
    if not isinstance(schedule, list) or not schedule or not all(is_number(v) for v in schedule):
        raise InvalidInput(f"extras[{name!r}]: need a non-empty list of numbers (one per denoise step)")
    return name, len(schedule)
