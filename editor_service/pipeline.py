"""The editor's core: one diffusers edit pipeline on one device, no gRPC.

`EditPipeline.load()` loads any diffusers image-edit pipeline (`DiffusionPipeline.from_pretrained`)
or, with ``load_format="dummy"``, builds one from configs with random weights (dummy_load.py), then fuses LoRA
adapters and applies a scheduler override (adapters.py). `edit()` maps a generic `EditRequest` (one
or more input images) onto the pipeline's own ``__call__`` signature, reports progress through
``callback_on_step_end`` and stops within a step when ``should_stop()`` turns true. `prepare()` checks
a request (checks.py) reading only its images' headers; the images are decoded when the edit runs.

Input images: a pipeline takes one, except those in MULTI_IMAGE_PIPELINES, which take a list
(QwenImageEditPlusPipeline: "Picture 1", "Picture 2", ... in the prompt; its output size follows the
*last* image's aspect ratio at about 1024x1024 unless the request sets width and height).
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import secrets
import threading
import time
import warnings
from dataclasses import asdict
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from editfleet_common.identity import ModelIdentity
from editfleet_common.dtypes import resolve_dtype_name
from editfleet_common.model_files import hash_files, model_snapshot
from editfleet_common.errors import Cancelled, InvalidInput, TooLarge
from editfleet_common.images import DEFAULT_MAX_PIXELS, decode_image, encode_png

from .checks import (
    check_guidance,
    check_output_size,
    check_step_count,
    decode_extra,
    image_header_size,
    is_number,
    schedule_steps,
)
from .compiler_startup import start_compiler_preload
from .dummy_load import build_dummy_pipeline, resolve_config_dir
from .edits import EditDefaults, EditOutput, EditRequest, EditTimings, PreparedEdit
from .previews import preview_decoder, preview_steps
from .warm_up import WarmUp

log = logging.getLogger(__name__)

# Pipelines whose `image` takes a list of input images, and how many an edit may carry by default
# (Qwen-Image-Edit-2509/2511's model cards: best with 1 to 3 images); --max-images changes it.
MULTI_IMAGE_PIPELINES = {"QwenImageEditPlusPipeline": 3}

LOAD_FORMATS = ("auto", "dummy")
MAX_SEED = 2**63 - 1  # fits every consumer (JSON, int64 columns) and torch.Generator.manual_seed

# Partial images one edit may ask for (each is one VAE decode of the current latents; previews.py)
MAX_PARTIAL_IMAGES = 16

# Arguments the wrapper sets itself; a request's extras may not override them.
_RESERVED_ARGUMENTS = {
    "image",
    "prompt",
    "negative_prompt",
    "num_inference_steps",
    "width",
    "height",
    "generator",
    "num_images_per_prompt",
    "output_type",
    "return_dict",
    "callback_on_step_end",
    "callback_on_step_end_tensor_inputs",
    "callback",
    "callback_steps",
}


class _StopDenoising(Exception):
    """Raised from the step callback to leave the denoise loop at once (skipping the VAE decode)."""


OnStep = Callable[[int, int, float], None]


class EditPipeline:
    """A loaded pipeline plus everything needed to run generic edit requests on it, one at a time."""

    def __init__(
        self,
        pipe,
        identity: ModelIdentity,
        *,
        defaults: EditDefaults | None = None,
        max_input_pixels: int = DEFAULT_MAX_PIXELS,
        max_images: int | None = None,
    ):
        self.pipe = pipe
        self.identity = identity
        self.max_input_pixels = max_input_pixels
        self.max_images = resolve_max_images(type(pipe).__name__, max_images)
        self.call_parameters = list(inspect.signature(pipe.__call__).parameters)
        self.guidance_parameter = self._guidance_parameter()
        # the fewest steps the scheduler makes a finite schedule for (2 for Qwen-Image's): fewer are refused
        self.fewest_steps = fewest_runnable_steps(getattr(pipe, "scheduler", None))
        self.defaults = defaults or self._pipeline_defaults()
        if not 1 <= self.defaults.min_steps <= self.defaults.num_inference_steps <= self.defaults.max_steps:
            raise ValueError(
                f"default steps {self.defaults.num_inference_steps} outside "
                f"[{self.defaults.min_steps}, {self.defaults.max_steps}]"
            )
        try:
            self._check_min_steps(self.defaults.min_steps, "min_steps")
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None
        self.size_multiple = self._size_multiple()
        self.preview = preview_decoder(pipe)  # None: partial images cannot be decoded for this pipeline
        self.warming = WarmUp()  # how `warm_up` runs (`load` gives it the compile cache)
        self.start_timings: dict[str, float] = {}  # the compiler preload's, when `load` ran one
        self._lock = threading.Lock()  # one edit at a time: the pipeline object holds per-call state
        self._denoise_started: float | None = None
        denoiser = getattr(pipe, "transformer", None) or getattr(pipe, "unet", None)
        if denoiser is not None:
            # The first denoiser forward marks the start of the denoise loop (text encoding and
            # VAE encoding come before it).
            denoiser.register_forward_pre_hook(self._on_denoiser_forward)
        pipe.set_progress_bar_config(disable=True)

    # ---------------------------------------------------------------- loading

    @classmethod
    def load(
        cls,
        model: str,
        *,
        device: str = "cpu",
        dtype: str = "auto",
        load_format: str = "auto",
        revision: str | None = None,
        threads: int | None = None,
        defaults: EditDefaults | None = None,
        max_input_pixels: int = DEFAULT_MAX_PIXELS,
        speed_mode: str = "default",
        forecast_interval: int = 3,
        trust_remote_code: bool = False,
        compile_cache: str | None = None,
        seed: int = 0,
        loras: list | None = None,
        scheduler: dict | None = None,
        max_images: int | None = None,
    ) -> "EditPipeline":
        """loras: adapters.LoraSpec list, fused at load; scheduler: a scheduler config override."""
        from .adapters import apply_loras, apply_scheduler
        from .speed import apply_speed_mode

        if threads:
            torch.set_num_threads(threads)
        if load_format not in LOAD_FORMATS:
            raise ValueError(f"unknown load format {load_format!r}; choose one of {', '.join(LOAD_FORMATS)}")
        torch_device = torch.device(device)
        dtype_name = resolve_dtype_name(dtype, str(torch_device))
        torch_dtype = getattr(torch, dtype_name)
        started = time.perf_counter()
        preload = start_compiler_preload(model, load_format=load_format, revision=revision, speed_mode=speed_mode,
                                         device=torch_device)
        if load_format == "dummy":
            config_dir = resolve_config_dir(model)
            pipe = build_dummy_pipeline(config_dir, torch_device, torch_dtype, seed=seed)
            revision_used = ""
            content_hash = "dummy:" + hash_files(config_dir, config_only=True)
        else:
            from diffusers import DiffusionPipeline
            from diffusers.utils import logging as diffusers_logging

            diffusers_logging.disable_progress_bar()  # per-component bars are noise in a service log
            # Said explicitly, not left to library defaults: no code from the model folder runs
            # unless the user opted in (--trust-remote-code).
            pipe = DiffusionPipeline.from_pretrained(model, dtype=torch_dtype, revision=revision,
                                                     trust_remote_code=trust_remote_code)
            pipe.to(torch_device)
            revision_used, content_hash = model_revision_and_hash(model, revision)
        log.info("loaded %s (%s) in %.1fs", model, type(pipe).__name__, time.perf_counter() - started)
        start_timings = preload.wait() if preload is not None else {}
        resolve_max_images(type(pipe).__name__, max_images)  # refused before any adapter work
        # Adapters are fused into the weights before the speed mode compiles or quantizes them.
        adapted = {**apply_scheduler(pipe, scheduler), **apply_loras(pipe, list(loras or []))}
        forecast = None
        if speed_mode == "fast":
            from .forecast import ForecastConfig

            forecast = ForecastConfig(interval=forecast_interval)
        runtime = {**apply_speed_mode(pipe, speed_mode, forecast=forecast), **adapted,
                   **software_and_accelerator(torch_device)}
        identity = ModelIdentity(
            model=model,
            revision=revision_used,
            content_hash=content_hash,
            model_class=type(pipe).__name__,
            dtype=dtype_name,
            device=str(torch_device),
            load_format=load_format,
            runtime=runtime,
        )
        loaded = cls(pipe, identity, defaults=defaults, max_input_pixels=max_input_pixels, max_images=max_images)
        loaded.start_timings = start_timings
        if compile_cache and "compile" in runtime:
            from .compile_cache import CompileCache, cache_key_fields

            loaded.warming.compile_cache = CompileCache(compile_cache, cache_key_fields(identity, torch_device))
        return loaded

    def _guidance_parameter(self) -> str | None:
        """Which call argument the generic guidance scale drives.

        Guidance-distilled models (FLUX Kontext: the transformer embeds the guidance) take
        ``guidance_scale``; models with true classifier-free guidance (Qwen-Image-Edit) take
        ``true_cfg_scale`` together with a negative prompt.
        """
        params = self.call_parameters
        denoiser = getattr(self.pipe, "transformer", None)
        distilled = bool(getattr(getattr(denoiser, "config", None), "guidance_embeds", False))
        if distilled and "guidance_scale" in params:
            return "guidance_scale"
        if "true_cfg_scale" in params:
            return "true_cfg_scale"
        if "guidance_scale" in params:
            return "guidance_scale"
        return None

    def _pipeline_defaults(self) -> EditDefaults:
        signature = inspect.signature(self.pipe.__call__).parameters
        steps = signature.get("num_inference_steps")
        guidance = signature.get(self.guidance_parameter) if self.guidance_parameter else None
        defaults = EditDefaults(min_steps=self.fewest_steps)
        if steps is not None and isinstance(steps.default, int):
            defaults.num_inference_steps = steps.default
        if guidance is not None and isinstance(guidance.default, (int, float)):
            defaults.guidance_scale = float(guidance.default)
        # True CFG needs a negative prompt to be on at all; " " is the model card's choice.
        defaults.negative_prompt = " " if self.guidance_parameter == "true_cfg_scale" else ""
        return defaults

    def set_step_range(self, min_steps: int | None, max_steps: int, default_steps: int | None = None) -> None:
        """The accepted step range and default (--min-steps, --max-steps, --default-steps): min_steps None
        is the fewest the pipeline can run; a minimum below that is refused (InvalidInput naming the
        flag), as is a range it cannot run at all. The pipeline's own default is brought into the range."""
        low = self.fewest_steps if min_steps is None else min_steps
        self._check_min_steps(low, "--min-steps")
        if low > max_steps:
            if min_steps is None:
                raise InvalidInput(f"--max-steps {max_steps}: below the fewest steps {self.identity.model_class} "
                                   f"can run ({self.fewest_steps})")
            raise InvalidInput(f"--min-steps {low} / --max-steps {max_steps}: need min <= max")
        if default_steps is not None and not low <= default_steps <= max_steps:
            raise InvalidInput(f"--default-steps {default_steps} outside [{low}, {max_steps}]")
        defaults = self.defaults
        defaults.min_steps, defaults.max_steps = low, max_steps
        steps = default_steps if default_steps is not None else defaults.num_inference_steps
        defaults.num_inference_steps = min(max(steps, low), max_steps)

    def _check_min_steps(self, min_steps: int, name: str) -> None:
        if min_steps < self.fewest_steps:
            raise InvalidInput(
                f"{name} {min_steps}: {self.identity.model_class}'s scheduler cannot run fewer than "
                f"{self.fewest_steps} steps (its {min_steps}-step schedule is not finite: every such edit would "
                f"fail); use {self.fewest_steps} or more"
            )

    def _size_multiple(self) -> int:
        processor = getattr(self.pipe, "image_processor", None)
        factor = getattr(getattr(processor, "config", None), "vae_scale_factor", None)
        return int(factor or 8)

    # ---------------------------------------------------------------- requests

    def prepare(self, request: EditRequest, *, decode: bool = True) -> PreparedEdit:
        """Validate a request and work out the pipeline call; raises InvalidInput naming the field.

        Every check reads no more than each image's header (checks.py); decode=False leaves the images
        encoded (the server admits the edit first; `edit` decodes them when it runs)."""
        started = time.perf_counter()
        instruction = (request.instruction or "").strip()
        if not instruction:
            raise InvalidInput("instruction: empty")
        self._check_text_length("instruction", instruction)
        low, high = self.defaults.min_steps, self.defaults.max_steps
        steps = request.num_inference_steps or self.defaults.num_inference_steps
        step_range = dict(fewest=self.fewest_steps, pipeline=self.identity.model_class)
        check_step_count("num_inference_steps", steps, low, high, **step_range)
        check_output_size(request.width, request.height, multiple=self.size_multiple, max_pixels=self.max_input_pixels)
        if request.seed is not None and not 0 <= request.seed <= 2**64 - 1:
            raise InvalidInput(f"seed: {request.seed} is not an unsigned 64-bit integer")
        if request.guidance_scale is not None:
            check_guidance("guidance_scale", request.guidance_scale)
        extras = self._decode_extras(request.extras)
        schedule = schedule_steps(extras)
        if schedule is not None:  # the pipeline runs one step per value, whatever num_inference_steps says
            name, steps = schedule
            check_step_count(f"extras[{name!r}]", steps, low, high, schedule=True, **step_range)
        inputs = request.inputs()
        if len(inputs) > self.max_images:
            raise InvalidInput(
                f"images: {len(inputs)} input images, but {self.identity.model_class} takes at most "
                f"{self.max_images} per edit" + ("" if self.max_images > 1 else " (a single-image pipeline)")
            )
        sizes = [image_header_size(data, max_pixels=self.max_input_pixels, field=name) for name, data in inputs]
        previews = self._preview_steps(request.partial_images, steps)

        seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
        kwargs: dict[str, Any] = {"prompt": instruction, "num_inference_steps": steps}
        if request.width:
            kwargs["width"], kwargs["height"] = request.width, request.height
            if "max_area" in self.call_parameters and "max_area" not in extras:
                # FLUX Kontext scales width x height to max_area (default 1024^2), keeping only the
                # aspect ratio: asked for a size, it gets that area
                kwargs["max_area"] = request.width * request.height
        if self.guidance_parameter is not None:
            scale = request.guidance_scale if request.guidance_scale is not None else self.defaults.guidance_scale
            kwargs[self.guidance_parameter] = float(scale)
        negative = request.negative_prompt if request.negative_prompt is not None else self.defaults.negative_prompt
        if "negative_prompt" in self.call_parameters and negative:
            self._check_text_length("negative_prompt", negative)
            kwargs["negative_prompt"] = negative
        elif request.negative_prompt:
            raise InvalidInput(f"negative_prompt: {self.identity.model_class} takes no negative prompt")
        kwargs.update(extras)
        prepared = PreparedEdit(request, [], seed, steps, kwargs, time.perf_counter() - started, input_sizes=sizes,
                                preview_steps=previews)
        return self.decode_inputs(prepared) if decode else prepared

    def _preview_steps(self, count: int, steps: int) -> tuple[int, ...]:
        if not count:
            return ()
        if not 0 <= count <= MAX_PARTIAL_IMAGES:
            raise InvalidInput(f"partial_images: {count} outside the allowed range [0, {MAX_PARTIAL_IMAGES}]")
        if self.preview is None:
            raise InvalidInput(f"partial_images: {self.identity.model_class} has no preview decoder "
                               "(its latents cannot be decoded mid-denoise here); ask for 0")
        return preview_steps(steps, count)

    def decode_inputs(self, prepared: PreparedEdit) -> PreparedEdit:
        """Decode the input images of a prepared edit (once) into its call; InvalidInput naming the image."""
        if prepared.decoded:
            return prepared
        started = time.perf_counter()
        images = [decode_image(data, max_pixels=self.max_input_pixels, field=name)
                  for name, data in prepared.request.inputs()]
        prepared.images = images
        prepared.kwargs = {"image": images[0] if len(images) == 1 else images, **prepared.kwargs}
        prepared.decode_s += time.perf_counter() - started
        return prepared

    def _check_text_length(self, field: str, text: str) -> None:
        """Refuse text longer than the pipeline's max_sequence_length: past it Qwen-Image-Edit does
        not truncate but fails deep in the transformer (its rotary position table is fixed)."""
        signature = inspect.signature(self.pipe.__call__).parameters.get("max_sequence_length")
        limit = signature.default if signature is not None and isinstance(signature.default, int) else None
        tokenizer = getattr(self.pipe, "tokenizer", None)
        if not limit or tokenizer is None or len(text) <= limit:  # a token is at least one character
            return
        count = len(tokenizer(text, add_special_tokens=False).input_ids)
        if count > limit:
            raise InvalidInput(f"{field}: {count} tokens, more than this pipeline's limit of {limit}")

    def _decode_extras(self, extras: dict[str, str]) -> dict[str, Any]:
        unknown = sorted(k for k in extras if k not in self.call_parameters)
        if unknown:
            raise InvalidInput(
                f"extras: unknown argument(s) {', '.join(unknown)} for {self.identity.model_class}; "
                f"it takes {', '.join(self.call_parameters)}"
            )
        reserved = sorted(k for k in extras if k in _RESERVED_ARGUMENTS or k == self.guidance_parameter)
        tensors = sorted(k for k in extras if k.endswith(("embeds", "embeds_mask", "latents")))
        if reserved or tensors:
            raise InvalidInput(
                f"extras: {', '.join(reserved + tensors)} cannot be set through extras "
                "(use the request's own fields; tensors cannot be passed)"
            )
        decoded = {key: decode_extra(key, raw) for key, raw in extras.items()}
        for key, value in decoded.items():
            if key.endswith(("guidance_scale", "cfg_scale")) and is_number(value):
                check_guidance(f"extras[{key!r}]", float(value))
            area_ok = is_number(value) and 1 <= value <= self.max_input_pixels
            if key == "max_area" and value is not None and not area_ok:
                # FLUX Kontext's output area: the same bound as an asked width x height
                raise InvalidInput(
                    f"extras['max_area']: {value!r} outside the allowed range [1, {self.max_input_pixels}]"
                )
        return decoded

    def edit(
        self,
        request: EditRequest | PreparedEdit,
        on_step: OnStep | None = None,
        should_stop: Callable[[], bool] | None = None,
        *,
        queue_s: float = 0.0,
        encode: bool = True,
        last_step: int | None = None,
        on_preview: Callable[[int, Image.Image], None] | None = None,
    ) -> EditOutput:
        """Run one edit. `on_step(step, total, elapsed_s)` after each denoise step (1-based);
        `should_stop()` is polled after each step and turns the edit into `Cancelled`;
        `on_preview(step, image)` after each of the prepared edit's `preview_steps`. Warm-up only:
        encode=False makes no PNG (`image_png` empty); `last_step=k` runs the first k of the
        scheduled steps, then decodes (the schedule stays the asked one's)."""
        prepared = request if isinstance(request, PreparedEdit) else self.prepare(request)
        with self._lock:
            return self._run(prepared, on_step, should_stop, queue_s, encode, last_step, on_preview)

    def _run(self, prepared: PreparedEdit, on_step, should_stop, queue_s: float, encode: bool = True,
             last_step: int | None = None, on_preview=None) -> EditOutput:
        if should_stop is not None and should_stop():
            raise Cancelled("cancelled before the edit started")
        self.decode_inputs(prepared)  # an admitted edit waits encoded; decoded when its turn comes
        pipe = self.pipe
        generator = torch.Generator("cpu").manual_seed(prepared.seed)  # same noise on any device
        started = time.perf_counter()
        last_step_at = [started]
        steps_done = [0]
        self._denoise_started = None

        def callback(pipeline, index: int, _timestep, callback_kwargs):
            now = time.perf_counter()
            last_step_at[0] = now
            steps_done[0] = index + 1
            total = int(getattr(pipeline, "_num_timesteps", None) or prepared.steps)
            if on_preview is not None and index + 1 in prepared.preview_steps and "latents" in callback_kwargs:
                on_preview(index + 1, self.preview(callback_kwargs["latents"], *self._output_size_hint(prepared)))
            if on_step is not None:
                on_step(index + 1, total, now - started)
            if should_stop is not None and should_stop():
                # The pipeline's own flag skips the remaining steps; raising also skips the
                # VAE decode of a result nobody will read.
                pipeline._interrupt = True
                raise _StopDenoising()
            if last_step is not None and index + 1 >= last_step:
                pipeline._interrupt = True  # the pipeline skips the remaining steps, then decodes
            return callback_kwargs

        # Cache hooks keep state across denoise steps; diffusers resets it only at the end of a call,
        # so a cancelled or failed edit would leave it to the next one (same reset, done first).
        for component in pipe.components.values():
            if hasattr(component, "_reset_stateful_cache"):
                component._reset_stateful_cache()
        # numpy output: non-finite pixels are caught here instead of silently becoming black
        call = dict(prepared.kwargs, generator=generator, callback_on_step_end=callback, output_type="np")
        try:
            # inference_mode, not the pipeline's own no_grad: no version counters or autograd
            # bookkeeping on any tensor, less host work per compiled block call
            with torch.inference_mode():
                result = pipe(**call)
        except _StopDenoising:
            raise Cancelled(f"cancelled after {steps_done[0]} of {prepared.steps} denoise steps") from None
        except ValueError as exc:
            # diffusers validates call arguments with ValueError
            raise InvalidInput(f"pipeline rejected the arguments: {exc}") from None
        except TypeError as exc:
            if not prepared.request.extras:
                raise
            raise InvalidInput(f"pipeline rejected the arguments (check extras): {exc}") from None
        except torch.OutOfMemoryError as exc:
            if pipe.device.type == "cuda":
                torch.cuda.empty_cache()  # the next (smaller) request must not inherit the fragments
            first_line = str(exc).splitlines()[0] if str(exc) else ""
            raise TooLarge(f"out of memory on {pipe.device} for this request: {first_line}") from None
        finished = time.perf_counter()
        pixels = result.images[0]
        if not np.isfinite(pixels).all():
            # The same settings fail the same way every time (the seed included): a permanent refusal of
            # these settings, not a server fault that another attempt could get past.
            raise InvalidInput(
                f"the pipeline produced non-finite pixels with these settings ({self.describe_settings(prepared)}): "
                "a step schedule its scheduler cannot run (e.g. a last sigma of 1 with Qwen-Image's "
                "shift_terminal) or an overflow at this guidance or dtype"
            )
        image = Image.fromarray((np.clip(pixels, 0.0, 1.0) * 255).round().astype(np.uint8))
        if prepared.request.width and image.size != (prepared.request.width, prepared.request.height):
            raise RuntimeError(
                f"pipeline produced {image.size[0]}x{image.size[1]}, asked "
                f"{prepared.request.width}x{prepared.request.height}"
            )
        encode_started = time.perf_counter()
        png = encode_png(image) if encode else b""  # a 1024² PNG: ~0.3 s of CPU
        encode_s = time.perf_counter() - encode_started + prepared.decode_s
        denoise_s = last_step_at[0] - (self._denoise_started or started)
        return EditOutput(
            sample_id=prepared.request.sample_id,
            image_png=png,
            width=image.size[0],
            height=image.size[1],
            seed=prepared.seed,
            num_inference_steps=prepared.steps,
            timings=EditTimings(queue_s=queue_s, run_s=finished - started, denoise_s=denoise_s, encode_s=encode_s),
            model=self.identity,
            call_arguments=self.describe_call(prepared),
        )

    @staticmethod
    def _output_size_hint(prepared: PreparedEdit) -> tuple[int, int]:
        """The output's (width, height) or its aspect ratio: the asked size, else the last input image's
        (the pipelines' own rule; previews.latent_size settles the exact size from the latents)."""
        if prepared.request.width:
            return prepared.request.width, prepared.request.height
        return prepared.input_sizes[-1] if prepared.input_sizes else (1, 1)

    def _on_denoiser_forward(self, _module, _args):
        if self._denoise_started is None:
            self._denoise_started = time.perf_counter()

    def describe_settings(self, prepared: PreparedEdit) -> str:
        """The settings that decide whether an edit's numbers stay finite, for an error message."""
        call = prepared.kwargs
        parts = [f"num_inference_steps {prepared.steps}"]
        if self.guidance_parameter in call:
            parts.append(f"{self.guidance_parameter} {call[self.guidance_parameter]}")
        size = f"{call['width']}x{call['height']}" if "width" in call else "the pipeline's size"
        parts += [f"size {size}", f"seed {prepared.seed}", f"dtype {self.identity.dtype}"]
        for key in sorted(prepared.request.extras):
            text = json.dumps(call.get(key))
            parts.append(f"extras {key} {text if len(text) <= 80 else text[:77] + '...'}")
        return ", ".join(parts)

    @staticmethod
    def describe_call(prepared: PreparedEdit) -> dict[str, str]:
        """The call arguments as JSON values (each input image as its size), for the result record."""
        described = {}
        for key, value in prepared.kwargs.items():
            if key == "image":
                sizes = [{"width": image.size[0], "height": image.size[1]} for image in prepared.images]
                value = sizes[0] if len(sizes) == 1 else sizes
            described[key] = json.dumps(value, sort_keys=True)
        described["seed"] = json.dumps(prepared.seed)
        return described

    def warm_up(self) -> EditOutput:
        """The edits a loaded pipeline runs before SERVING (`warm_up.WarmUp`)."""
        return self.warming.run(self)

    def info(self) -> dict[str, Any]:
        return {
            "model": asdict(self.identity),
            "defaults": asdict(self.defaults),
            "max_input_pixels": self.max_input_pixels,
            "max_images": self.max_images,
            "call_parameters": list(self.call_parameters),
        }


