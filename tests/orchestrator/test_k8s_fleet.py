"""The Kubernetes fleet, driven through the real `kubernetes` client over HTTP against a local
stand-in for the API server (k8s_fake_api.py) seeded with the StatefulSets and the Role that
k8s/base renders to. No cluster here: pods are simulated, nothing is scheduled or probed."""

from __future__ import annotations

import re
import subprocess
import time
from types import SimpleNamespace

import pytest
from k8s_fake_api import FakeKubeAPI, Scenario, _is_ready
from k8s_render import BASE, REPO, find, render

from orchestrator.fleet import FleetError, make_fleet
from orchestrator.fleet.kubernetes import fleet_options

NS = "editfleet"


def base_role_rules() -> list[dict]:
    return find(render(BASE), "Role")["rules"]


@pytest.fixture
def cluster(tmp_path):
    """make(editor=Scenario(...), scorer=..., rules=...) -> (fake API, fleet)."""
    started = []

    def make(editor: Scenario | None = None, scorer: Scenario | None = None, rules=None, **options):
        docs = render(BASE)
        api = FakeKubeAPI(role_rules=rules if rules is not None else base_role_rules(), namespace=NS)
        api.add_statefulset(find(docs, "StatefulSet", "editor"), editor)
        api.add_statefulset(find(docs, "StatefulSet", "scorer"), scorer)
        api.start()
        started.append(api)
        options = {"kubeconfig": api.kubeconfig(tmp_path / "kubeconfig"), "ready_timeout_s": 10,
                   "stop_timeout_s": 10, "stuck_after_s": 0.5, **options}
        config = SimpleNamespace(fleet=SimpleNamespace(kind="kubernetes", options=options))
        fleet = make_fleet(config, tmp_path / "logs")
        return api, fleet

    yield make
    for api in started:
        api.stop()


def scale_patches(api: FakeKubeAPI, name: str) -> list[tuple[str, int]]:
    return [(r.content_type, r.body["spec"]["replicas"]) for r in api.requests
            if r.method == "PATCH" and r.path.endswith(f"/statefulsets/{name}/scale")]


def test_editors_up_down_then_judge_up_down(cluster):
    api, fleet = cluster(editor=Scenario(ready_after_s=0.4, terminate_after_s=0.4))

    endpoints = fleet.start_editors(3)
    assert [(e.name, e.address) for e in endpoints] == [
        (f"editor-{i}", f"editor-{i}.editor.{NS}.svc:50051") for i in range(3)
    ]
    assert api.replicas("editor") == 3
    assert all(_is_ready(api.pods[e.name]) for e in endpoints)
    assert all(fleet.editor_alive(e) for e in endpoints)
    described = fleet.describe()
    assert described["namespace"] == NS and sorted(described["editors"]) == ["editor-0", "editor-1", "editor-2"]
    assert described["editors"]["editor-0"]["uid"] == api.pods["editor-0"]["metadata"]["uid"]

    fleet.stop_editors()
    returned = time.monotonic()
    assert api.pod_names("editor") == [], "stop_editors returns only once the pods are gone"
    assert max(api.deleted_at[f"editor-{i}"] for i in range(3)) <= returned
    assert not any(fleet.editor_alive(e) for e in endpoints)

    scorer = fleet.start_scorer()
    assert (scorer.name, scorer.address) == ("scorer", f"scorer-0.scorer.{NS}.svc:50052")
    (scorer_up,) = [r.at for r in api.requests if r.method == "PATCH" and r.path.endswith("/scorer/scale")]
    assert scorer_up > max(api.deleted_at[f"editor-{i}"] for i in range(3)), "judge only after the editors left"
    fleet.stop_scorer()
    assert api.pod_names("scorer") == []

    assert scale_patches(api, "editor") == [("application/merge-patch+json", 3), ("application/merge-patch+json", 0)]
    assert scale_patches(api, "scorer") == [("application/merge-patch+json", 1), ("application/merge-patch+json", 0)]
    assert [r for r in api.requests if r.status in (401, 403)] == [], "everything within the Role from k8s/base"
    assert any(r.query.get("watch") == "true" for r in api.requests), "waits by watching, not only polling"
    fleet.close()  # nothing left to do: no further scale requests
    assert len(scale_patches(api, "editor")) == 2


