"""A stand-in for the part of kube-apiserver the Kubernetes fleet uses, for tests on a machine with
no cluster: real HTTP on loopback, the real `kubernetes` client on the other end.

What it reproduces, from the API's documented wire behaviour (no recorded traffic was available):
- GET a StatefulSet; GET / PATCH (merge, strategic-merge, JSON patch) / PUT its `scale`
  subresource (autoscaling/v1 Scale);
- GET / LIST pods with an equality labelSelector, and WATCH them: a chunked stream of JSON event
  lines from a resourceVersion, ended after timeoutSeconds, with ERROR 410 (Expired) for a
  resourceVersion that is too old;
- bearer-token authentication (401) and RBAC (403, with the API's own message) evaluated against
  the Role rendered from k8s/ — so a test passing here proves the fleet needs nothing more;
- Status error bodies (NotFound, Forbidden, Unauthorized, UnsupportedMediaType).
And a toy StatefulSet controller + kubelet driven by a per-set scenario: pods appear on scale-up
(podManagementPolicy Parallel), are scheduled, start, and turn Ready — or stay Unschedulable,
in ImagePullBackOff, or in CrashLoopBackOff; on scale-down they get a deletionTimestamp and go
after a grace delay. What it does not reproduce: admission, real scheduling, probes, DNS, events.
"""

from __future__ import annotations

