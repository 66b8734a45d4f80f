"""An editor's warm-up: the edits a loaded pipeline runs before it says SERVING, so that the first
real request pays for no lazy initialisation and no compilation.

`WarmUp.run(editor)`: a compiled pipeline is warmed at its default output size with two prompt
lengths, so the compiled blocks have met a varying text length before the first real request (no
recompilation in the middle of a benchmark). With a compile cache the warm-up first loads what an
earlier editor of the same kind compiled (or, cold, compiles under the entry's lock and saves it); how
it started is recorded as ``runtime["compile_cache"]``. A warm start only has to trace the graphs the
entry holds, so it runs the shortest warm-up that traces them all (`WarmUp.plan`), with no compile
workers (`compiler_startup.no_compile_workers`). An uncompiled pipeline runs one small edit.

Every warm-up edit runs the first of its two scheduled steps, then decodes (`WARM_UP_RUN_STEPS`), and
makes no PNG. Before the warm-up and again after it, every object the process holds (the model, the
imported libraries and compiler: about half a million) is moved out of the cyclic GC's reach
(`gc.freeze`; refcounting still frees them): they live as long as the editor, and each full
collection in the middle of the compile's trace, or of a later edit, would walk them all (H200,
RESULTS §17: the GC's share of a warm start 0.35-0.43 s without, 0.06 s with).
"""

from __future__ import annotations

import gc
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from PIL import Image

from editfleet_common.images import encode_png

from .compile_cache import CompileCache, compile_counters
from .compiler_startup import no_compile_workers
from .edits import EditOutput, EditRequest
from .speed import DYNAMIC_TEXT_LENGTH

if TYPE_CHECKING:
    from .pipeline import EditPipeline

log = logging.getLogger(__name__)

# The warm-up runs this many of its scheduled steps, then decodes (`WarmUp.plan`).
WARM_UP_RUN_STEPS = 1
WARM_UP_INSTRUCTIONS = ("warm up", "warm up the compiled blocks with a longer instruction than before")


@dataclass
class WarmUp:
    """How an editor warms up. `EditPipeline.load` sets the cache; the other switches are the bench's A/Bs."""

    compile_cache: CompileCache | None = None  # when compiled blocks may start warm
    compile_workers_when_warm: bool = False  # True: Inductor's worker pool in warm starts too
    run_steps: int | None = WARM_UP_RUN_STEPS  # None: every scheduled step
    freeze_gc: bool = True  # False: the cyclic GC as Python sets it
    timings: dict[str, float] = field(default_factory=dict)  # seconds per warm-up edit of a compiled pipeline

    def run(self, editor: "EditPipeline") -> EditOutput:
        self.timings = {}
        if self.freeze_gc:
            gc.freeze()
        out = self._edits(editor, lean=False) if self.compile_cache is None else self._with_cache(editor)
        if self.freeze_gc:
            gc.freeze()  # what the compile made lives on too (graphs, guards, kernels)
        return out

    def _with_cache(self, editor: "EditPipeline") -> EditOutput:
        cache = self.compile_cache
        cache.acquire()
        try:
            state = cache.load()
            before = compile_counters()
            warm = state.state == "warm"
            with no_compile_workers() if warm and not self.compile_workers_when_warm else nullcontext():
                out = self._edits(editor, lean=warm)
            compiled = {k: v - before.get(k, 0) for k, v in compile_counters().items()}
            state.details["compiled"] = compiled
            compiled_anew = compiled["fxgraph_cache_miss"] + compiled["fxgraph_cache_bypass"]
            if state.state == "warm" and compiled_anew:
                state.problem = f"{compiled_anew} graph(s) not in the entry were compiled"
                log.warning("compile cache %s: warm start, but %s (%s)", cache.key[:12], state.problem, compiled)
            elif compiled["fxgraph_cache_bypass"]:
                log.warning("compile cache %s: %d graph(s) cannot be cached (%s); later editors compile them too",
                            cache.key[:12], compiled["fxgraph_cache_bypass"], compiled)
            cache.save()
        finally:
            cache.release()
        editor.identity.runtime["compile_cache"] = state.describe()
        return out

    @staticmethod
    def plan(editor: "EditPipeline", lean: bool) -> tuple[list[dict[str, Any]], int]:
        """A compiled pipeline's warm-up edits (EditRequest fields) and their scheduled steps.

        Cold: two edits with two instruction lengths, so that a compiler shown one length only cannot
        leave the second for the first real request. Lean (a warm compile cache: nothing to compile,
        only the entry's graphs to trace):
        - the text length compiled dynamic (`speed.compile_transformer_blocks`): one graph serves every
          length, so one edit, without true CFG (one transformer call per step);
        - else with true CFG on, one edit: its negative prompt already shows a second text length;
        - else both edits.
        Two steps scheduled, never one (Qwen-Image's scheduler, shift_terminal, makes NaN pixels in a
        one-step schedule), of which the warm-up runs the first (`WARM_UP_RUN_STEPS`) and then decodes:
        every step calls the same compiled graphs, so a second one only spent time.
        """
        edits = [{"instruction": text} for text in WARM_UP_INSTRUCTIONS]
        steps = _two_steps(editor)
        if not lean:
            return edits, steps
        true_cfg = editor.guidance_parameter == "true_cfg_scale"
        if DYNAMIC_TEXT_LENGTH in editor.identity.runtime.get("compile", ""):
            return [{**edits[0], **({"guidance_scale": 1.0, "negative_prompt": ""} if true_cfg else {})}], steps
        if true_cfg and editor.defaults.guidance_scale > 1 and bool(editor.defaults.negative_prompt):
            return edits[:1], steps
        return edits, steps

    def _edits(self, editor: "EditPipeline", lean: bool) -> EditOutput:
        if "compile" in editor.identity.runtime:
            source = encode_png(Image.linear_gradient("L").convert("RGB"))
            edits, steps = self.plan(editor, lean)
            for i, fields in enumerate(edits):
                started = time.perf_counter()
                out = editor.edit(EditRequest(**fields, image=source, sample_id="warm-up", num_inference_steps=steps,
                                              seed=0), encode=False, last_step=self.run_steps)
                self.timings[f"edit{i}_s"] = round(time.perf_counter() - started, 3)
            return out
        side = editor.size_multiple * 4
        gradient = Image.linear_gradient("L").resize((side, side)).convert("RGB")
        request = EditRequest(instruction=WARM_UP_INSTRUCTIONS[0], image=encode_png(gradient), sample_id="warm-up",
                              num_inference_steps=_two_steps(editor), seed=0, width=side, height=side)
        return editor.edit(request, encode=False, last_step=self.run_steps)


def _two_steps(editor: "EditPipeline") -> int:
    return min(max(editor.defaults.min_steps, 2), editor.defaults.max_steps)