def test_unschedulable_pods_time_out_with_the_schedulers_reason(cluster):
    api, fleet = cluster(editor=Scenario(outcome="unschedulable"), ready_timeout_s=1.5)
    t0 = time.monotonic()
    with pytest.raises(FleetError) as err:
        fleet.start_editors(2)
    message = str(err.value)
    assert 1.5 <= time.monotonic() - t0 < 8
    assert "not Ready after 1.5s (fleet.options.ready_timeout_s)" in message
    for pod in ("editor-0", "editor-1"):
        assert f"{pod}: Pending; Unschedulable: 0/1 nodes are available: 1 Insufficient nvidia.com/gpu." in message
    assert api.replicas("editor") == 0, "what was asked for is given back"


def test_image_pull_backoff_fails_early_with_the_image_name(cluster):
    api, fleet = cluster(editor=Scenario(outcome="image_pull"), ready_timeout_s=60, stuck_after_s=0.5)
    t0 = time.monotonic()
    with pytest.raises(FleetError) as err:
        fleet.start_editors(1)
    assert time.monotonic() - t0 < 10, "a stuck pull must not wait for the long model-load timeout"
    message = str(err.value)
    assert re.search(r"editor pod editor-0 stuck in ImagePullBackOff for \d+s \(fleet.options.stuck_after_s\)", message)
    assert 'container editor ImagePullBackOff: Back-off pulling image "localhost/editfleet-editor:dev"' in message
    assert api.replicas("editor") == 0


def test_crash_loop_reports_the_last_exit(cluster):
    api, fleet = cluster(scorer=Scenario(outcome="crash_loop"), ready_timeout_s=60, stuck_after_s=0.3)
    with pytest.raises(FleetError) as err:
        fleet.start_scorer()
    message = str(err.value)
    assert "scorer pod scorer-0 stuck in CrashLoopBackOff" in message and "CrashLoopBackOff: back-off 10s restarting" in message
    assert "restarted 1x, last exit: Error (exit code 1): FileNotFoundError: /models/" in message
    assert api.replicas("scorer") == 0


def test_a_lost_pod_is_noticed_and_its_replacement_awaited(cluster):
    api, fleet = cluster(editor=Scenario(ready_after_s=0.3))
    endpoints = fleet.start_editors(2)
    old_uid = api.pods["editor-1"]["metadata"]["uid"]
    api.evict("editor-1")  # node lost: the controller recreates editor-1 under a new uid
    assert fleet.editor_alive(endpoints[0]) and not fleet.editor_alive(endpoints[1])
    replacement = fleet.restart_editor(endpoints[1])
    assert replacement == endpoints[1], "same pod name, same DNS name"
    assert api.pods["editor-1"]["metadata"]["uid"] != old_uid
    assert fleet.editor_alive(replacement)
    fleet.close()
    assert api.pod_names("editor") == [] and api.replicas("editor") == 0


def test_restarts_per_editor_are_bounded(cluster):
    api, fleet = cluster(editor=Scenario(ready_after_s=0.1), max_restarts_per_editor=1)
    (endpoint,) = fleet.start_editors(1)
    api.evict("editor-0")
    assert fleet.restart_editor(endpoint) == endpoint
    api.evict("editor-0")
    assert fleet.restart_editor(endpoint) is None, "out of restarts: taken out of the pool"
    fleet.close()


def test_close_scales_down_whatever_is_still_up(cluster):
    api, fleet = cluster(editor=Scenario(ready_after_s=0.1, terminate_after_s=0.2))
    fleet.start_editors(2)
    fleet.close()  # e.g. the run failed in the middle of the edit phase
    assert api.replicas("editor") == 0 and api.pod_names("editor") == []


def test_an_expired_watch_is_recovered_by_listing_again(cluster):
    api, fleet = cluster(editor=Scenario(ready_after_s=0.3))
    api.expire_watches_older_than = 10**9  # every watch answers ERROR 410 Expired
    endpoints = fleet.start_editors(2)
    assert [e.name for e in endpoints] == ["editor-0", "editor-1"]
    assert any(r.query.get("watch") == "true" for r in api.requests)
    fleet.close()