import copy
import itertools
import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def status_body(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


@dataclass
class Scenario:
    """How the toy kubelet treats a StatefulSet's pods."""

    outcome: str = "ready"        # ready | unschedulable | image_pull | crash_loop
    schedule_after_s: float = 0.05
    ready_after_s: float = 0.3    # from creation (model load)
    terminate_after_s: float = 0.3  # from the deletion request (graceful drain)


@dataclass
class Request:
    at: float
    method: str
    path: str
    query: dict
    content_type: str | None
    body: object
    status: int = 0


@dataclass
class FakeKubeAPI:
    role_rules: list[dict]
    namespace: str = "editfleet"
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    user: str = "system:serviceaccount:editfleet:editfleet-orchestrator"

    def __post_init__(self):
        self.statefulsets: dict[str, dict] = {}
        self.scenarios: dict[str, Scenario] = {}
        self.pods: dict[str, dict] = {}
        self.pod_times: dict[str, dict] = {}       # pod name -> {"created": t, "deleting": t}
        self.events: list[tuple[int, str, dict]] = []  # (resourceVersion, type, pod)
        self.requests: list[Request] = []
        self.deleted_at: dict[str, float] = {}     # pod name -> when its DELETED event went out
        self.expire_watches_older_than: int = 0   # watch from below this rv -> 410
        self._rv = itertools.count(1000)
        self.cond = threading.Condition()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    # -- set-up --------------------------------------------------------------------------------
    def add_statefulset(self, manifest: dict, scenario: Scenario | None = None) -> None:
        sts = copy.deepcopy(manifest)
        # The API server stores quantities and answers them as strings (`nvidia.com/gpu: 1` -> "1").
        for c in sts["spec"]["template"]["spec"]["containers"]:
            for kind in ("limits", "requests"):
                quantities = c.get("resources", {}).get(kind, {})
                quantities.update({k: str(v) for k, v in quantities.items()})
        sts["metadata"].setdefault("namespace", self.namespace)
        sts["metadata"]["uid"] = str(uuid.uuid4())
        sts["metadata"]["resourceVersion"] = str(next(self._rv))
        sts["metadata"]["creationTimestamp"] = _now()
        sts["status"] = {"replicas": 0, "availableReplicas": 0}
        self.statefulsets[sts["metadata"]["name"]] = sts
        self.scenarios[sts["metadata"]["name"]] = scenario or Scenario()

    def start(self, tls: tuple[str, str] | None = None) -> "FakeKubeAPI":
        """Serve plain HTTP, or HTTPS with tls=(certfile, keyfile) as in a cluster."""
        api = self

        class Handler(_Handler):
            fake = api

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        threading.Thread(target=self._control_loop, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def kubeconfig(self, path) -> str:
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "orchestrator", "user": {"token": self.token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "orchestrator",
                                                      "namespace": self.namespace}}],
            "current-context": "fake",
        }))
        return str(path)

    def stop(self) -> None:
        self._stop.set()
        with self.cond:
            self.cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- what tests look at ----------------------------------------------------------------------
    def pod_names(self, prefix: str) -> list[str]:
        with self.cond:
            return sorted(n for n in self.pods if n.rsplit("-", 1)[0] == prefix)

    def replicas(self, name: str) -> int:
        with self.cond:
            return self.statefulsets[name]["spec"]["replicas"]

    def evict(self, pod_name: str) -> None:
        """A pod vanishes (node lost, eviction); the controller makes a new one with the same name."""
        with self.cond:
            pod = self.pods.pop(pod_name)
            self.pod_times.pop(pod_name, None)
            self._emit("DELETED", pod)

    # -- the API ---------------------------------------------------------------------------------
    def _emit(self, kind: str, pod: dict) -> None:
        rv = next(self._rv)
        pod["metadata"]["resourceVersion"] = str(rv)
        self.events.append((rv, kind, copy.deepcopy(pod)))
        if kind == "DELETED":
            self.deleted_at[pod["metadata"]["name"]] = time.monotonic()
        self.cond.notify_all()

    def _allowed(self, verb: str, group: str, resource: str, name: str | None) -> bool:
        for rule in self.role_rules:
            if (group in rule.get("apiGroups", []) and resource in rule.get("resources", [])
                    and (verb in rule.get("verbs", []) or "*" in rule.get("verbs", []))
                    and (not rule.get("resourceNames") or name in rule["resourceNames"])):
                return True
        return False

    def forbidden(self, verb, group, resource, name) -> dict:
        base = resource.split("/")[0]
        kind = f"{base}.{group}" if group else base
        target = f'{kind} "{name}"' if name else kind
        where = f' in API group "{group}"' if group else ' in API group ""'
        return status_body(
            403, "Forbidden",
            f'{target} is forbidden: User "{self.user}" cannot {verb} resource "{resource}"{where} '
            f'in the namespace "{self.namespace}"',
            {"name": name, "group": group, "kind": base} if name else {"group": group, "kind": base},
        )

    def scale_of(self, sts: dict) -> dict:
        labels = sts["spec"]["selector"]["matchLabels"]
        return {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {"name": sts["metadata"]["name"], "namespace": self.namespace,
                         "uid": sts["metadata"]["uid"], "resourceVersion": sts["metadata"]["resourceVersion"],
                         "creationTimestamp": sts["metadata"]["creationTimestamp"]},
            "spec": {"replicas": sts["spec"]["replicas"]},
            "status": {"replicas": sts["status"]["replicas"],
                       "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items()))},
        }

    def set_replicas(self, name: str, replicas: int) -> None:
        sts = self.statefulsets[name]
        sts["spec"]["replicas"] = replicas
        sts["metadata"]["resourceVersion"] = str(next(self._rv))
        self.cond.notify_all()

    # -- toy StatefulSet controller + kubelet ----------------------------------------------------
    def _control_loop(self) -> None:
        while not self._stop.is_set():
            with self.cond:
                now = time.monotonic()
                for name, sts in self.statefulsets.items():
                    self._reconcile(name, sts, self.scenarios[name], now)
            time.sleep(0.02)

    def _reconcile(self, name: str, sts: dict, sc: Scenario, now: float) -> None:
        want = sts["spec"]["replicas"]
        for pod_name in [n for n in self.pods if n.rsplit("-", 1)[0] == name]:
            ordinal = int(pod_name.rsplit("-", 1)[1])
            pod, times = self.pods[pod_name], self.pod_times[pod_name]
            if ordinal >= want and "deleting" not in times:
                times["deleting"] = now
                pod["metadata"]["deletionTimestamp"] = _now()
                pod["metadata"]["deletionGracePeriodSeconds"] = sts["spec"]["template"]["spec"].get(
                    "terminationGracePeriodSeconds", 30)
                _set_condition(pod, "Ready", "False")
                self._emit("MODIFIED", pod)
            elif "deleting" in times and now - times["deleting"] >= sc.terminate_after_s:
                del self.pods[pod_name], self.pod_times[pod_name]
                self._emit("DELETED", pod)
            elif "deleting" not in times:
                if self._kubelet(pod, times, sc, now, sts):
                    self._emit("MODIFIED", pod)
        # Parallel pod management: every missing ordinal at once (a terminating one blocks its own).
        for ordinal in range(want):
            pod_name = f"{name}-{ordinal}"
            if pod_name not in self.pods:
                self.pods[pod_name] = self._new_pod(sts, pod_name)
                self.pod_times[pod_name] = {"created": now, "stage": "created"}
                self._emit("ADDED", self.pods[pod_name])
        ready = sum(1 for n, p in self.pods.items() if n.rsplit("-", 1)[0] == name and _is_ready(p))
        sts["status"].update(replicas=len([n for n in self.pods if n.rsplit("-", 1)[0] == name]),
                             readyReplicas=ready, availableReplicas=ready)

    def _new_pod(self, sts: dict, pod_name: str) -> dict:
        template = copy.deepcopy(sts["spec"]["template"])
        labels = {**template["metadata"].get("labels", {}), "apps.kubernetes.io/pod-index": pod_name.rsplit("-", 1)[1],
                  "statefulset.kubernetes.io/pod-name": pod_name}
        spec = template["spec"]
        spec.update(hostname=pod_name, subdomain=sts["spec"]["serviceName"])
        return {
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": pod_name, "namespace": self.namespace, "uid": str(uuid.uuid4()),
                         "labels": labels, "creationTimestamp": _now(), "generateName": sts["metadata"]["name"] + "-",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                              "name": sts["metadata"]["name"], "uid": sts["metadata"]["uid"],
                                              "controller": True, "blockOwnerDeletion": True}]},
            "spec": spec,
            "status": {"phase": "Pending", "qosClass": "Burstable"},
        }

    def _kubelet(self, pod: dict, times: dict, sc: Scenario, now: float, sts: dict) -> bool:
        """Advance one pod along its scenario; True when its status changed."""
        age = now - times["created"]
        stage = times["stage"]
        container = pod["spec"]["containers"][0]
        image = container["image"]

        def status(ready: bool, state: dict, restarts: int = 0, last: dict | None = None):
            return {"name": container["name"], "image": image,
                    "imageID": f"{image}@sha256:{'ab' * 32}" if "running" in state or restarts else "",
                    "ready": ready, "started": "running" in state, "restartCount": restarts,
                    "state": state, "lastState": last or {}}

        if sc.outcome == "unschedulable":
            if stage == "created" and age >= sc.schedule_after_s:
                times["stage"] = "unschedulable"
                _set_condition(pod, "PodScheduled", "False", "Unschedulable",
                               "0/1 nodes are available: 1 Insufficient nvidia.com/gpu. preemption: 0/1 nodes are "
                               "available: 1 No preemption victims found for incoming pod.")
                return True
            return False
        if stage == "created" and age >= sc.schedule_after_s:
            times["stage"] = "scheduled"
            pod["spec"]["nodeName"] = "gpu-node-1"
            _set_condition(pod, "PodScheduled", "True")
            pod["status"].update(hostIP="10.0.0.7", startTime=_now())
            pod["status"]["containerStatuses"] = [status(False, {"waiting": {"reason": "ContainerCreating"}})]
            return True
        if sc.outcome == "image_pull" and stage == "scheduled" and age >= 2 * sc.schedule_after_s:
            times["stage"] = "backoff"
            pod["status"]["containerStatuses"] = [status(False, {"waiting": {
                "reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'}})]
            return True
        if sc.outcome == "crash_loop" and stage == "scheduled" and age >= 2 * sc.schedule_after_s:
            times["stage"] = "backoff"
            pod["status"]["phase"] = "Running"
            last = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": _now(), "finishedAt": _now(),
                                   "message": "FileNotFoundError: /models/Qwen-Image-Edit/model_index.json"}}
            pod["status"]["containerStatuses"] = [status(False, {"waiting": {
                "reason": "CrashLoopBackOff",
                "message": f"back-off 10s restarting failed container={container['name']} "
                           f"pod={pod['metadata']['name']}_{self.namespace}({pod['metadata']['uid']})"}},
                restarts=1, last=last)]
            return True
        if sc.outcome == "ready":
            if stage == "scheduled" and age >= 2 * sc.schedule_after_s:
                times["stage"] = "running"
                pod["status"].update(phase="Running", podIP="10.1.0.%d" % (hash(pod["metadata"]["uid"]) % 250))
                _set_condition(pod, "Initialized", "True")
                _set_condition(pod, "Ready", "False", "ContainersNotReady",
                               f"containers with unready status: [{container['name']}]")
                pod["status"]["containerStatuses"] = [status(False, {"running": {"startedAt": _now()}})]
                return True
            if stage == "running" and age >= sc.ready_after_s:
                times["stage"] = "ready"
                _set_condition(pod, "Ready", "True")
                _set_condition(pod, "ContainersReady", "True")
                pod["status"]["containerStatuses"] = [status(True, {"running": {"startedAt": _now()}})]
                return True
        return False


def _set_condition(pod: dict, kind: str, value: str, reason: str | None = None, message: str | None = None):
    conditions = pod["status"].setdefault("conditions", [])
    conditions[:] = [c for c in conditions if c["type"] != kind]
    condition = {"type": kind, "status": value, "lastTransitionTime": _now(), "lastProbeTime": None}
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    conditions.append(condition)


def _is_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def _matches(pod: dict, selector: str | None) -> bool:
    if not selector:
        return True
    labels = pod["metadata"].get("labels", {})
    for term in selector.split(","):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


class _Handler(BaseHTTPRequestHandler):
    fake: FakeKubeAPI
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    # -- plumbing ----------------------------------------------------------------------------------
    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self._record.status = code

    def _begin(self):
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        self._record = Request(time.monotonic(), self.command, url.path, {k: v[0] for k, v in parse_qs(url.query).items()},
                               self.headers.get("Content-Type"), body)
        with self.fake.cond:
            self.fake.requests.append(self._record)
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.fake.token:  # the scheme is case-insensitive
            self._send(401, status_body(401, "Unauthorized", "Unauthorized"))
            return None
        return url.path.strip("/").split("/"), self._record.query, body

    def do_GET(self):
        self._route()

    def do_PATCH(self):
        self._route()

    def do_PUT(self):
        self._route()

    def _route(self):
        begun = self._begin()
        if begun is None:
            return
        parts, query, body = begun
        f = self.fake
        ns = f.namespace
        # /apis/apps/v1/namespaces/{ns}/statefulsets/{name}[/scale]
        if parts[:5] == ["apis", "apps", "v1", "namespaces", ns] and len(parts) >= 7 and parts[5] == "statefulsets":
            name = parts[6]
            sub = parts[7] if len(parts) > 7 else None
            verb = {"GET": "get", "PATCH": "patch", "PUT": "update"}[self.command]
            resource = "statefulsets/scale" if sub == "scale" else "statefulsets"
            if not f._allowed(verb, "apps", resource, name):
                return self._send(403, f.forbidden(verb, "apps", resource, name))
            with f.cond:
                sts = f.statefulsets.get(name)
                if sts is None:
                    return self._send(404, status_body(404, "NotFound", f'statefulsets.apps "{name}" not found',
                                                       {"name": name, "group": "apps", "kind": "statefulsets"}))
                if sub is None and self.command == "GET":
                    return self._send(200, copy.deepcopy(sts))
                if sub == "scale":
                    if self.command == "GET":
                        return self._send(200, f.scale_of(sts))
                    replicas = self._replicas_from(body)
                    if isinstance(replicas, tuple):
                        return self._send(*replicas)
                    f.set_replicas(name, replicas)
                    return self._send(200, f.scale_of(sts))
            return self._send(405, status_body(405, "MethodNotAllowed", "the server does not allow this method"))
        # /api/v1/namespaces/{ns}/pods[/{name}]
        if parts[:5] == ["api", "v1", "namespaces", ns, "pods"] and self.command == "GET":
            if len(parts) == 6:
                name = parts[5]
                if not f._allowed("get", "", "pods", name):
                    return self._send(403, f.forbidden("get", "", "pods", name))
                with f.cond:
                    pod = f.pods.get(name)
                    if pod is None:
                        return self._send(404, status_body(404, "NotFound", f'pods "{name}" not found',
                                                           {"name": name, "kind": "pods"}))
                    return self._send(200, copy.deepcopy(pod))
            watching = query.get("watch") in ("true", "1")
            verb = "watch" if watching else "list"
            if not f._allowed(verb, "", "pods", None):
                return self._send(403, f.forbidden(verb, "", "pods", None))
            if watching:
                return self._watch(query)
            with f.cond:
                items = [copy.deepcopy(p) for _, p in sorted(f.pods.items()) if _matches(p, query.get("labelSelector"))]
                rv = str(f.events[-1][0] if f.events else next(f._rv))
            return self._send(200, {"kind": "PodList", "apiVersion": "v1",
                                    "metadata": {"resourceVersion": rv}, "items": items})
        return self._send(404, status_body(404, "NotFound", "the server could not find the requested resource"))

    def _replicas_from(self, body):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0]
        if self.command == "PUT" or ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            try:
                return int(body["spec"]["replicas"])
            except (KeyError, TypeError, ValueError):
                return 422, status_body(422, "Invalid", "Scale.autoscaling \"\" is invalid: spec.replicas: Required value")
        if ctype == "application/json-patch+json":
            for op in body or []:
                if op.get("op") in ("replace", "add") and op.get("path") == "/spec/replicas":
                    return int(op["value"])
            return 422, status_body(422, "Invalid", "the JSON patch does not set /spec/replicas")
        return 415, status_body(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                                "accepted media types include: application/json-patch+json, "
                                "application/merge-patch+json, application/apply-patch+yaml")

    def _watch(self, query: dict) -> None:
        f = self.fake
        selector = query.get("labelSelector")
        since = int(query.get("resourceVersion") or 0)
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._record.status = 200

        def chunk(obj) -> None:
            data = (json.dumps(obj) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        try:
            if since and since < f.expire_watches_older_than:
                chunk({"type": "ERROR", "object": status_body(
                    410, "Expired", f"too old resource version: {since} ({f.expire_watches_older_than})")})
            else:
                while not f._stop.is_set():
                    with f.cond:
                        pending = [(rv, t, p) for rv, t, p in f.events if rv > since and _matches(p, selector)]
                        if not pending:
                            remaining = deadline - time.monotonic()
                            if remaining <= 0:
                                break
                            f.cond.wait(min(remaining, 0.5))
                            continue
                    for rv, kind, pod in pending:
                        chunk({"type": kind, "object": pod})
                        since = rv
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped watching
        self.close_connection = True
