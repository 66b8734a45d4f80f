"""k8s/: the kustomizations render, every object is valid for the Kubernetes API, and the
properties the fleet relies on hold (for the base and the 4-GPU overlay alike)."""

from __future__ import annotations

import copy
import json
import re

import kubernetes_validate
import pytest
import yaml
from k8s_render import BASE, OVERLAY_4GPU, REPO, arg_value, find, render

from orchestrator.config import build_config
from orchestrator.fleet.kubernetes import fleet_options

KUSTOMIZATIONS = {"base": BASE, "4gpu": OVERLAY_4GPU}
GPU_SETS = ("editor", "scorer")
# One 1024² Qwen-Image-Edit edit at 50 steps with true CFG on an H100: 50 x 0.905 s + ~0.6 s
# (shared/reference/gpu-baselines.md). Termination grace must outlast it.
ONE_EDIT_S = 50 * 0.905 + 0.6
# Oldest Kubernetes the manifests must be valid for (native gRPC probes are GA since 1.27), and the
# newest schema the validator ships.
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())


@pytest.fixture(params=sorted(KUSTOMIZATIONS), scope="module")
def docs(request):
    return render(KUSTOMIZATIONS[request.param])


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def container(workload: dict) -> dict:
    (c,) = pod_spec(workload)["containers"]
    return c


def test_every_object_validates_against_the_kubernetes_schema(docs):
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(["Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Service", "Service",
                            "PersistentVolumeClaim", "PersistentVolumeClaim", "PersistentVolumeClaim",
                            "PersistentVolumeClaim", "StatefulSet", "StatefulSet", "Job"])
    for version in K8S_VERSIONS:
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)
    namespaced = [d for d in docs if d["kind"] != "Namespace"]
    assert {d["metadata"]["namespace"] for d in namespaced} == {find(docs, "Namespace")["metadata"]["name"]}


def test_the_schema_check_catches_mistakes():
    sts = copy.deepcopy(find(render(BASE), "StatefulSet", "editor"))
    sts["spec"]["podManagmentPolicy"] = "Parallel"  # typo: unknown field
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, K8S_VERSIONS[-1], strict=True)
    sts = copy.deepcopy(find(render(BASE), "StatefulSet", "editor"))
    container(sts)["readinessProbe"]["grpc"]["port"] = "grpc"  # gRPC probes take no named port
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, K8S_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("name", GPU_SETS)
def test_gpu_statefulsets_start_at_zero_in_parallel_one_gpu_each(docs, name):
    sts = find(docs, "StatefulSet", name)
    assert sts["spec"]["replicas"] == 0, "the orchestrator scales up; idle GPUs stay free"
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    resources = container(sts)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1
    if "nvidia.com/gpu" in resources.get("requests", {}):
        assert resources["requests"]["nvidia.com/gpu"] == 1, "GPU requests must equal limits"
    tolerations = pod_spec(sts).get("tolerations", [])
    assert any(t["key"] == "nvidia.com/gpu" for t in tolerations)


@pytest.mark.parametrize("name", GPU_SETS)
def test_headless_service_gives_each_pod_its_own_name(docs, name):
    sts = find(docs, "StatefulSet", name)
    service = find(docs, "Service", sts["spec"]["serviceName"])
    assert service["spec"]["clusterIP"] == "None", "headless: <pod>.<service> DNS names, streams pinned to a pod"
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    (grpc_port,) = [p for p in container(sts)["ports"] if p["name"] == "grpc"]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [grpc_port["containerPort"]]


@pytest.mark.parametrize("name", GPU_SETS)
def test_metrics_port_is_a_named_container_port_with_scrape_annotations(docs, name):
    sts = find(docs, "StatefulSet", name)
    c = container(sts)
    port = int(arg_value(c["args"], "--metrics-port"))
    assert port and [p["containerPort"] for p in c["ports"] if p["name"] == "metrics"] == [port]
    annotations = sts["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"prometheus.io/scrape": "true", "prometheus.io/port": str(port),
                           "prometheus.io/path": "/metrics"}