def test_rbac_denial_is_reported_with_the_api_message(cluster):
    rules = [dict(r, verbs=[v for v in r["verbs"] if v != "watch"]) if r["resources"] == ["pods"] else r
             for r in base_role_rules()]
    api, fleet = cluster(editor=Scenario(ready_after_s=5), rules=rules)
    with pytest.raises(FleetError) as err:
        fleet.start_editors(1)
    assert ('403 pods is forbidden: User "system:serviceaccount:editfleet:editfleet-orchestrator" cannot watch '
            'resource "pods"') in str(err.value)
    assert api.replicas("editor") == 0


def test_missing_statefulset_and_bad_options_are_clear_errors(cluster, tmp_path):
    api, fleet = cluster(editor_statefulset="editors")
    with pytest.raises(FleetError, match=r'reading StatefulSet editors .* 404 statefulsets.apps "editors" not found'):
        fleet.start_editors(1)
    with pytest.raises(FleetError, match=r"unknown option\(s\) ready_timeout for the kubernetes fleet"):
        fleet_options({"ready_timeout": 5})
    with pytest.raises(FleetError, match=r"fleet.options.editor_port: expected int, got '50051'"):
        fleet_options({"editor_port": "50051"})
    with pytest.raises(FleetError, match=r"fleet.options.stop_timeout_s: must be > 0"):
        fleet_options({"stop_timeout_s": 0})


def test_no_api_server_is_a_clear_error(cluster):
    api, fleet = cluster()
    api.stop()
    with pytest.raises(FleetError, match="cannot reach the API server"):
        fleet.start_editors(1)


def test_in_cluster_credentials_over_tls(tmp_path, monkeypatch):
    """The Job's path: service-account token, CA and namespace files, HTTPS to the API server."""
    from kubernetes.config import incluster_config

    from orchestrator.fleet import kubernetes as k8s_fleet

    cert, key = tmp_path / "ca.crt", tmp_path / "tls.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    docs = render(BASE)
    api = FakeKubeAPI(role_rules=base_role_rules(), namespace=NS)
    api.add_statefulset(find(docs, "StatefulSet", "editor"), Scenario(ready_after_s=0.1, terminate_after_s=0.1))
    api.add_statefulset(find(docs, "StatefulSet", "scorer"))
    api.start(tls=(str(cert), str(key)))
    try:
        (tmp_path / "token").write_text(api.token)
        (tmp_path / "namespace").write_text(NS)
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(api.port))
        monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "token"))
        monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(cert))
        monkeypatch.setattr(k8s_fleet, "IN_CLUSTER_NAMESPACE_FILE", tmp_path / "namespace")
        config = SimpleNamespace(fleet=SimpleNamespace(kind="kubernetes", options={"ready_timeout_s": 10}))
        fleet = make_fleet(config, tmp_path)
        assert fleet.namespace == NS
        assert [e.address for e in fleet.start_editors(1)] == [f"editor-0.editor.{NS}.svc:50051"]
        fleet.close()
        assert api.pod_names("editor") == []
        assert [r for r in api.requests if r.status in (401, 403)] == []
    finally:
        api.stop()


def test_the_stand_in_serves_objects_shaped_like_the_real_api(cluster):
    """Every pod state and Scale the stand-in produced in these scenarios validates against the
    Kubernetes schema (strict: no unknown fields), so the fleet is tested on well-formed objects."""
    import kubernetes_validate

    version = kubernetes_validate.latest_version()
    for outcome in ("ready", "unschedulable", "image_pull", "crash_loop"):
        api, fleet = cluster(editor=Scenario(outcome=outcome), ready_timeout_s=0.6, stuck_after_s=0.3)
        try:
            fleet.start_editors(1)
        except FleetError:
            pass
        fleet.close()
        assert api.events, outcome
        for _rv, _kind, pod in api.events:
            kubernetes_validate.validate(pod, version, strict=True)
        kubernetes_validate.validate(api.scale_of(api.statefulsets["editor"]), version, strict=True)


