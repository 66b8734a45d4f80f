"""Services as Kubernetes StatefulSets (k8s/): the orchestrator scales them, it creates nothing.

Edit phase: scale the editor StatefulSet to N and wait until pods <set>-0 .. <set>-(N-1) are Ready
(their gRPC health is SERVING: native probes). Each editor is dialled by its own DNS name through
the headless Service, <pod>.<service>.<namespace>.svc:<port>, so every stream stays pinned to one
pod. After the edits: scale to 0 and wait until the pods are gone, i.e. their processes have
exited and the GPUs are free. Then the judge's StatefulSet goes 0 -> 1 -> 0 the same way.

A wait that runs out says why, pod by pod, in the pod's own words: Unschedulable (with the
scheduler's message), ImagePullBackOff, CrashLoopBackOff (with the last exit code), a probe that
never passed. A pod stuck in an image or crash loop fails the wait early (`stuck_after_s`).

An API editor (editor.backend openai-images / openai-chat-image; k8s/overlays/api-editor): the editor
StatefulSet runs the editor service in API mode, one pod without GPUs whose key comes from a Secret as
an environment variable (the manifests name the Secret, never the key). The fleet scales it to 1, not N,
and hands out editor.max_concurrency request slots ("API 1", ...), all dialling that one pod, whose
--max-concurrency is the same number (the run's check of the pods' flags refuses another); a slot whose
pod is gone waits for its replacement once, for every slot.

Options (config `fleet.options`): see OPTIONS. Credentials: in-cluster (the Job's ServiceAccount,
k8s/base/orchestrator-rbac.yaml lists all it may do) or a kubeconfig outside the cluster.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .base import Endpoint, Fleet, FleetError

log = logging.getLogger(__name__)

try:  # urllib3 (under the kubernetes client) raises its own errors for timeouts and retries
    from urllib3.exceptions import HTTPError as _Urllib3Error
except ImportError:  # pragma: no cover
    _Urllib3Error = OSError
_NETWORK_ERRORS = (OSError, _Urllib3Error)

IN_CLUSTER_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

# Waiting reasons a pod does not leave by itself in a useful time: fail the wait once one has
# lasted stuck_after_s rather than at the (long, model-load-sized) ready timeout.
STUCK_REASONS = frozenset({
    "ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull",
    "CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
})

OPTIONS: dict[str, tuple[type | tuple[type, ...], Any, str]] = {
    "namespace": (str, None, "default: the Job's own namespace in-cluster, else the kubeconfig context's"),
    "editor_statefulset": (str, "editor", "StatefulSet of the editors"),
    "scorer_statefulset": (str, "scorer", "StatefulSet of the judge"),
    "editor_port": (int, None, "default: the editor container's port named 'grpc'"),
    "scorer_port": (int, None, "default: the scorer container's port named 'grpc'"),
    "cluster_domain": (str, "", "appended to <pod>.<svc>.<ns>.svc, e.g. cluster.local"),
    "ready_timeout_s": ((int, float), 1200.0, "scale-up until every pod is Ready (model load included)"),
    "stop_timeout_s": ((int, float), 600.0, "scale-down until every pod is gone"),
    "stuck_after_s": ((int, float), 180.0, "an image pull / crash loop lasting this long fails the wait"),
    "max_restarts_per_editor": (int, 3, "replacements of one editor pod before it is dropped"),
    "request_timeout_s": ((int, float), 30.0, "one API call"),
    "kubeconfig": (str, None, "outside the cluster: kubeconfig file (default: $KUBECONFIG or ~/.kube/config)"),
    "context": (str, None, "outside the cluster: kubeconfig context"),
}


def fleet_options(raw: dict | None) -> dict[str, Any]:
    """Defaults filled in, unknown keys and wrong types refused with the key's name."""
    raw = dict(raw or {})
    unknown = sorted(set(raw) - set(OPTIONS))
    if unknown:
        raise FleetError(f"fleet.options: unknown option(s) {', '.join(unknown)} for the kubernetes fleet; "
                         f"known: {', '.join(OPTIONS)}")
    values = {}
    for key, (kind, default, _help) in OPTIONS.items():
        value = raw.get(key, default)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise FleetError(f"fleet.options.{key}: expected {getattr(kind, '__name__', 'a number')}, "
                             f"got {value!r}")
        values[key] = value
    for key in ("ready_timeout_s", "stop_timeout_s", "stuck_after_s", "request_timeout_s"):
        if values[key] <= 0:
            raise FleetError(f"fleet.options.{key}: must be > 0, got {values[key]!r}")
    return values