@pytest.mark.parametrize("name", GPU_SETS)
def test_grpc_probes_on_the_served_port_sized_for_model_load(docs, name):
    c = container(find(docs, "StatefulSet", name))
    port = int(arg_value(c["args"], "--port"))
    assert arg_value(c["args"], "--host") == "0.0.0.0"
    assert [p["containerPort"] for p in c["ports"] if p["name"] == "grpc"] == [port]
    for probe in ("startupProbe", "readinessProbe"):
        assert c[probe]["grpc"]["port"] == port and isinstance(c[probe]["grpc"]["port"], int)
        assert "service" not in c[probe]["grpc"], "overall health: SERVING once the model is loaded"
    startup = c["startupProbe"]
    # Loading ~58 GB of weights from a network volume at 0.5-1 GB/s, plus warm-up: minutes.
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
    assert "livenessProbe" not in c, "a liveness kill in the middle of a long edit loses it"


@pytest.mark.parametrize("name", GPU_SETS)
def test_termination_grace_outlasts_the_servers_drain_and_one_edit(docs, name):
    sts = find(docs, "StatefulSet", name)
    server_grace = float(arg_value(container(sts)["args"], "--grace"))
    pod_grace = pod_spec(sts)["terminationGracePeriodSeconds"]
    assert pod_grace > server_grace, "Kubernetes must not SIGKILL before the server's own drain ends"
    if name == "editor":
        assert server_grace > ONE_EDIT_S


def test_weights_are_read_only_and_only_the_job_writes_outputs(docs):
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    assert claims == {"editfleet-models", "editfleet-benchmarks", "editfleet-runs", "editfleet-compile-cache"}
    for name in GPU_SETS:
        sts = find(docs, "StatefulSet", name)
        volumes = {v["name"]: v for v in pod_spec(sts)["volumes"]}
        pvcs = {n: v["persistentVolumeClaim"] for n, v in volumes.items() if "persistentVolumeClaim" in v}
        if name == "editor":
            # the editors share one writable compile cache: the first of a kind writes, the rest read
            (cache_volume,) = [n for n, p in pvcs.items() if p["claimName"] == "editfleet-compile-cache"]
            (cache_mount,) = [m for m in container(sts)["volumeMounts"] if m["name"] == cache_volume]
            assert not cache_mount.get("readOnly", False) and not pvcs.pop(cache_volume).get("readOnly", False)
            assert arg_value(container(sts)["args"], "--compile-cache") == cache_mount["mountPath"]
        assert [p["claimName"] for p in pvcs.values()] == ["editfleet-models"]
        (volume_name, claim), = pvcs.items()
        assert claim["readOnly"] is True
        (mount,) = [m for m in container(sts)["volumeMounts"] if m["name"] == volume_name]
        assert mount["readOnly"] is True
        assert arg_value(container(sts)["args"], "--model").startswith(mount["mountPath"] + "/")
    job = find(docs, "Job")
    volumes = {v["name"]: v for v in pod_spec(job)["volumes"]}
    mounts = {m["name"]: m for m in container(job)["volumeMounts"]}
    by_claim = {v["persistentVolumeClaim"]["claimName"]: n for n, v in volumes.items() if "persistentVolumeClaim" in v}
    assert set(by_claim) == {"editfleet-benchmarks", "editfleet-runs"}
    assert mounts[by_claim["editfleet-benchmarks"]]["readOnly"] is True
    assert not mounts[by_claim["editfleet-runs"]].get("readOnly", False)


def _dockerfile_user() -> int:
    users = {re.search(r"^USER (\d+):(\d+)$", (REPO / "docker" / f"{svc}.Dockerfile").read_text(), re.M).group(1)
             for svc in ("editor", "scorer", "orchestrator")}
    assert len(users) == 1
    return int(users.pop())


def test_every_pod_runs_as_the_images_non_root_user(docs):
    uid = _dockerfile_user()
    assert uid != 0
    for workload in [d for d in docs if d["kind"] in ("StatefulSet", "Job")]:
        security = pod_spec(workload)["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] == uid
        assert security["fsGroup"] == uid, "volumes writable/readable for the service user"
        for c in pod_spec(workload)["containers"]:
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_rbac_is_limited_to_what_the_fleet_uses(docs):
    assert not [d for d in docs if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    role = find(docs, "Role")
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"]), tuple(sorted(r["verbs"])), tuple(r.get("resourceNames", [])))
             for r in role["rules"]}
    assert rules == {
        (("apps",), ("statefulsets/scale",), ("get", "patch", "update"), ("editor", "scorer")),
        (("apps",), ("statefulsets",), ("get", "list", "watch"), ()),
        (("",), ("pods",), ("get", "list", "watch"), ()),
    }
    binding = find(docs, "RoleBinding")
    account = find(docs, "ServiceAccount")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]
    assert pod_spec(find(docs, "Job"))["serviceAccountName"] == account["metadata"]["name"]
    for name in GPU_SETS:  # the services never talk to the API
        assert pod_spec(find(docs, "StatefulSet", name))["automountServiceAccountToken"] is False
    # The scale rule names exactly the sets the fleet scales.
    assert set(role["rules"][0]["resourceNames"]) == {d["metadata"]["name"] for d in docs if d["kind"] == "StatefulSet"}


