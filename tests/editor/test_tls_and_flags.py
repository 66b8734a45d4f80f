"""Command-line checks of `python -m editor_service`, and an edit over mutual TLS."""

from __future__ import annotations

import shutil
import subprocess

import grpc
import pytest

from editfleet_common.channels import ClientTls, make_channel, wait_serving
from editor_service.__main__ import parse_args
from editor_service.client import EditError, EditorClient

from .conftest import photo_like_png, start_editor


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--tls-cert", "c.pem"], "--tls-cert and --tls-key go together"),
        (["--min-steps", "5", "--max-steps", "4"], "need 1 <= min <= max"),
        (["--default-steps", "300"], "--default-steps 300 outside"),
        (["--load-format", "gguf"], "invalid choice"),
        (["--forecast-interval", "0"], "--forecast-interval 0: need >= 1"),
        (["--default-guidance", "nan"], "--default-guidance: nan is not a finite number"),
        (["--default-guidance", "-2"], "--default-guidance: -2.0 outside the allowed range [0, 100]"),
    ],
)
def test_bad_flags_are_refused_with_a_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_args(["--model", "m", *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory):
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=editfleet test CA", cwd=directory)
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    (directory / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        _openssl("req", "-new", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=directory)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext", cwd=directory)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make test certificates")
def test_edit_over_mutual_tls(tiny_model, tmp_path):
    make_certificates(tmp_path)
    proc = start_editor(
        tmp_path,
        "--tls-cert", str(tmp_path / "server.pem"),
        "--tls-key", str(tmp_path / "server.key"),
        "--tls-client-ca", str(tmp_path / "ca.pem"),
        name="editor-tls",
    )
    mtls = ClientTls(str(tmp_path / "ca.pem"), str(tmp_path / "client.pem"), str(tmp_path / "client.key"))
    try:
        channel = make_channel(proc.address, tls=mtls)
        wait_serving(channel, 240, alive=proc.alive)
        channel.close()
        with EditorClient(proc.address, tls=mtls) as client:
            result = client.edit(photo_like_png(), "Make the square red", steps=2, seed=1, width=32, height=32)
        assert (result.width, result.height) == (32, 32)

        # without a client certificate, or without TLS at all, nothing gets through
        for tls in (ClientTls(str(tmp_path / "ca.pem")), None):
            with EditorClient(proc.address, tls=tls) as client:
                with pytest.raises(EditError) as refused:
                    client.info(timeout=5)
            assert refused.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        assert proc.stop(grace=20) == 0


def test_client_cli_names_a_missing_tls_file_instead_of_a_traceback(tmp_path, capsys):
    from editor_service.client import main

    image = tmp_path / "in.png"
    image.write_bytes(b"not read past the TLS files")
    missing = tmp_path / "no-ca.pem"
    code = main(["--address", "127.0.0.1:1", "--image", str(image), "--instruction", "x",
                 "--out", str(tmp_path / "out.png"), "--tls-ca", str(missing)])
    assert code == 2
    assert f"--tls-ca {missing}" in capsys.readouterr().err
