"""A stand-in for the Hugging Face hub's model-info route (the hub cannot be reached from here), for the
services' start-up checks: `HF_ENDPOINT=<url>` makes huggingface_hub ask it instead.

GET /api/models/<org>/<name>[/revision/<rev>]: the repositories in `repos` (name -> its files) answer
as the hub does (id, siblings); any other name gets the hub's 404 with X-Error-Code: RepoNotFound.
Other paths (huggingface_hub asks some of its own) get a plain 404.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_ROUTE = re.compile(r"^/api/models/(?P<repo>[^/?]+(?:/[^/?]+)?)(?:/revision/[^?]*)?(?:\?.*)?$")


class FakeHub:
    def __init__(self, repos: dict[str, list[str]] | None = None):
        self.repos = dict(repos or {})
        self.asked: list[str] = []  # the model ids asked about, in order
        self.other: list[str] = []  # other paths asked
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                found = _ROUTE.match(self.path)
                repo = found.group("repo") if found else None
                if repo is None:  # another route huggingface_hub asks on its own: not a model
                    hub.other.append(self.path)
                    return self._send(404, {"error": "not found"})
                hub.asked.append(repo)
                if repo in hub.repos:
                    body = {"id": repo, "modelId": repo, "sha": "0" * 40, "private": False,
                            "siblings": [{"rfilename": name} for name in hub.repos[repo]]}
                    self._send(200, body)
                else:
                    self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})

            def _send(self, code: int, body: dict, headers: dict | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "FakeHub":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
