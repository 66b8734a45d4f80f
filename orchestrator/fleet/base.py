"""What the orchestrator needs from a fleet, whatever runs it (local processes, Kubernetes, static
addresses). The run phases use only this interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


class FleetError(Exception):
    """A service that could not be started or reached; the message says which and why."""


@dataclass(frozen=True)
class Endpoint:
    name: str     # shown in bars and logs, e.g. "GPU 0" or "editor-1"
    address: str  # host:port


class Fleet(ABC):
    # False where the services belong to someone else (static addresses): nothing is stopped.
    stops_services: bool = True
    # The services get their flags from elsewhere (a StatefulSet), not from the run config: what they
    # report (GetInfo) is compared with the run config before work is given out (check_run_config).
    checks_run_config: bool = False

    @abstractmethod
    def start_editors(self, count: int) -> list[Endpoint]:
        """Bring up `count` editors and return once each one is SERVING."""

    @abstractmethod
    def editor_alive(self, endpoint: Endpoint) -> bool:
        """False once an editor is known to be gone (process died, pod deleted)."""

    def restart_editor(self, endpoint: Endpoint) -> Endpoint | None:
        """Replace a dead editor; None where the fleet cannot (static addresses)."""
        return None

    @abstractmethod
    def stop_editors(self) -> None:
        """Stop every editor and return only once they have exited (their GPU memory is free)."""

    def running_scorer(self) -> Endpoint | None:
        """A judge that is already serving before the run starts anything (a static fleet's), to be asked
        before any edit whether it runs what the run config says; None where the judge is started later."""
        return None

    def prestart_scorer(self) -> bool:
        """Begin bringing up the judge where it needs no device (imports, weights in host memory)
        while the editors still run; start_scorer() finishes it. True if something was started.
        Default: nothing (the judge starts from scratch in start_scorer)."""
        return False

    def scorer_go(self) -> None:
        """The editors have exited: a pre-started judge may take the devices now. Returns at once;
        start_scorer() waits for SERVING. Default: nothing."""

    def scorer_start_mode(self) -> str:
        """How the last start_scorer() brought the judge up, for the console and the manifest
        (e.g. "staged", or why a staged judge was replaced); "" where the fleet does not say."""
        return ""

    @abstractmethod
    def start_scorer(self) -> Endpoint:
        """Bring up the judge and return once it is SERVING."""

    def start_scorers(self, count: int) -> list[Endpoint]:
        """Bring up `count` judge replicas (judge.replicas) and return once each is SERVING. Default:
        one, for fleets that run a single judge."""
        return [self.start_scorer()]

    def restart_scorer(self, endpoint: Endpoint) -> Endpoint | None:
        """Replace a judge replica that died or stalled; None where the fleet cannot. Default: the
        single judge stopped and started again."""
        self.stop_scorer()
        return self.start_scorer()

    @abstractmethod
    def stop_scorer(self) -> None:
        """Stop the judge (every replica) and wait until it has exited."""

    def describe(self) -> dict:
        """What the manifest records about the fleet (kind, devices, service environments)."""
        return {"kind": type(self).__name__}

    def close(self) -> None:
        """Release everything still running (called on every exit path)."""
        self.stop_editors()
        self.stop_scorer()
