"""Life cycle of an editor process: NOT_SERVING while loading, SERVING after the warm-up edit,
and on SIGTERM: NOT_SERVING, no new work, the in-flight edit finishes, exit 0."""

from __future__ import annotations

import signal
import threading
import time

import grpc

from editfleet_common.channels import health_status, make_channel
from editor_service.client import EditError, EditorClient, EditResult, Progress

from .conftest import photo_like_png, read_log, start_editor


def test_health_transitions_and_graceful_sigterm(tiny_model, tmp_path):
    proc = start_editor(tmp_path, "--grace", "60")
    try:
        channel = make_channel(proc.address)
        seen = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.alive():
            status = health_status(channel, timeout=1.0)
            if not seen or seen[-1] != status:
                seen.append(status)
            if status == "SERVING":
                break
            time.sleep(0.1)
        # UNAVAILABLE only until the port is bound; then NOT_SERVING while loading + warming up
        answered = [s for s in seen if s != "UNAVAILABLE"]
        assert answered == ["NOT_SERVING", "SERVING"], seen
        assert "warm-up edit in" in read_log(proc)

        with EditorClient(proc.address) as client:
            stream = client.stream(photo_like_png(), "Make the square red", steps=6, seed=1,
                                   width=32, height=32, sample_id="in-flight")
            items = iter(stream)
            first = next(items)
            assert isinstance(first, Progress)

            proc.proc.send_signal(signal.SIGTERM)
            status = "SERVING"
            until = time.monotonic() + 10
            while status == "SERVING" and time.monotonic() < until:
                status = health_status(channel, timeout=1.0)
                time.sleep(0.05)
            # still answering while it drains (refused connections would tell a prober nothing)
            assert status == "NOT_SERVING", status

            late_error: list[EditError] = []

            def late_request():
                try:
                    client.edit(photo_like_png(), "too late", steps=2, width=32, height=32, timeout=30)
                except EditError as exc:
                    late_error.append(exc)

            late = threading.Thread(target=late_request)
            late.start()
            rest = list(items)  # the in-flight edit runs to its result
            late.join(30)

        assert isinstance(rest[-1], EditResult) and rest[-1].sample_id == "in-flight"
        assert [p.step for p in [first, *rest[:-1]]] == list(range(1, 7))
        assert late_error and late_error[0].code == grpc.StatusCode.UNAVAILABLE, late_error
        assert proc.proc.wait(60) == 0
        log = read_log(proc)
        assert "signal SIGTERM: draining" in log and "drained: all accepted edits finished" in log
    finally:
        proc.kill()
        channel.close()