def create_fleet(config, logs_dir: Path) -> "KubernetesFleet":
    """The factory `orchestrator.fleet.make_fleet` calls for `fleet.kind: kubernetes`."""
    options = fleet_options(config.fleet.options)
    api_client, context_namespace = connect(options["kubeconfig"], options["context"])
    namespace = options.pop("namespace") or context_namespace
    options.pop("kubeconfig"), options.pop("context")
    api_slots = config.editor.max_concurrency if getattr(config, "api_editor", False) else 0
    return KubernetesFleet(api_client, namespace, api_slots=api_slots, **options)


def connect(kubeconfig: str | None = None, context: str | None = None):
    """An ApiClient of its own (no global state) and the namespace the credentials point at."""
    from kubernetes import client, config

    in_cluster = os.environ.get("KUBERNETES_SERVICE_HOST") and not (kubeconfig or context)
    try:
        if in_cluster:
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            namespace = IN_CLUSTER_NAMESPACE_FILE.read_text().strip()
            return client.ApiClient(configuration), namespace
        api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
        _contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
        if context:
            active = next((c for c in _contexts if c["name"] == context), active)
        namespace = (active or {}).get("context", {}).get("namespace") or "default"
        return api_client, namespace
    except (config.ConfigException, OSError) as exc:
        where = "in-cluster service account" if in_cluster else f"kubeconfig {kubeconfig or '(default)'}"
        raise FleetError(f"kubernetes: cannot load credentials from the {where}: {exc}") from None


@dataclass
class _Set:
    """What the fleet read from one StatefulSet."""

    name: str
    service: str
    port: int
    selector: str
    grace_s: float


