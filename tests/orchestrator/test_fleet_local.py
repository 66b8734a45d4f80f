"""LocalFleet bookkeeping that runs in-process (no services started)."""

from __future__ import annotations

import json
import threading

from orchestrator.config import build_config
from orchestrator.fleet.local import LocalFleet


def test_processes_json_survives_concurrent_restarts(tmp_path):
    # Editor worker threads restart their editors independently; each restart rewrites
    # logs/processes.json. Two at once must neither fail (a failed restart takes a healthy,
    # freshly started editor out of the pool) nor leave a torn file.
    fleet = LocalFleet(build_config({}), tmp_path)
    errors: list[str] = []

    def restart_bookkeeping():
        for _ in range(200):
            try:
                fleet._record_pids()
            except Exception as exc:  # noqa: BLE001 - the test reports whatever escapes
                errors.append(repr(exc))

    threads = [threading.Thread(target=restart_bookkeeping) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fleet.close()
    assert errors == []
    assert json.loads((tmp_path / "processes.json").read_text()) == {}
    assert [p.name for p in tmp_path.iterdir()] == ["processes.json"]