# -------------------------------------------------------------------- helpers


def fewest_runnable_steps(scheduler, most: int = 4) -> int:
    """The fewest denoise steps for which `scheduler` makes a finite schedule: 1 for most, 2 for
    Qwen-Image's FlowMatchEuler with shift_terminal (one step: sigmas [1.0], stretched to the terminal
    shift as 0/0 = NaN, and every pixel of the edit NaN). Probed on a copy with the default sigmas that
    the Qwen-Image and FLUX pipelines pass (linspace(1, 1/n, n)), else with `set_timesteps(n)`; 1 when
    the scheduler cannot be probed (the edit's own finiteness check still catches a bad schedule)."""
    set_timesteps = getattr(scheduler, "set_timesteps", None)
    if set_timesteps is None:
        return 1
    takes = inspect.signature(set_timesteps).parameters
    config = getattr(scheduler, "config", {}) or {}
    extra = {"mu": 1.0} if "mu" in takes and config.get("use_dynamic_shifting") else {}
    for steps in range(1, most + 1):
        probe = copy.deepcopy(scheduler)
        try:
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if "sigmas" in takes:
                    probe.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps), device="cpu", **extra)
                else:
                    probe.set_timesteps(steps, device="cpu", **extra)
        except Exception:  # noqa: BLE001 - a scheduler this probe does not fit: nothing known
            return 1
        schedule = [getattr(probe, name, None) for name in ("sigmas", "timesteps")]
        if all(bool(torch.isfinite(torch.as_tensor(values, dtype=torch.float64)).all())
               for values in schedule if values is not None):
            return steps
    return 1