class KubernetesFleet(Fleet):
    checks_run_config = True  # the StatefulSets' --model etc. must be what the run config says
    STOP_MARGIN_S = 30.0  # beyond a pod's terminationGracePeriodSeconds, before a scale-down is late

    def __init__(self, api_client, namespace: str, *, editor_statefulset: str = "editor",
                 scorer_statefulset: str = "scorer", editor_port: int | None = None,
                 scorer_port: int | None = None, cluster_domain: str = "", ready_timeout_s: float = 1200.0,
                 stop_timeout_s: float = 600.0, stuck_after_s: float = 180.0, max_restarts_per_editor: int = 3,
                 request_timeout_s: float = 30.0, api_slots: int = 0):
        """api_slots: an API editor's request slots (editor.max_concurrency; 0: a local editor per pod)."""
        from kubernetes import client

        self.namespace = namespace
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.api_client = api_client
        self.names = {"editor": editor_statefulset, "scorer": scorer_statefulset}
        self.ports = {"editor": editor_port, "scorer": scorer_port}
        self.cluster_domain = cluster_domain.strip(".")
        self.ready_timeout_s = float(ready_timeout_s)
        self.stop_timeout_s = float(stop_timeout_s)
        self.stuck_after_s = float(stuck_after_s)
        self.max_restarts_per_editor = max_restarts_per_editor
        self.request_timeout_s = float(request_timeout_s)
        self._sets: dict[str, _Set] = {}
        self._scaled: set[str] = set()                # roles this fleet has scaled up (close() scales them down)
        self._editor_pods: dict[str, dict] = {}       # endpoint name (= pod name) -> identity when it was Ready
        self._scorer_pod: dict | None = None
        self._restarts: dict[str, int] = {}
        self._lock = threading.Lock()
        self.api_slots = api_slots
        self._slot_pods: dict[str, str] = {}          # an API editor's slot name ("API 1") -> its pod's name
        self._api_restart_lock = threading.Lock()

    # -- API helpers ---------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable, *args, **kwargs):
        from kubernetes.client.exceptions import ApiException

        try:
            return fn(*args, _request_timeout=self.request_timeout_s, **kwargs)
        except ApiException as exc:
            raise FleetError(f"kubernetes: {what} in namespace {self.namespace!r} failed: "
                             f"{exc.status} {_api_message(exc)}") from None
        except _NETWORK_ERRORS as exc:
            raise FleetError(f"kubernetes: {what}: cannot reach the API server ({exc})") from None

    def _statefulset(self, role: str) -> _Set:
        if role in self._sets:
            return self._sets[role]
        name = self.names[role]
        sts = self._call(f"reading StatefulSet {name}", self.apps.read_namespaced_stateful_set, name, self.namespace)
        spec = sts.spec
        labels = spec.selector.match_labels or {}
        if not labels:
            raise FleetError(f"StatefulSet {name}: needs spec.selector.matchLabels (the fleet finds its pods by them)")
        pod_spec = spec.template.spec
        port = self.ports[role]
        if port is None:
            ports = [p for c in pod_spec.containers for p in (c.ports or [])]
            named = [p.container_port for p in ports if p.name == "grpc"]
            port = named[0] if named else (ports[0].container_port if len(ports) == 1 else None)
        if port is None:
            raise FleetError(f"StatefulSet {name}: no container port named 'grpc'; set fleet.options.{role}_port")
        if not spec.service_name:
            raise FleetError(f"StatefulSet {name}: no serviceName, so its pods have no DNS names; "
                             f"give it a headless Service (k8s/base/{role}.yaml)")
        grace = pod_spec.termination_grace_period_seconds
        self._sets[role] = _Set(
            name=name, service=spec.service_name, port=int(port),
            selector=",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            grace_s=float(30 if grace is None else grace),
        )
        return self._sets[role]

    def _scale(self, role: str, replicas: int) -> None:
        s = self._statefulset(role)
        log.info("scaling StatefulSet %s/%s to %d", self.namespace, s.name, replicas)
        self._call(f"scaling StatefulSet {s.name} to {replicas}", self.apps.patch_namespaced_stateful_set_scale,
                   s.name, self.namespace, {"spec": {"replicas": replicas}},
                   _content_type="application/merge-patch+json")
        if replicas > 0:
            self._scaled.add(role)

    def _address(self, s: _Set, pod_name: str) -> str:
        host = f"{pod_name}.{s.service}.{self.namespace}.svc"
        if self.cluster_domain:
            host += f".{self.cluster_domain}"
        return f"{host}:{s.port}"

    def _wait(self, s: _Set, done: Callable[[dict[str, Any]], bool], timeout_s: float,
              on_timeout: Callable[[dict[str, Any]], str], stuck: Callable[[dict[str, Any]], str | None] | None = None):
        """List the set's pods, then watch them until done(pods) holds; pods maps name -> V1Pod.

        The watch reacts at once to each change; each watch is short and followed by a fresh
        list, so a dropped or expired (410) watch costs at most one round.
        """
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        deadline = time.monotonic() + timeout_s
        reported: dict[str, str] = {}

        def settled(pods) -> bool:
            self._log_changes(pods, reported)
            if done(pods):
                return True
            if stuck is not None and (why := stuck(pods)):
                raise FleetError(why)
            if time.monotonic() >= deadline:
                raise FleetError(on_timeout(pods))
            return False

        while True:
            listing = self._call(f"listing pods of {s.name}", self.core.list_namespaced_pod, self.namespace,
                                 label_selector=s.selector)
            pods = {p.metadata.name: p for p in listing.items}
            if settled(pods):
                return pods
            # Short watches (<= 5 s), so that stuck pods and the deadline are checked against the
            # clock even when nothing changes; each quiet end is followed by a fresh list.
            window = min(deadline - time.monotonic(), 5.0, self.stuck_after_s if stuck else 5.0)
            w = watch.Watch()
            try:
                for event in w.stream(self.core.list_namespaced_pod, self.namespace, label_selector=s.selector,
                                      resource_version=listing.metadata.resource_version,
                                      timeout_seconds=max(1, math.ceil(window)),
                                      _request_timeout=max(1.0, window) + self.request_timeout_s):
                    pod = event["object"]
                    if event["type"] == "DELETED":
                        pods.pop(pod.metadata.name, None)
                    elif event["type"] in ("ADDED", "MODIFIED"):
                        pods[pod.metadata.name] = pod
                    else:
                        continue  # BOOKMARK
                    if settled(pods):
                        return pods
            except ApiException as exc:
                if exc.status != 410:  # 410 Gone: our resourceVersion expired; list again
                    raise FleetError(f"kubernetes: watching pods of {s.name} failed: {exc.status} "
                                     f"{_api_message(exc)}") from None
            except _NETWORK_ERRORS as exc:  # a dropped connection or a read timeout: list again
                log.warning("watch on pods of %s broke (%s); listing again", s.name, exc)
            finally:
                w.stop()

    def _log_changes(self, pods: dict[str, Any], reported: dict[str, str]) -> None:
        for name, pod in sorted(pods.items()):
            text = describe_pod(pod)
            if reported.get(name) != text:
                reported[name] = text
                log.info("pod %s: %s", name, text)

    def _scale_up_and_wait(self, role: str, count: int) -> dict[str, Any]:
        s = self._statefulset(role)
        wanted = [f"{s.name}-{i}" for i in range(count)]
        first_stuck: dict[tuple[str, str], float] = {}

        def done(pods):
            return all(n in pods and pod_ready(pods[n]) for n in wanted)

        def stuck(pods):
            now = time.monotonic()
            for name in wanted:
                reason = stuck_reason(pods.get(name))
                if reason is None:
                    continue
                since = first_stuck.setdefault((name, reason), now)
                if now - since >= self.stuck_after_s:
                    return (f"{role} pod {name} stuck in {reason} for {now - since:.0f}s "
                            f"(fleet.options.stuck_after_s):\n" + self._not_ready_report(s, wanted, pods))
            return None

        def on_timeout(pods):
            return (f"{role}s not Ready after {self.ready_timeout_s:g}s "
                    f"(fleet.options.ready_timeout_s):\n" + self._not_ready_report(s, wanted, pods))

        self._scale(role, max(count, 0))
        try:
            pods = self._wait(s, done, self.ready_timeout_s, on_timeout, stuck)
        except FleetError:
            # Give back what did come up (GPUs); close() waits for the pods to go.
            try:
                self._scale(role, 0)
            except FleetError as exc:
                log.warning("%s", exc)
            raise
        return {n: pods[n] for n in wanted}

    def _not_ready_report(self, s: _Set, wanted: list[str], pods: dict[str, Any]) -> str:
        lines = []
        for name in wanted:
            pod = pods.get(name)
            if pod is None:
                lines.append(f"  {name}: no such pod: the StatefulSet controller did not create it (a quota, a "
                             f"missing PVC or an invalid template; see `kubectl -n {self.namespace} describe "
                             f"statefulset {s.name}`)")
            elif not pod_ready(pod):
                lines.append(f"  {name}: {describe_pod(pod)}")
        return "\n".join(lines)

    def _scale_down_and_wait(self, role: str) -> None:
        s = self._statefulset(role)
        # Never give up before Kubernetes itself would have killed the pods (grace + a margin).
        timeout_s = max(self.stop_timeout_s, s.grace_s + self.STOP_MARGIN_S)

        def on_timeout(pods):
            return (f"{role} pods still present {timeout_s:g}s after scaling {s.name} to 0 "
                    f"(their GPUs are not free yet):\n"
                    + "\n".join(f"  {n}: {describe_pod(p)}" for n, p in sorted(pods.items())))

        self._scale(role, 0)
        # Pods leave only once their containers have exited: no pod, no process, GPU memory free.
        self._wait(s, lambda pods: not pods, timeout_s, on_timeout)
        self._scaled.discard(role)

    # -- Fleet: editors ------------------------------------------------------------------------
    def start_editors(self, count: int) -> list[Endpoint]:
        if count < 1:
            raise FleetError(f"start_editors: need at least one editor, asked for {count}")
        if self.api_slots:
            return self._start_api_editor(count)
        pods = self._scale_up_and_wait("editor", count)
        s = self._statefulset("editor")
        with self._lock:
            self._editor_pods = {name: pod_identity(pod) for name, pod in pods.items()}
        return [Endpoint(name, self._address(s, name)) for name in pods]

    def _start_api_editor(self, count: int) -> list[Endpoint]:
        """One pod (the StatefulSet at 1) and `count` request slots dialling it: the dispatcher's queue keeps
        each slot busy, the pod's worker runs --max-concurrency requests at once."""
        (name, pod), = self._scale_up_and_wait("editor", 1).items()
        address = self._address(self._statefulset("editor"), name)
        with self._lock:
            self._editor_pods = {name: pod_identity(pod)}
            self._slot_pods = {f"API {i + 1}": name for i in range(count)}
        return [Endpoint(slot, address) for slot in self._slot_pods]

    def _pod_of(self, endpoint: Endpoint) -> str:
        return self._slot_pods.get(endpoint.name, endpoint.name)

    def editor_alive(self, endpoint: Endpoint) -> bool:
        """The same pod (uid) is there, not being deleted, and its container has not restarted."""
        return self._pod_alive(self._pod_of(endpoint))

    def _pod_alive(self, name: str) -> bool:
        from kubernetes.client.exceptions import ApiException

        with self._lock:
            known = self._editor_pods.get(name)
        if known is None:
            return False
        try:
            pod = self.core.read_namespaced_pod(name, self.namespace, _request_timeout=self.request_timeout_s)
        except ApiException as exc:
            if exc.status == 404:
                return False
            log.warning("reading pod %s: %s %s", name, exc.status, _api_message(exc))
            return True  # cannot tell: let the dispatcher's retries decide
        except _NETWORK_ERRORS as exc:
            log.warning("reading pod %s: %s", name, exc)
            return True
        return pod_identity(pod) == known and pod.metadata.deletion_timestamp is None and pod_running(pod)

    def restart_editor(self, endpoint: Endpoint) -> Endpoint | None:
        """Kubernetes restarts the pod itself (same name, same DNS name): wait until it is Ready again.
        An API editor's slots share one pod: the first slot to ask waits for its replacement, the others
        then find it alive and go on with it (as they do where the pod never went: the provider's trouble)."""
        if endpoint.name not in self._slot_pods:
            address = self._restart_pod(endpoint.name)
            return None if address is None else Endpoint(endpoint.name, address)
        with self._api_restart_lock:
            name = self._pod_of(endpoint)
            address = (self._address(self._statefulset("editor"), name) if self._pod_alive(name)
                       else self._restart_pod(name))
        return None if address is None else Endpoint(endpoint.name, address)

    def _restart_pod(self, name: str) -> str | None:
        with self._lock:
            count = self._restarts.get(name, 0)
            if count >= self.max_restarts_per_editor or name not in self._editor_pods:
                return None
            self._restarts[name] = count + 1
            old = self._editor_pods[name]
        s = self._statefulset("editor")

        def replaced_and_ready(pods):
            pod = pods.get(name)
            return pod is not None and pod_ready(pod) and pod_identity(pod) != old

        def on_timeout(pods):
            pod = pods.get(name)
            state = describe_pod(pod) if pod is not None else "no such pod (was the StatefulSet scaled down?)"
            return f"editor pod {name} not back after {self.ready_timeout_s:g}s: {state}"

        pods = self._wait(s, replaced_and_ready, self.ready_timeout_s, on_timeout)
        with self._lock:
            self._editor_pods[name] = pod_identity(pods[name])
        return self._address(s, name)

    def stop_editors(self) -> None:
        self._scale_down_and_wait("editor")

    # -- Fleet: judge --------------------------------------------------------------------------
    def start_scorer(self) -> Endpoint:
        pods = self._scale_up_and_wait("scorer", 1)
        (name, pod), = pods.items()
        self._scorer_pod = pod_identity(pod)
        return Endpoint("scorer", self._address(self._statefulset("scorer"), name))

    def start_scorers(self, count: int) -> list[Endpoint]:
        """The scorer StatefulSet scaled to `count` (judge.replicas), each pod by its own name."""
        if count <= 1:
            return [self.start_scorer()]
        pods = self._scale_up_and_wait("scorer", count)
        s = self._statefulset("scorer")
        names = sorted(pods, key=lambda n: int(n.rsplit("-", 1)[1]))[:count]
        self._scorer_pod = {n: pod_identity(pods[n]) for n in names}
        self._scorer_replicas = count
        return [Endpoint("scorer" if i == 0 else n, self._address(s, n)) for i, n in enumerate(names)]

    def restart_scorer(self, endpoint: Endpoint) -> Endpoint | None:
        if getattr(self, "_scorer_replicas", 1) > 1:
            return endpoint  # one of several replicas: its StatefulSet brings the pod back at the same name
        return super().restart_scorer(endpoint)

    def stop_scorer(self) -> None:
        self._scale_down_and_wait("scorer")

    def close(self) -> None:
        """Scale back to 0 whatever this fleet scaled up, on every exit path; never raises."""
        for role in ("editor", "scorer"):
            if role in self._scaled:
                try:
                    self._scale_down_and_wait(role)
                except FleetError as exc:
                    log.error("%s", exc)

    def describe(self) -> dict:
        return {
            "kind": "kubernetes",
            "namespace": self.namespace,
            "statefulsets": {role: s.name for role, s in self._sets.items()},
            "editors": dict(self._editor_pods),
            **({"api_editor": {"slots": len(self._slot_pods), "pod": next(iter(self._editor_pods), None)}}
               if self.api_slots else {}),
            "scorer": self._scorer_pod,
        }


