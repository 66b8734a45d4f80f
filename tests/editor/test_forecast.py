"""The fast mode's output forecast on the tiny pipeline (CPU): it skips exactly the scheduled transformer
forwards of both CFG branches, the skipped steps are extrapolated (not copied), and no state leaks from
one edit into the next, cancelled edits included."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from editfleet_common.errors import Cancelled
from editor_service.forecast import ForecastConfig, disable_output_forecast, enable_output_forecast
from editor_service.pipeline import EditDefaults, EditPipeline, EditRequest

from .conftest import photo_like_png

STEPS = 6
CONFIG = ForecastConfig(interval=2, warmup_steps=2, order=1, final_steps=1)


@pytest.fixture(scope="module")
def editor(tiny_model, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDITFLEET_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield EditPipeline.load(str(tiny_model), device="cpu", threads=2,
                                defaults=EditDefaults(num_inference_steps=STEPS, min_steps=2, max_steps=8))


@pytest.fixture()
def block_calls(editor):
    """Real transformer computations: calls of the first block (a forecast step never reaches it)."""
    calls = []
    handle = editor.pipe.transformer.transformer_blocks[0].register_forward_pre_hook(lambda *_: calls.append(1))
    yield calls
    handle.remove()


def edit(editor, **kw) -> np.ndarray:
    request = EditRequest(instruction="Make the square red", image=photo_like_png(), num_inference_steps=STEPS,
                          seed=11, width=32, height=32, guidance_scale=4.0)
    out = editor.edit(request, **kw)
    return np.asarray(Image.open(io.BytesIO(out.image_png)), dtype=np.int16)


def test_schedule_computes_warmup_every_interval_and_the_last_step():
    assert [s for s in range(STEPS) if CONFIG.computes(s, STEPS)] == [0, 1, 3, 5]
    assert [s for s in range(20) if ForecastConfig().computes(s, 20)] == [0, 1, 2, 5, 8, 11, 14, 17, 19]
    with pytest.raises(ValueError, match="warmup_steps"):
        ForecastConfig(warmup_steps=1, order=1)


def test_forecast_skips_scheduled_forwards_and_is_repeatable(editor, block_calls):
    plain = edit(editor)
    assert len(block_calls) == 2 * STEPS  # cond + uncond every step
    enable_output_forecast(editor.pipe, CONFIG)
    try:
        block_calls.clear()
        first = edit(editor)
        assert len(block_calls) == 2 * 4  # steps 0, 1, 3, 5 in both branches
        second = edit(editor)
        # state is reset between edits: the same request gives the same image
        assert np.array_equal(first, second)
        # the skipped steps used an extrapolated prediction, not the exact one
        assert not np.array_equal(first, plain)
        assert np.isfinite(first).all()
    finally:
        disable_output_forecast(editor.pipe)
    assert np.array_equal(edit(editor), plain)  # and removing it restores the exact pipeline


def test_cancelled_edit_leaves_no_forecast_state_behind(editor):
    enable_output_forecast(editor.pipe, CONFIG)
    try:
        expected = edit(editor)
        steps = []
        with pytest.raises(Cancelled):
            edit(editor, on_step=lambda step, total, elapsed: steps.append(step), should_stop=lambda: len(steps) >= 3)
        assert np.array_equal(edit(editor), expected)
    finally:
        disable_output_forecast(editor.pipe)