def test_run_config_is_a_valid_kubernetes_run_matching_the_statefulsets(docs, request):
    job = find(docs, "Job")
    args = container(job)["args"]
    assert args[0] == "run"
    config_path = arg_value(args, "--config")
    (mount,) = [m for m in container(job)["volumeMounts"] if config_path.startswith(m["mountPath"] + "/")]
    (volume,) = [v for v in pod_spec(job)["volumes"] if v["name"] == mount["name"]]
    config_map = find(docs, "ConfigMap", volume["configMap"]["name"])  # the generated, hashed name
    text = config_map["data"][config_path[len(mount["mountPath"]) + 1:]]

    data = yaml.safe_load(text)
    data["_origin"] = "k8s run.yaml"
    config = build_config(data)
    assert config.fleet.kind == "kubernetes"
    options = fleet_options(config.fleet.options)
    editor = find(docs, "StatefulSet", options["editor_statefulset"])
    scorer = find(docs, "StatefulSet", options["scorer_statefulset"])
    assert config.editor.model == arg_value(container(editor)["args"], "--model")
    assert config.judge.model == arg_value(container(scorer)["args"], "--model")
    assert config.output.startswith("/runs/") and config.benchmark.path.startswith("/benchmarks/")
    # Scale-down waits at least as long as the pods may take to drain.
    assert options["stop_timeout_s"] > pod_spec(editor)["terminationGracePeriodSeconds"]
    assert pod_spec(job)["terminationGracePeriodSeconds"] > pod_spec(editor)["terminationGracePeriodSeconds"]
    expected_editors = {"base": 1, "4gpu": 4}[request.node.callspec.params["docs"]]
    assert config.editor_count == expected_editors


def test_overlay_fits_one_four_gpu_node():
    docs = render(OVERLAY_4GPU)
    editor, scorer = find(docs, "StatefulSet", "editor"), find(docs, "StatefulSet", "scorer")
    config = yaml.safe_load(find(docs, "ConfigMap")["data"]["run.yaml"])
    gpus_per_editor = container(editor)["resources"]["limits"]["nvidia.com/gpu"]
    node = pod_spec(editor)["nodeSelector"]
    assert config["devices"]["editors"] * gpus_per_editor == int(node["nvidia.com/gpu.count"]) == 4
    assert pod_spec(scorer)["nodeSelector"] == node
    assert arg_value(container(scorer)["args"], "--max-batch") == str(config["judge"]["max_batch"])
    assert {d["spec"].get("storageClassName") for d in docs if d["kind"] == "PersistentVolumeClaim"} == {"local-path"}


COMMANDS = {"editor": "editfleet-editor", "scorer": "editfleet-scorer", "orchestrator": "orchestrator"}


@pytest.mark.parametrize("service", ["editor", "scorer", "orchestrator"])
def test_dockerfiles_exec_entrypoint_install_the_wheel_with_their_own_extra_only(service):
    text = (REPO / "docker" / f"{service}.Dockerfile").read_text()
    (entry,) = re.findall(r"^ENTRYPOINT (.+)$", text, re.M)
    # the console command is a script run by /opt/venv/bin/python: python is PID 1 and gets SIGTERM
    assert json.loads(entry) == [f"/opt/venv/bin/{COMMANDS[service]}"], "exec form, the wheel's console command"
    assert set(re.findall(r"editfleet-\*\.whl\)\[([\w,]+)\]", text)) == {service}, "the wheel, with its own extra only"
    assert ("requirements-torch.txt" in text) == (service != "orchestrator")
    assert re.search(r"^ARG BASE_IMAGE=", text, re.M)
    assert "PYTHONPATH" not in text


@pytest.mark.parametrize("service", ["editor", "scorer", "orchestrator"])
def test_images_copy_no_source_tree(service):
    text = (REPO / "docker" / f"{service}.Dockerfile").read_text()
    copies = re.findall(r"^COPY (.+)$", text, re.M)
    assert all(line.split()[:-1] == ["requirements-torch.txt"] for line in copies), copies
    context = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert context[0] == "*" and set(context[1:]) == {"!dist/*.whl", "!requirements-torch.txt", "!.cache/wheelhouse/"}


