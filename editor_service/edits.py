"""What an edit is made of, as the editor core sees it: the request, the server's defaults, the
validated call (`PreparedEdit`) and the result with its timings. No gRPC here (the server maps these
to and from the proto) and no pipeline (`pipeline.EditPipeline` runs them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from editfleet_common.errors import InvalidInput
from editfleet_common.identity import ModelIdentity


@dataclass
class EditRequest:
    instruction: str
    image: bytes = b""  # one encoded input image, or
    sample_id: str = ""
    negative_prompt: str | None = None  # None: the server's default
    num_inference_steps: int = 0  # 0: the server's default
    guidance_scale: float | None = None  # None: the server's default
    seed: int | None = None  # None: drawn and reported
    width: int = 0  # 0: the pipeline's own choice
    height: int = 0
    extras: dict[str, str] = field(default_factory=dict)  # JSON-encoded values
    images: list[bytes] = field(default_factory=list)  # several encoded input images, in order
    # previews of the edit as the denoise goes (the HTTP route's stream with partial_images; an API
    # editor: the provider's own partial images, where it streams them); 0: none
    partial_images: int = 0

    def inputs(self) -> list[tuple[str, bytes]]:
        """(field name, encoded image) of every input image; raises InvalidInput if both forms are set."""
        if self.images and self.image:
            raise InvalidInput("source_image/images: give one input image in source_image or several in images, not both")
        if self.images:
            return [(f"images[{i}]", data) for i, data in enumerate(self.images)]
        return [("source_image", self.image)]


@dataclass
class EditDefaults:
    num_inference_steps: int = 50
    guidance_scale: float = 4.0
    negative_prompt: str = " "
    min_steps: int = 1
    max_steps: int = 200


@dataclass
class EditTimings:
    queue_s: float = 0.0
    run_s: float = 0.0
    denoise_s: float = 0.0
    encode_s: float = 0.0


@dataclass
class EditOutput:
    sample_id: str
    image_png: bytes
    width: int
    height: int
    seed: int
    num_inference_steps: int
    timings: EditTimings
    model: ModelIdentity
    call_arguments: dict[str, str]  # JSON values


@dataclass
class PreparedEdit:
    """A validated request: the exact pipeline call arguments (minus callbacks) and its input images.

    `EditPipeline.prepare(..., decode=False)` (the server, before admitting the edit) leaves the images
    encoded, each checked from its header (`input_sizes`); `EditPipeline.decode_inputs` decodes them
    (the worker, when the edit's turn comes) and sets `images` and the call's ``image``. `steps` is the
    number of denoise steps that run: a step schedule in extras (`sigmas`) decides it."""

    request: EditRequest
    images: list[Image.Image]  # decoded; empty while the edit is held encoded
    seed: int
    steps: int
    kwargs: dict[str, Any]
    decode_s: float
    input_sizes: list[tuple[int, int]] = field(default_factory=list)  # as each header declares it
    # the denoise steps after which a preview is decoded (1-based), for request.partial_images
    preview_steps: tuple[int, ...] = ()

    @property
    def decoded(self) -> bool:
        return bool(self.images)