def resolve_max_images(pipeline_class: str, asked: int | None) -> int:
    """How many input images an edit may carry: the pipeline's default, or `asked` (--max-images)."""
    default = MULTI_IMAGE_PIPELINES.get(pipeline_class, 1)
    if asked is None:
        return default
    if asked < 1:
        raise InvalidInput(f"--max-images {asked}: need >= 1")
    if asked > 1 and pipeline_class not in MULTI_IMAGE_PIPELINES:
        raise InvalidInput(
            f"--max-images {asked}: {pipeline_class} takes one input image; pipelines taking several: "
            f"{', '.join(sorted(MULTI_IMAGE_PIPELINES))}"
        )
    return asked


def model_revision_and_hash(model: str, revision: str | None) -> tuple[str, str]:
    """(revision, content hash): the HF snapshot commit (hub models) and sha256 over the files."""
    try:
        directory, commit = model_snapshot(model, revision, local_only=True)
    except Exception as exc:  # noqa: BLE001 - the identity is still useful without them
        log.warning("could not resolve the snapshot of %s: %s", model, exc)
        return revision or "", ""
    return commit, hash_files(directory)


def software_and_accelerator(device: torch.device) -> dict[str, str]:
    """The rest of what decides an edit's last bits: editors that differ here run the same model the
    same way, yet may give slightly different edits for the same seed and sample."""
    import diffusers
    import transformers

    accelerator = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    return {"torch": torch.__version__, "diffusers": diffusers.__version__, "transformers": transformers.__version__,
            "accelerator": accelerator}