# -- reading pods ------------------------------------------------------------------------------
def _condition(pod, kind: str):
    return next((c for c in (pod.status.conditions or []) if c.type == kind), None) if pod.status else None


def pod_ready(pod) -> bool:
    ready = _condition(pod, "Ready")
    return pod.metadata.deletion_timestamp is None and ready is not None and ready.status == "True"


def pod_running(pod) -> bool:
    return pod.status is not None and pod.status.phase == "Running"


def pod_identity(pod) -> dict:
    """What changes when the editor process is replaced: the pod (uid) or its container (restarts)."""
    statuses = (pod.status.container_statuses or []) if pod.status else []
    return {
        "uid": pod.metadata.uid,
        "restarts": sum(c.restart_count or 0 for c in statuses),
        "node": pod.spec.node_name if pod.spec else None,
        "images": {c.name: c.image_id or c.image for c in statuses},
    }


def _all_container_statuses(pod):
    status = pod.status
    if status is None:
        return []
    return [*(status.init_container_statuses or []), *(status.container_statuses or [])]


def stuck_reason(pod) -> str | None:
    if pod is None or pod.metadata.deletion_timestamp is not None:
        return None
    for c in _all_container_statuses(pod):
        waiting = c.state.waiting if c.state else None
        if waiting is not None and waiting.reason in STUCK_REASONS:
            return waiting.reason
    return None


