"""The reference-metrics judge backend (judge.backend metrics): no language model, the suites' own
metrics computed against their references, answered through the judge's usual path.

    backend = MetricsBackend.load("openai/clip-vit-base-patch32", dino_model="facebook/dino-vits16", device="cuda")

A metrics protocol (suites/magicbrush/magicbrush.yaml, suites/emu_edit/emu_edit.yaml) is an ordinary
protocol file: `combine: metrics`, `range: [-1, 1]`, and one question per metric whose single
`scores` entry names the metric (METRICS) and whose `images` the roles it compares, in order; the
texts of a text metric are the question's `captions`, one per image (templates over the sample's
variables, e.g. "{output_caption}"); its `user` text says what is measured and is not used. Each
prompt is answered with one JSON reply, {"score": <value>, "metric": <name>} (the float written
exactly: json reads back the same number), which the protocol's json parser reads like any judge's;
each metric is then a sub-score of the sample under its question's name (suites/shared/combine.py
rule "metrics"), the headline the first question's.

    l1, l2        images [a, b]: pixel distance of a (resized to b's size) to b   (arithmetic.py)
    clip_i        images [a, b]: cos(CLIP(a), CLIP(b))
    dino          images [a, b]: cos(DINO(a), DINO(b)), DINO ViT-S/16's [CLS] after the final norm
    clip_t        images [a], captions [t]: cos(CLIP(a), CLIP_text(t)); clip_out is the same metric
    clip_dir      images [a0, a1], captions [t0, t1]: cos(n(CLIP(a1)) - n(CLIP(a0)), n(T(t1)) - n(T(t0)))

Backbones: `model` is CLIP (CLIPModel + its tokenizer, from_pretrained: a hub id or a folder), and
`dino_model` DINO (ViTModel without its pooling layer, from_pretrained). load_format "dummy": the
real architectures from the configs in those folders with random weights (performance work only).

Batched and deterministic: a batch's images and texts are each embedded once, in chunks of exactly
`encoder_batch` rows (the last padded), so a sample's values do not depend on what else was in its
batch. A caption longer than CLIP's context (77 tokens) is refused (the sample is ERROR naming it),
as openai/CLIP's clip.tokenize refuses it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from editfleet_common.dtypes import torch_dtype as resolve_torch_dtype
from editfleet_common.identity import ModelIdentity
from editfleet_common.model_files import hash_files, model_snapshot

from ...samples import Prompt
from . import arithmetic

log = logging.getLogger(__name__)

PAIR = ("l1", "l2", "clip_i", "dino")
TEXT = ("clip_t", "clip_out")
METRICS = (*PAIR, *TEXT, "clip_dir")
DEFAULT_CLIP = "openai/clip-vit-base-patch32"
DEFAULT_DINO = "facebook/dino-vits16"


class NotAMetricsProtocol(ValueError):
    """A prompt of a protocol the metrics backend cannot answer (its sample is ERROR, naming why)."""


def metric_of(prompt: Prompt) -> str:
    """The metric a prompt asks for, its images and captions checked against what it needs."""
    question = prompt.question
    where = f"protocol {prompt.protocol.name!r}, question {question.name!r}"
    if len(question.scores) != 1 or question.scores[0] not in METRICS:
        raise NotAMetricsProtocol(f"{where}: judge.backend metrics answers questions whose one score names a metric "
                                  f"({', '.join(METRICS)}); got scores {list(question.scores)}")
    metric = question.scores[0]
    images, captions = len(prompt.images), [c for c in prompt.captions if c]
    need_images, need_texts = (2, 0) if metric in PAIR else (1, 1) if metric in TEXT else (2, 2)
    if images != need_images or len(captions) != need_texts:
        raise NotAMetricsProtocol(f"{where}: metric {metric} compares {need_images} image(s)"
                                  + (f" with {need_texts} caption(s)" if need_texts else "")
                                  + f"; the prompt has {images} image(s) and {len(captions)} caption(s)")
    return metric


class MetricsBackend:
    """Answers metrics protocols' prompts (see the module docstring)."""

    def __init__(self, clip, tokenizer, dino, identity: ModelIdentity, *, device: str, dtype: torch.dtype,
                 encoder_batch: int = 16):
        self.clip, self.tokenizer, self.dino = clip, tokenizer, dino
        self.identity = identity
        self.device, self.dtype = device, dtype
        self.encoder_batch = max(1, encoder_batch)
        self.clip_size = int(clip.config.vision_config.image_size)
        self.context = int(clip.config.text_config.max_position_embeddings)
        self.generated_tokens = 0  # none: the scorer's metrics read it
        self._lock = threading.Lock()

    @classmethod
    def load(cls, model: str = DEFAULT_CLIP, *, dino_model: str = DEFAULT_DINO, device: str = "cpu",
             dtype: str = "auto", load_format: str = "auto", revision: str | None = None, encoder_batch: int = 16,
             seed: int = 0, **_ignored) -> "MetricsBackend":
        from transformers import AutoTokenizer, CLIPConfig, CLIPModel, ViTConfig, ViTModel

        torch_dtype = resolve_torch_dtype(dtype, device)
        t0 = time.monotonic()
        hashes = {}
        if load_format == "dummy":  # the real architectures from the folders' configs, random weights
            clip_dir, dino_dir = Path(model), Path(dino_model)
            for name, folder in (("--model", clip_dir), ("--dino-model", dino_dir)):
                if not (folder / "config.json").is_file():
                    raise FileNotFoundError(f"--load-format dummy: {name} {str(folder)!r} must be a folder with config.json")
            torch.manual_seed(seed)
            with torch.device(device):
                clip = CLIPModel(CLIPConfig.from_pretrained(clip_dir)).to(torch_dtype)
                dino = ViTModel(ViTConfig.from_pretrained(dino_dir), add_pooling_layer=False).to(torch_dtype)
            for key, folder in (("clip", clip_dir), ("dino", dino_dir)):
                hashes[key] = "dummy:" + hashlib.sha256((folder / "config.json").read_bytes()).hexdigest()
            commits = {"clip": "", "dino": ""}
        else:
            clip_dir, clip_commit = model_snapshot(model, revision)
            dino_dir, dino_commit = model_snapshot(dino_model)
            clip = CLIPModel.from_pretrained(clip_dir, dtype=torch_dtype).to(device)
            dino = ViTModel.from_pretrained(dino_dir, dtype=torch_dtype, add_pooling_layer=False).to(device)
            hashes = {"clip": hash_files(Path(clip_dir)), "dino": hash_files(Path(dino_dir))}
            commits = {"clip": clip_commit, "dino": dino_commit}
        tokenizer = AutoTokenizer.from_pretrained(clip_dir)
        clip.eval()
        dino.eval()
        log.info("metrics backbones %s (%s) and %s (%s) on %s in %.1fs", model, type(clip).__name__, dino_model,
                 type(dino).__name__, device, time.monotonic() - t0)
        both = hashlib.sha256(f"clip:{hashes['clip']}\ndino:{hashes['dino']}".encode()).hexdigest()
        identity = ModelIdentity(
            model=model, revision=commits["clip"],
            content_hash=("dummy:" if load_format == "dummy" else "") + both,
            model_class=f"{type(clip).__name__}+{type(dino).__name__}",
            dtype=str(torch_dtype).removeprefix("torch."), device=str(device), load_format=load_format,
            runtime={"backend": "metrics", "clip_hash": hashes["clip"], "dino_model": str(dino_model),
                     "dino_hash": hashes["dino"], "dino_revision": commits["dino"],
                     "encoder_batch": str(encoder_batch), "metrics": ",".join(METRICS)})
        return cls(clip, tokenizer, dino, identity, device=device, dtype=torch_dtype, encoder_batch=encoder_batch)

    # -- JudgeBackend ---------------------------------------------------------------------------

    def generate_with_expected(self, prompts: list[Prompt], phases: dict[str, float] | None = None
                               ) -> tuple[list[str], dict[int, float | None]]:
        return self.generate(prompts, phases), {}

    def generate(self, prompts: list[Prompt], phases: dict[str, float] | None = None) -> list[str]:
        started = time.monotonic()
        with self._lock:
            values = self.compute(prompts)
        if phases is not None:
            phases["metrics"] = phases.get("metrics", 0.0) + time.monotonic() - started
        return [json.dumps({"score": value, "metric": metric_of(p)}) for p, value in zip(prompts, values)]

    @property
    def batches_in_flight(self) -> int:
        return 1

    def ready_for_next(self) -> bool:
        return True

    def batch(self):
        return nullcontext()

    def short_replies(self):
        return nullcontext()

    def too_large(self, exc: BaseException) -> bool:
        if isinstance(exc, torch.OutOfMemoryError):
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            return True
        return False

    def move_to_device(self) -> float:
        return 0.0

    # -- the metrics ----------------------------------------------------------------------------

    def compute(self, prompts: list[Prompt]) -> list[float]:
        """Each prompt's metric value, in order (ValueError names a prompt that cannot be answered)."""
        metrics = [metric_of(p) for p in prompts]
        clip_images, dino_images, texts = {}, {}, {}
        for prompt, metric in zip(prompts, metrics):
            if metric in ("clip_i", *TEXT, "clip_dir"):
                for img in prompt.images:
                    clip_images.setdefault(id(img), img)
            if metric == "dino":
                for img in prompt.images:
                    dino_images.setdefault(id(img), img)
            for caption in prompt.captions:
                if caption and metric in (*TEXT, "clip_dir"):
                    texts.setdefault(caption, None)
        clip_emb = self._embed_images(list(clip_images.values()), "clip")
        dino_emb = self._embed_images(list(dino_images.values()), "dino")
        text_emb = self._embed_texts(list(texts))
        clip_of = dict(zip(clip_images, clip_emb))
        dino_of = dict(zip(dino_images, dino_emb))
        text_of = dict(zip(texts, text_emb))
        out = []
        for prompt, metric in zip(prompts, metrics):
            imgs, caps = prompt.images, [c for c in prompt.captions if c]
            if metric in ("l1", "l2"):
                out.append(arithmetic.pixel_distance(imgs[0], imgs[1], metric))
            elif metric == "clip_i":
                out.append(arithmetic.cosine(clip_of[id(imgs[0])], clip_of[id(imgs[1])]))
            elif metric == "dino":
                out.append(arithmetic.cosine(dino_of[id(imgs[0])], dino_of[id(imgs[1])]))
            elif metric in TEXT:
                out.append(arithmetic.cosine(clip_of[id(imgs[0])], text_of[caps[0]]))
            else:
                out.append(arithmetic.direction(clip_of[id(imgs[0])], clip_of[id(imgs[1])],
                                                text_of[caps[0]], text_of[caps[1]]))
        return out

    def _chunks(self, rows: torch.Tensor):
        """Fixed-size chunks (the last one padded): every forward has the same shape."""
        n = self.encoder_batch
        for start in range(0, rows.shape[0], n):
            chunk = rows[start:start + n]
            real = chunk.shape[0]
            if real < n:  # padded with copies of its first row (no empty text row to attend over)
                chunk = torch.cat([chunk, chunk[:1].expand(n - real, *chunk.shape[1:])])
            yield chunk, real

    @torch.inference_mode()
    def _embed_images(self, images: list, which: str) -> list[torch.Tensor]:
        if not images:
            return []
        if which == "clip":
            pixels = torch.stack([arithmetic.clip_pixels(img, self.clip_size) for img in images])
        else:
            pixels = torch.stack([arithmetic.dino_pixels(img) for img in images])
        out = []
        for chunk, real in self._chunks(pixels):
            chunk = chunk.to(self.device, self.dtype)
            if which == "clip":
                pooled = self.clip.vision_model(pixel_values=chunk).pooler_output
                emb = self.clip.visual_projection(pooled)
            else:
                emb = self.dino(pixel_values=chunk).last_hidden_state[:, 0]
            out.extend(emb[:real].float().cpu())
        return out

    @torch.inference_mode()
    def _embed_texts(self, texts: list[str]) -> list[torch.Tensor]:
        if not texts:
            return []
        for text in texts:
            n = len(self.tokenizer(text)["input_ids"])
            if n > self.context:
                raise ValueError(f"caption {text[:60]!r}{'...' if len(text) > 60 else ''}: {n} tokens exceed CLIP's "
                                 f"context of {self.context} (openai/CLIP's clip.tokenize refuses it too)")
        enc = self.tokenizer(texts, padding="max_length", max_length=self.context, return_tensors="pt")
        ids, mask = enc["input_ids"], enc["attention_mask"]
        out = []
        for (id_chunk, real), (mask_chunk, _) in zip(self._chunks(ids), self._chunks(mask)):
            pooled = self.clip.text_model(input_ids=id_chunk.to(self.device),
                                          attention_mask=mask_chunk.to(self.device)).pooler_output
            out.extend(self.clip.text_projection(pooled)[:real].float().cpu())
        return out
