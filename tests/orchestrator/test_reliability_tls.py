"""TLS and mutual TLS between the orchestrator and the services it does not start (static fleet):
`editor.tls` / `judge.tls` = {ca, cert, key, server_name}, with a CA made here by the openssl CLI."""

from __future__ import annotations

import json
import shutil
import subprocess

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from editfleet_common.channels import ClientTls, make_channel, wait_serving
from editfleet_common.launch import ServiceProcess, free_port, venv_python
from orchestrator.config import ConfigError, build_config, load_yaml

from conftest import EXAMPLE, REPO, TINY_EDITOR, TINY_JUDGE, orchestrator_cmd, require_tiny_models

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory):
    """A throw-away CA; a server certificate for 127.0.0.1 and the name 'editfleet.test'; a client one."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "1", "-subj", "/CN=test CA",
             cwd=directory)
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:editfleet.test\nextendedKeyUsage=serverAuth\n")
    (directory / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        _openssl("req", "-new", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}",
                 cwd=directory)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "1", "-extfile", f"{name}.ext", cwd=directory)


def lines(path):
    return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]


def test_tls_config_is_checked(tmp_path):
    (tmp_path / "ca.pem").write_text("x")
    base = {"benchmark": {"path": "b.jsonl"}, "fleet": {"kind": "static", "editor_addresses": ["h:1"]}}

    def config_error(**sections):
        data = {**base, **sections, "_origin": "c.yaml"}
        with pytest.raises(ConfigError) as err:
            build_config(data)
        return str(err.value)

    ca = str(tmp_path / "ca.pem")
    assert "editor.tls.ca is required" in config_error(editor={"tls": {"cert": ca, "key": ca}})
    assert "judge.tls.cert and judge.tls.key go together" in config_error(judge={"tls": {"ca": ca, "cert": ca}})
    assert "editor.tls.key: no such file: /nope.key" in config_error(editor={"tls": {"ca": ca, "cert": ca, "key": "/nope.key"}})
    assert "unknown key(s) editor.tls.certificate" in config_error(editor={"tls": {"ca": ca, "certificate": ca}})
    local = {"fleet": {"kind": "local"}, "editor": {"tls": {"ca": ca}}}
    assert "the local fleet starts its services on loopback without TLS" in config_error(**local)
    # file paths in a YAML file are relative to that file
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({**base, "judge": {"tls": {"ca": "ca.pem", "server_name": "n"}}}))
    config = build_config(load_yaml(tmp_path / "c.yaml"))
    assert config.judge.tls == {"ca": ca, "server_name": "n"}


def start_tls_service(argv, port, log, tls: ClientTls) -> ServiceProcess:
    proc = ServiceProcess(log.stem, argv, port, log_path=log).start()
    channel = make_channel(proc.address, tls=tls)
    try:
        wait_serving(channel, 240, alive=proc.alive)
    except BaseException:
        proc.kill()
        raise
    finally:
        channel.close()
    return proc


@needs_openssl
def test_static_fleet_over_mutual_tls(tmp_path):
    require_tiny_models()
    certs = tmp_path / "certs"
    certs.mkdir()
    make_certificates(certs)
    server_tls = ["--tls-cert", str(certs / "server.pem"), "--tls-key", str(certs / "server.key"),
                  "--tls-client-ca", str(certs / "ca.pem")]
    client = ClientTls(str(certs / "ca.pem"), str(certs / "client.pem"), str(certs / "client.key"))
    port_e, port_s = free_port(), free_port()
    editor = scorer = None
    try:
        editor = start_tls_service([venv_python("editor"), "-m", "editor_service", "--model", str(TINY_EDITOR),
                                    "--port", str(port_e), "--threads", "1", *server_tls],
                                   port_e, tmp_path / "editor.log", client)
        scorer = start_tls_service([venv_python("scorer"), "-m", "scorer_service", "--model", str(TINY_JUDGE),
                                    "--port", str(port_s), "--threads", "1", "--max-new-tokens", "8", *server_tls],
                                   port_s, tmp_path / "scorer.log", client)
        tls = {"ca": "certs/ca.pem", "cert": "certs/client.pem", "key": "certs/client.key"}
        config = {
            "benchmark": {"path": str(EXAMPLE), "limit": 2},
            "editor": {"steps": 2, "width": 64, "height": 64, "tls": tls},
            # the judge is dialled by 127.0.0.1 but checked against the certificate's DNS name
            "judge": {"tls": {**tls, "server_name": "editfleet.test"}},
            "fleet": {"kind": "static", "editor_addresses": [editor.address], "scorer_address": scorer.address},
            "output": "out",
        }
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        done = subprocess.run(orchestrator_cmd("run", "--config", str(tmp_path / "config.yaml"), "--progress", "plain",
                                               "--allow-failures"),  # the untaught judge: PARSE_FAILED
                              cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        out = tmp_path / "out"
        assert [l["status"] for l in lines(out / "edits.jsonl")] == ["ok", "ok"]
        assert len(lines(out / "scores.jsonl")) == 2
        assert json.loads((out / "manifest.json").read_text())["fleet"]["tls"] == {"editors": True, "scorer": True}
        # the same services refuse a client without a certificate
        channel = make_channel(editor.address, tls=ClientTls(str(certs / "ca.pem")))
        with pytest.raises(grpc.RpcError) as refused:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        channel.close()
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        for proc in (editor, scorer):
            if proc is not None:
                proc.stop(20)