def describe_pod(pod) -> str:
    """One line in the pod's own words: phase, why it is not scheduled / not running / not ready."""
    status = pod.status
    if pod.metadata.deletion_timestamp is not None:
        return f"terminating (phase {status.phase if status else '?'})"
    if status is None:
        return "no status yet"
    parts = [status.phase or "Unknown"]
    if pod_ready(pod):
        parts.append("Ready")
    scheduled = _condition(pod, "PodScheduled")
    if scheduled is not None and scheduled.status != "True":
        parts.append(f"{scheduled.reason or 'not scheduled'}: {scheduled.message or ''}".rstrip(": "))
    for c in _all_container_statuses(pod):
        state, last = c.state, c.last_state
        if state and state.waiting and state.waiting.reason not in (None, "ContainerCreating", "PodInitializing"):
            text = f"container {c.name} {state.waiting.reason}"
            if state.waiting.message:
                text += f": {state.waiting.message}"
            parts.append(text)
        elif state and state.terminated:
            parts.append(f"container {c.name} terminated: {_terminated(state.terminated)}")
        elif state and state.running and not c.ready:
            parts.append(f"container {c.name} running, not Ready yet (gRPC health not SERVING: "
                         f"model still loading, or the startup/readiness probe fails)")
        if last and last.terminated and (c.restart_count or 0) > 0:
            parts.append(f"restarted {c.restart_count}x, last exit: {_terminated(last.terminated)}")
    if status.reason and status.reason not in parts:  # e.g. Evicted
        parts.append(f"{status.reason}: {status.message or ''}".rstrip(": "))
    return "; ".join(parts)


def _terminated(t) -> str:
    text = f"{t.reason or 'exited'} (exit code {t.exit_code})"
    if t.message:
        text += f": {t.message.strip()[:300]}"
    return text


def _api_message(exc) -> str:
    """The Status message of an API error body, else its reason."""
    import json

    try:
        body = json.loads(exc.body or "{}")
        return body.get("message") or exc.reason or ""
    except (ValueError, TypeError):
        return exc.reason or ""