def test_pods_that_never_leave_are_reported_with_their_state(cluster, monkeypatch):
    from orchestrator.fleet.kubernetes import KubernetesFleet

    monkeypatch.setattr(KubernetesFleet, "STOP_MARGIN_S", 0.0)
    api, fleet = cluster(editor=Scenario(ready_after_s=0.1, terminate_after_s=3600), stop_timeout_s=0.5)
    api.statefulsets["editor"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 1
    fleet.start_editors(1)
    t0 = time.monotonic()
    with pytest.raises(FleetError) as err:
        fleet.stop_editors()
    assert 1.0 <= time.monotonic() - t0 < 5, "waits out the pod's own grace period, not only stop_timeout_s"
    assert "editor pods still present 1s after scaling editor to 0 (their GPUs are not free yet)" in str(err.value)
    assert "editor-0: terminating (phase Running)" in str(err.value)


def test_judge_replicas_scale_the_scorer_statefulset(cluster):
    api, fleet = cluster(scorer=Scenario(ready_after_s=0.2, terminate_after_s=0.2))
    scorers = fleet.start_scorers(3)
    assert [(e.name, e.address) for e in scorers] == [
        ("scorer", f"scorer-0.scorer.{NS}.svc:50052"), ("scorer-1", f"scorer-1.scorer.{NS}.svc:50052"),
        ("scorer-2", f"scorer-2.scorer.{NS}.svc:50052")]
    assert api.replicas("scorer") == 3 and sorted(fleet.describe()["scorer"]) == ["scorer-0", "scorer-1", "scorer-2"]
    assert fleet.restart_scorer(scorers[1]) == scorers[1]  # the StatefulSet brings a lost replica back by name
    fleet.stop_scorer()
    assert api.pod_names("scorer") == []
    assert scale_patches(api, "scorer") == [("application/merge-patch+json", 3), ("application/merge-patch+json", 0)]


def test_an_api_editor_is_one_pod_whose_request_slots_share_it(tmp_path):
    """k8s/overlays/api-editor: the editor StatefulSet scaled to 1 (not N), editor.max_concurrency slots
    dialling that pod; a lost pod is awaited once for every slot; within the overlay's Role."""
    import threading

    docs = render(REPO / "k8s" / "overlays" / "api-editor")
    api = FakeKubeAPI(role_rules=find(docs, "Role")["rules"], namespace=NS)
    api.add_statefulset(find(docs, "StatefulSet", "editor"), Scenario(ready_after_s=0.2, terminate_after_s=0.2))
    api.add_statefulset(find(docs, "StatefulSet", "scorer"))
    api.start()
    try:
        options = {"kubeconfig": api.kubeconfig(tmp_path / "kubeconfig"), "ready_timeout_s": 10, "stop_timeout_s": 10}
        config = SimpleNamespace(fleet=SimpleNamespace(kind="kubernetes", options=options), api_editor=True,
                                 editor=SimpleNamespace(max_concurrency=8))
        fleet = make_fleet(config, tmp_path / "logs")
        slots = fleet.start_editors(8)
        assert [e.name for e in slots] == [f"API {i}" for i in range(1, 9)]
        assert {e.address for e in slots} == {f"editor-0.editor.{NS}.svc:50051"}
        assert api.replicas("editor") == 1 and api.pod_names("editor") == ["editor-0"]
        assert fleet.describe()["api_editor"] == {"slots": 8, "pod": "editor-0"}
        assert all(fleet.editor_alive(e) for e in slots)
        api.evict("editor-0")  # node lost: every slot's pod is gone at once
        assert not any(fleet.editor_alive(e) for e in slots)
        back = [None] * 3
        threads = [threading.Thread(target=lambda i=i: back.__setitem__(i, fleet.restart_editor(slots[i])))
                   for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert back == slots[:3] and fleet._restarts == {"editor-0": 1}, "one replacement awaited for all slots"
        assert all(fleet.editor_alive(e) for e in slots)
        fleet.stop_editors()
        assert api.pod_names("editor") == [] and api.replicas("editor") == 0
        assert scale_patches(api, "editor") == [("application/merge-patch+json", 1), ("application/merge-patch+json", 0)]
        assert [r for r in api.requests if r.status in (401, 403)] == []
        fleet.close()
    finally:
        api.stop()
