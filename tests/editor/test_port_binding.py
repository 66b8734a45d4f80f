"""One port, one server (issue 27, item 5): a port another process holds is a one-line start-up error.

gRPC binds with SO_REUSEPORT by default, so a second editor on a served port used to start, and the
kernel split new connections between two models; a port held by an ordinary socket gave a 22-line
traceback. Real processes and sockets on loopback, no mocks: the refused process prints exactly one
line on stderr, exits 2, and fails at bind, before the model loads (it never logs "listening on").
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request

import pytest

from editfleet_common.channels import health_status, make_channel
from editfleet_common.grpc_server import ServiceHost
from editfleet_common.launch import REPO_ROOT, free_port, venv_python
from editfleet_common.metrics import EditorMetrics
from editfleet_common.ports import PortUnavailable
from editor_service.client import EditorClient

from .conftest import THREADS, TINY_MODEL, start_editor, tiny_model  # noqa: F401 - fixture


def in_use(port: int) -> str:
    return (f"error: port {port} on 127.0.0.1 is already in use (another editfleet service?); "
            "choose another with --port")


def metrics_in_use(port: int) -> str:
    return (f"error: metrics port {port} on 127.0.0.1 is already in use (another editfleet service?); "
            "choose another with --metrics-port")


def run_editor(*args: str) -> subprocess.CompletedProcess:
    """`python -m editor_service` on the tiny model, run to its end (a refused start ends at once)."""
    argv = [venv_python("editor"), "-m", "editor_service", "--model", str(TINY_MODEL), "--device", "cpu",
            "--threads", THREADS, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": THREADS, "PYTHONUNBUFFERED": "1"})


def assert_refused(result: subprocess.CompletedProcess, line: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stderr.splitlines() == [line], result.stderr  # one line: no traceback, no gRPC log, no load
    assert result.stdout == ""


@pytest.fixture
def held_port(request):
    """A port an ordinary socket holds: listening, or only bound."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    if request.param == "listening":
        sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def test_a_second_editor_on_a_served_port_is_refused_and_the_first_keeps_serving(tiny_model, tmp_path):  # noqa: F811
    metrics_port = free_port()
    first = start_editor(tmp_path, "--metrics-port", str(metrics_port))
    try:
        first.wait_healthy(300)
        started = time.monotonic()
        second = run_editor("--port", str(first.port))
        assert_refused(second, in_use(first.port))
        # its metrics port, held by the first's (http.server against http.server, both SO_REUSEADDR)
        third = run_editor("--port", "0", "--metrics-port", str(metrics_port))
        assert_refused(third, metrics_in_use(metrics_port))
        assert time.monotonic() - started < 30  # both refused at bind, without loading the model

        assert first.alive()  # and it still serves, on both ports
        with EditorClient(first.address) as client:
            assert client.health() == "SERVING"
            assert client.info().model["model"] == str(tiny_model)
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
        assert 'service="editor"' in text
    finally:
        assert first.stop() == 0


@pytest.mark.parametrize("held_port", ["listening", "bound"], indirect=True)
def test_a_port_an_ordinary_socket_holds_is_one_line(held_port):
    assert_refused(run_editor("--port", str(held_port)), in_use(held_port))


@pytest.mark.parametrize("held_port", ["listening"], indirect=True)
def test_a_taken_metrics_port_is_one_line(held_port):
    assert_refused(run_editor("--port", "0", "--metrics-port", str(held_port)), metrics_in_use(held_port))


def test_the_metrics_port_cannot_be_the_grpc_port():
    port = str(free_port())
    result = run_editor("--port", port, "--metrics-port", port)
    assert result.returncode == 2 and "--metrics-port" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr


# In-process, on the shared frame itself (no model): what both services get.

def test_service_host_binds_without_reuseport_and_port_0_still_picks_a_free_port():
    first = ServiceHost(service_names=["test.Frame"], port=0, max_workers=2, grace_s=0)
    assert first.port > 0
    first.start()
    try:
        with pytest.raises(PortUnavailable, match=rf"^port {first.port} on 127.0.0.1 is already in use"):
            ServiceHost(service_names=["test.Frame"], port=first.port, max_workers=2, grace_s=0)
        other = ServiceHost(service_names=["test.Frame"], port=0, max_workers=2, grace_s=0)
        assert other.port not in (0, first.port)
        other.server.stop(None)
        channel = make_channel(f"127.0.0.1:{first.port}")
        assert health_status(channel) == "NOT_SERVING"  # the first still answers
        channel.close()
    finally:
        first.stop()


def test_a_port_in_time_wait_is_free():
    """A restarted service gets its port back at once: the probe binds with SO_REUSEADDR, as gRPC's
    listener does (its accepted connections inherit it), so connections its predecessor closed, left
    in TIME_WAIT, do not count as a taken port."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server's end closes first: it waits in TIME_WAIT
    time.sleep(0.05)
    client.close()
    listener.close()
    with socket.socket() as plain:  # the port is not simply free (a bind without SO_REUSEADDR fails)
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))
    host = ServiceHost(service_names=["test.Frame"], port=port, max_workers=2, grace_s=0)
    assert host.port == port
    host.server.stop(None)


def test_metrics_serve_on_a_taken_port_is_one_line():
    first, second = EditorMetrics(), EditorMetrics()
    port = free_port()
    first.serve(port)
    try:
        with pytest.raises(PortUnavailable) as caught:
            second.serve(port)
        assert f"error: {caught.value}" == metrics_in_use(port)
    finally:
        first.stop_serving()
