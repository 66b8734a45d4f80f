"""Bad input and overload against a real editor server (tiny model): each bad request gets a clear
status, the server keeps serving, memory stays flat. The exhaustive property-based cases of the
decoder run in-process in tests/orchestrator/test_reliability_inputs.py; these are the ones that
matter end to end. The long soak is `make soak` (marked `soak`, not part of `make test`).

Hostile and heavy input (issue 28 items 3-5, issue 27): a full editor refuses a burst of 6300² PNGs
without decoding them; a step schedule in extras is bounded and recorded as the steps run; NaN/inf/
negative guidance, sizes the pipeline cannot make and deeply nested extras are INVALID_ARGUMENT; one
step (NaN with Qwen-Image's scheduler) is refused, and non-finite output is a permanent INVALID_ARGUMENT."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from editor_service.client import EditError, EditorClient, Progress, build_request
from tests.png_samples import encode, png_claiming

from .conftest import flat_png, photo_like_png, start_editor

MAX_QUEUE = 2
MAX_INPUT_PIXELS = 40_000_000  # the default: issue 28's 6300² images are under it
MAX_STEPS = 50


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    proc = start_editor(tmp_path_factory.mktemp("editor-reliability"), "--max-queue", str(MAX_QUEUE),
                        "--max-input-pixels", str(MAX_INPUT_PIXELS), "--max-steps", str(MAX_STEPS),
                        "--grace", "5")  # --min-steps left to its default: the fewest the pipeline can run
    try:
        proc.wait_healthy(timeout=240)
        yield proc
    finally:
        proc.stop(grace=20)


def edit(client, image=None, instruction="Make the square red", **kw):
    fields = dict(steps=2, seed=5, width=32, height=32, sample_id="r", timeout=60)
    fields.update(kw)
    return client.edit(photo_like_png() if image is None else image, instruction, **fields)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def invalid(client, **kw) -> str:
    with pytest.raises(EditError) as caught:
        edit(client, **kw)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT, caught.value
    assert not caught.value.retryable
    return caught.value.details


def test_random_bytes_as_the_image_are_invalid_argument(server):
    with EditorClient(server.address) as client:

        @settings(max_examples=8, deadline=None)
        @given(data=st.binary(min_size=1, max_size=256))
        def check(data):
            if data.startswith((b"\x89PNG", b"\xff\xd8", b"GIF", b"BM", b"II", b"MM", b"RIFF", b"P")):
                data = b"\0" + data  # keep it from being a valid tiny image by chance
            assert "source_image" in invalid(client, image=data)

        check()


def test_truncated_huge_and_odd_images_and_text(client):
    whole = photo_like_png(96, 64)
    for cut in (8, 33, len(whole) // 2, len(whole) - 30):  # cuts before the last pixel data
        assert "cannot decode" in invalid(client, image=whole[:cut])
    details = invalid(client, image=png_claiming(100_000, 100_000))
    assert "exceeds the limit" in details or "decompression bomb" in details
    assert "exceeds the limit of 40000000" in invalid(client, image=png_claiming(6400, 6300))
    assert "instruction: empty" in invalid(client, instruction="   ")
    # odd modes are accepted: palette with transparency and a CMYK JPEG, each one real edit
    palette = encode(Image.linear_gradient("L").resize((48, 40)).convert("P"), transparency=0)
    cmyk = encode(Image.new("CMYK", (40, 48), (200, 0, 0, 0)), "JPEG")
    for image in (palette, cmyk):
        result = edit(client, image=image)
        assert (result.width, result.height) == (32, 32)
    # non-ASCII text is edited; text past the pipeline's max_sequence_length (512 tokens for
    # Qwen-Image-Edit) is refused up front (it used to fail inside the transformer: INTERNAL)
    assert edit(client, instruction="把方块变成红色 🟥, s'il vous plaît").width == 32
    assert edit(client, instruction="make it red " * 40).width == 32  # ~480 characters: fine
    long = "make the square red and shiny " * 3000
    assert "tokens, more than this pipeline's limit of 512" in invalid(client, instruction=long)
    assert "negative_prompt:" in invalid(client, negative_prompt=long)


def test_a_12000_square_image_and_a_1mb_sample_id_are_refused_naming_the_field_and_the_flag(client):
    """Issue 27: a 12000² PNG said Pillow's "decompression bomb DOS attack" and an unreadable one
    "<_io.BytesIO object at 0x...>"; issue 28: a 1 MB sample_id was taken (and logged)."""
    details = invalid(client, image=png_claiming(12000, 12000))
    assert "source_image: 12000x12000 = 144000000 pixels exceeds the limit of 40000000 (--max-input-pixels)" in details
    assert "bomb" not in details
    details = invalid(client, image=b"\0not an image at all")
    assert "source_image: cannot decode image (not an image format Pillow reads" in details and "BytesIO" not in details
    details = invalid(client, sample_id="x" * 1_000_000)
    assert "sample_id: 1000000 characters exceed the limit of 512 (--max-id-chars)" in details
    assert edit(client, sample_id="x" * 512).sample_id == "x" * 512  # at the limit: edited


def test_more_clients_than_the_queue_the_excess_is_refused_and_the_rest_finish(server):
    clients = 3 * (MAX_QUEUE + 1)
    start = threading.Barrier(clients)
    outcomes: list[object] = []
    lock = threading.Lock()

    def one(i):
        with EditorClient(server.address) as c:
            start.wait()
            try:
                r = edit(c, sample_id=f"load-{i}", seed=i)
                outcome = ("ok", r.sample_id, r.width)
            except EditError as exc:
                outcome = (exc.code.name, exc.details, exc.retryable)
        with lock:
            outcomes.append(outcome)

    before = rss_bytes(server.proc.pid)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    ok = [o for o in outcomes if o[0] == "ok"]
    refused = [o for o in outcomes if o[0] == "RESOURCE_EXHAUSTED"]
    assert len(ok) + len(refused) == clients, outcomes
    # one running + MAX_QUEUE waiting were accepted (more only if one finished while others arrived)
    assert len(ok) >= MAX_QUEUE + 1 and refused, outcomes
    assert all(width == 32 for _, _, width in ok)
    assert all(retryable and "busy" in details for _, details, retryable in refused)
    with EditorClient(server.address) as c:  # and it serves normally afterwards
        assert edit(c, sample_id="after-load").sample_id == "after-load"
    growth = rss_bytes(server.proc.pid) - before
    assert growth < 200 * 2**20, f"RSS grew by {growth / 2**20:.0f} MiB"


def _mixed_requests(server, rounds: int) -> tuple[list[int], Counter]:
    """Each round: MAX_QUEUE + 2 concurrent edits (one more than fits: refused) and 10 invalid
    requests of several kinds. Returns the server's RSS after each round and the outcomes."""
    samples, outcomes = [], Counter()
    bad = [dict(image=b"\x89PNG\r\n\x1a\n" + os.urandom(64)), dict(image=png_claiming(7000, 7000)),
           dict(image=photo_like_png()[:100]), dict(instruction=""), dict(steps=99)]
    with EditorClient(server.address) as c:
        for n in range(rounds):
            start = threading.Barrier(MAX_QUEUE + 2)

            def one(i):
                start.wait()
                try:
                    edit(c, sample_id=f"soak-{n}-{i}", seed=n)
                    outcomes["ok"] += 1
                except EditError as exc:
                    outcomes[exc.code.name] += 1

            threads = [threading.Thread(target=one, args=(i,)) for i in range(MAX_QUEUE + 2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            for kw in bad * 2:
                with pytest.raises(EditError) as caught:
                    edit(c, **kw)
                outcomes[caught.value.code.name] += 1
            samples.append(rss_bytes(server.proc.pid))
    return samples, outcomes


def test_memory_is_flat_over_repeated_edits_and_errors(server):
    """~30 requests after a warm-up round (6 edits, 2 refused, 20 invalid): RSS does not climb (the long
    version is `make soak`)."""
    _mixed_requests(server, 1)  # allocator and caches settle
    start = rss_bytes(server.proc.pid)
    samples, outcomes = _mixed_requests(server, 2)
    print(f"editor RSS: start {start / 2**20:.0f} MiB, max {max(samples) / 2**20:.0f} MiB; {dict(outcomes)}")
    assert outcomes["INVALID_ARGUMENT"] == 20 and outcomes["RESOURCE_EXHAUSTED"] >= 1 and outcomes["ok"] >= 6
    assert max(samples) - start < 100 * 2**20, [round(s / 2**20) for s in samples]


@pytest.mark.soak
def test_soak_memory_stays_flat(server):
    """`make soak`: 40 rounds (120+ edits, 400 invalid and ~40 refused requests), ~6 min here."""
    _mixed_requests(server, 2)
    start = rss_bytes(server.proc.pid)
    samples, outcomes = _mixed_requests(server, 40)
    half = samples[len(samples) // 2]
    print(f"soak: editor RSS start {start / 2**20:.0f} MiB, half-way {half / 2**20:.0f} MiB, end "
          f"{samples[-1] / 2**20:.0f} MiB, max {max(samples) / 2**20:.0f} MiB; {dict(outcomes)}")
    assert samples[-1] - half < 50 * 2**20  # no climb in the second half
    assert max(samples) - start < 150 * 2**20


# ------------------------------------------------------------------ hostile and heavy input (issues 27, 28)


def _fill_the_editor(client) -> list:
    """One long edit running and MAX_QUEUE waiting (the streams, to cancel): the editor is full."""
    long = dict(steps=MAX_STEPS, seed=1, width=512, height=512, timeout=120)
    running = client.stream(photo_like_png(), "Make the square red", sample_id="fill-0", **long)
    events = iter(running)
    assert isinstance(next(events), Progress)  # on the device now
    streams = [running] + [client.stream(photo_like_png(), "Make the square red", sample_id=f"fill-{i}", **long)
                           for i in range(1, MAX_QUEUE + 1)]
    time.sleep(0.3)  # their requests reach the server (a header check each, then admitted)
    until = time.monotonic() + 30
    while True:  # the waiting ones are admitted once a small edit is refused as busy
        try:
            edit(client, sample_id="probe-full", timeout=10)
        except EditError as exc:
            if exc.code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                return streams
        assert time.monotonic() < until, "the editor never filled up"
        time.sleep(0.2)


def test_a_full_editor_refuses_a_burst_of_huge_images_without_decoding_them(server):
    """Issue 28 item 3: 16 concurrent 6300² PNGs (~125 KB each, under the 40M pixel limit) at a full
    editor used to be decoded before admission: refused after 13-17 s each, RSS 1.2 -> 5.6 GB and
    staying at 5.2 GB. Admission comes first now: each is refused at once, nothing decoded."""
    burst = 16
    big = flat_png(6300, 6300)
    pid = server.proc.pid
    with EditorClient(server.address) as client:
        streams = _fill_the_editor(client)
        try:
            before, peak, sampling = rss_bytes(pid), [0], threading.Event()

            def sample():
                while not sampling.is_set():
                    peak[0] = max(peak[0], rss_bytes(pid))
                    time.sleep(0.005)

            sampler = threading.Thread(target=sample)
            sampler.start()
            start, outcomes, lock = threading.Barrier(burst), [], threading.Lock()

            def one(i):
                with EditorClient(server.address) as c:
                    start.wait()
                    began = time.monotonic()
                    try:
                        edit(c, image=big, sample_id=f"huge-{i}", timeout=60)
                        outcome = "OK"
                    except EditError as exc:
                        outcome = exc.code.name
                    with lock:
                        outcomes.append((outcome, time.monotonic() - began))

            threads = [threading.Thread(target=one, args=(i,)) for i in range(burst)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            # an image whose header is sound and whose pixels are not: refused as busy (never decoded),
            # where decoding first made it INVALID_ARGUMENT "cannot decode"
            with pytest.raises(EditError) as busy:
                edit(client, image=photo_like_png(96, 64)[:-30], sample_id="truncated")
            # a header over the pixel limit is INVALID_ARGUMENT even now: checked before admission
            assert "exceeds the limit of 40000000" in invalid(client, image=png_claiming(6400, 6300))
            time.sleep(0.05)
            sampling.set()
            sampler.join()
        finally:
            for stream in reversed(streams):
                stream.cancel()
    growth = max(peak[0], rss_bytes(pid)) - before
    print(f"burst of {burst} 6300² PNGs at a full editor: {Counter(o for o, _ in outcomes)}, slowest answer "
          f"{max(s for _, s in outcomes):.2f}s, RSS {before / 2**20:.0f} MiB, peak growth {growth / 2**20:.1f} MiB")
    assert [o for o, _ in outcomes] == ["RESOURCE_EXHAUSTED"] * burst, outcomes
    assert max(s for _, s in outcomes) < 5.0, outcomes  # no decode in the way (one took ~1 s of CPU)
    assert busy.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED, busy.value
    # one decoded 6300² image alone is 119 MB; the 16 encoded requests are 2 MB
    assert growth < 64 * 2**20, f"RSS grew by {growth / 2**20:.0f} MiB"


def test_guidance_must_be_a_finite_number_in_range(client):
    """Issue 28 item 5: NaN, -inf and negative guidance made an OK edit recording true_cfg_scale "NaN"
    (NaN turns true CFG off); +inf ended as INTERNAL (retried on every rerun)."""
    for value in (float("nan"), float("-inf"), float("inf")):
        assert f"guidance_scale: {value} is not a finite number" in invalid(client, guidance_scale=value)
    for value in (-1.0, 1e30):
        assert f"guidance_scale: {value} outside the allowed range [0, 100]" in invalid(client, guidance_scale=value)
    # the same through extras (Python's json reads NaN and Infinity; JSON has neither)
    assert "extras['guidance_scale']: NaN is not a finite number" in invalid(
        client, extras={"guidance_scale": float("nan")})
    assert "extras['max_sequence_length']: 1e999 is not a finite number" in _raw_extras(
        client, "max_sequence_length", "1e999")


def test_sizes_the_pipeline_cannot_make_are_invalid_argument(client):
    """Issue 28 item 5: 100000x16 (under the pixel limit) failed deep in the transformer as INTERNAL."""
    assert "width: 100000 is more than 16 times height 16 (aspect ratio limit 16:1)" in invalid(
        client, width=100_000, height=16)
    assert "height: 4096 is more than 16 times width 32" in invalid(client, width=32, height=4096)
    assert "width: 40 is not a multiple of 16" in invalid(client, width=40, height=32)
    assert "exceeds the limit of 40000000 pixels" in invalid(client, width=8000, height=8000)


def _raw_extras(client, key: str, raw: str) -> str:
    """An edit whose extras[key] is `raw` JSON text as sent (the client would encode a Python value)."""
    request = build_request(photo_like_png(), "Make the square red", steps=2, seed=5, width=32, height=32)
    request.extras[key] = raw
    with pytest.raises(grpc.RpcError) as caught:
        list(client.stub.Edit(request, timeout=30))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value
    return caught.value.details()


def test_deeply_nested_extras_are_invalid_argument(client):
    """Issue 28 item 5: a 100k-deep JSON value ended as INTERNAL RecursionError."""
    deep = "[" * 100_000 + "]" * 100_000
    assert "extras['attention_kwargs']: nested deeper than the limit of 16 levels" in _raw_extras(
        client, "attention_kwargs", deep)
    # deep enough to refuse, shallow enough for the JSON parser
    assert "nested deeper than the limit of 16 levels" in invalid(
        client, extras={"attention_kwargs": {"a": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}})
    assert "outside the 64-bit integer range" in _raw_extras(client, "max_sequence_length", "9" * 30)


def test_a_step_schedule_in_extras_is_bounded_and_recorded_as_the_steps_run(client):
    """Issue 28 item 4: extras.sigmas ran past --max-steps (250 against 200; 10^5 would hold the worker
    for hours), and 5 sigmas were recorded as num_inference_steps 2."""
    started = time.monotonic()
    assert (f"extras['sigmas']: 100000 values, one denoise step each: 100000 outside the allowed range "
            f"[2, {MAX_STEPS}]") in invalid(client, extras={"sigmas": [0.5] * 100_000})
    assert time.monotonic() - started < 10
    assert f"60 outside the allowed range [2, {MAX_STEPS}]" in invalid(client, extras={"sigmas": [0.5] * 60})
    assert "extras['sigmas']: need a non-empty list of numbers" in invalid(client, extras={"sigmas": ["a", 1]})
    progress = []
    result = edit(client, guidance_scale=1.0, extras={"sigmas": [1.0, 0.8, 0.6, 0.4, 0.2]},
                  on_progress=progress.append)
    assert result.num_inference_steps == 5 and result.call_arguments["num_inference_steps"] == "5"
    assert [(p.step, p.total_steps) for p in progress] == [(s, 5) for s in range(1, 6)]


def test_one_step_is_refused_and_non_finite_output_is_a_permanent_invalid_argument(client):
    """Issue 27: --steps 1 made NaN pixels (Qwen-Image's scheduler: shift_terminal stretches a one-step
    schedule to 0/0), reported as INTERNAL and retried three times per sample. The editor's default
    --min-steps is now the fewest its scheduler can run; settings that still make non-finite pixels
    are INVALID_ARGUMENT naming them."""
    assert client.info().defaults["min_steps"] == 2
    details = invalid(client, steps=1)
    assert (f"num_inference_steps: 1 outside the allowed range [2, {MAX_STEPS}] "
            "(QwenImageEditPipeline's scheduler cannot run fewer than 2)") in details
    assert "outside the allowed range" in invalid(client, extras={"sigmas": [1.0]})
    # two steps whose last sigma is 1: the same 0/0 in the schedule, found in the output
    details = invalid(client, guidance_scale=1.0, extras={"sigmas": [1.0, 1.0]})
    assert ("non-finite pixels with these settings (num_inference_steps 2, true_cfg_scale 1.0, size 32x32, "
            "seed 5, dtype float32, extras sigmas [1.0, 1.0])") in details