def test_the_orchestrator_image_has_no_torch():
    text = (REPO / "docker" / "orchestrator.Dockerfile").read_text()
    assert '! python -c "import torch"' in text
    assert "editor_service.client" in text and "scorer_service.client" in text


def test_the_api_judge_overlay_runs_the_scorer_as_an_api_client_with_the_key_from_a_secret():
    docs = render(REPO / "k8s" / "overlays" / "api-judge")
    for version in K8S_VERSIONS:
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)
    scorer, job = find(docs, "StatefulSet", "scorer"), find(docs, "Job")
    c = container(scorer)
    assert "nvidia.com/gpu" not in c["resources"].get("limits", {}) and not pod_spec(scorer).get("tolerations")
    (key,) = c["env"]
    assert key["name"] == "OPENAI_API_KEY" and key["valueFrom"]["secretKeyRef"]["name"] == "editfleet-judge-api"
    data = yaml.safe_load(find(docs, "ConfigMap")["data"]["run.yaml"])
    data["_origin"] = "api-judge run.yaml"
    judge = build_config(data).judge
    assert judge.backend == "openai" == arg_value(c["args"], "--backend")
    # the pods' flags say what the run config says (the fleet refuses a mismatch at the run's start)
    for key_name, flag in (("model", "--model"), ("base_url", "--base-url"), ("api_key_env", "--api-key-env"),
                           ("max_concurrency", "--max-concurrency")):
        assert str(getattr(judge, key_name)) == arg_value(c["args"], flag), key_name
    # the orchestrator never holds the key: no secret in its Job, only the variable's name in its config
    assert "secretKeyRef" not in yaml.safe_dump(job)


def test_the_split_judge_overlay_gives_each_scorer_pod_the_gpus_its_run_config_names():
    docs = render(REPO / "k8s" / "overlays" / "split-judge")
    for version in K8S_VERSIONS:
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)
    c = container(find(docs, "StatefulSet", "scorer"))
    data = yaml.safe_load(find(docs, "ConfigMap")["data"]["run.yaml"])
    data["_origin"] = "split-judge run.yaml"
    judge = build_config(data).judge
    # the pod's GPUs, its --gpus and the run config's judge.gpus_per_replica are one number
    assert judge.gpus_per_replica == 2 == int(arg_value(c["args"], "--gpus")) == c["resources"]["limits"]["nvidia.com/gpu"]
    for key_name, flag in (("model", "--model"), ("max_batch", "--max-batch")):
        assert str(getattr(judge, key_name)) == arg_value(c["args"], flag), key_name


def test_the_api_editor_overlay_runs_one_pod_without_gpus_with_the_key_from_a_secret():
    from editfleet_common import settings

    docs = render(REPO / "k8s" / "overlays" / "api-editor")
    for version in K8S_VERSIONS:
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)
    editor, job = find(docs, "StatefulSet", "editor"), find(docs, "Job")
    c, spec = container(editor), pod_spec(editor)
    assert not any("nvidia.com/gpu" in c["resources"].get(kind, {}) for kind in ("limits", "requests"))
    assert not spec.get("tolerations") and not [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
    (key,) = [v for v in c["env"] if "valueFrom" in v]
    assert key["name"] == "OPENAI_API_KEY" and key["valueFrom"]["secretKeyRef"]["name"] == "editfleet-editor-api"
    assert not [v for v in c["env"] if v["name"] == "OPENAI_API_KEY" and "value" in v], "the key is never in a manifest"
    data = yaml.safe_load(find(docs, "ConfigMap")["data"]["run.yaml"])
    data["_origin"] = "api-editor run.yaml"
    config = build_config(data)
    assert config.api_editor and config.editor.backend == "openai-images"
    # every flag of the API editor's Setting table says what the run config says (the fleet refuses a
    # mismatch at the run's start), and the request slots are the pod's --max-concurrency
    for setting in settings.API_EDITOR_SETTINGS:
        want, have = getattr(config.editor, setting.key), arg_value(c["args"], setting.flag)
        assert have is not None and type(want)(have) == want, setting.key
    assert config.editor_count == 8 == int(arg_value(c["args"], "--max-concurrency"))
    assert "secretKeyRef" not in yaml.safe_dump(job) and "OPENAI_API_KEY" not in yaml.safe_dump(job)
    assert "judge" in data and config.judge.backend == "transformers"  # the judge: the base's local VLM
