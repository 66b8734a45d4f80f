"""One port, one server: the services' listening ports (gRPC --port, HTTP --metrics-port) are taken
by one process only, and a taken port is a one-line start-up error.

gRPC servers bind with SO_REUSEPORT by default, so on Linux a second service on a port already
served started without complaint and the kernel split the connections between the two (two editors
with different models behind one address). ServiceHost binds without it (`grpc.so_reuseport` 0)
and, before asking gRPC, probes the port with `check_free`: a taken port raises `PortUnavailable`
with the line said to the user, before the model is loaded and without gRPC's C-core log line. The
metrics server (prometheus_client's, an http.server with SO_REUSEADDR, which on Linux never lets two
sockets listen on one port) already refused a second listener, but with an OSError traceback:
`ServiceMetrics.serve` turns that into `PortUnavailable` too. Port 0 (any free port) is never probed.
"""

from __future__ import annotations

import errno
import socket


class PortUnavailable(Exception):
    """A port the service cannot listen on, with the one line said to the user (exit 2)."""


def in_use_message(host: str, port: int, flag: str, what: str = "port") -> str:
    return (f"{what} {port} on {host} is already in use (another editfleet service?); "
            f"choose another with {flag}")


def check_free(host: str, port: int, *, flag: str = "--port", what: str = "port") -> None:
    """Raise PortUnavailable when host:port cannot be listened on because something holds it.

    Binds a probe socket to every address `host` resolves to, with SO_REUSEADDR and without
    SO_REUSEPORT, as gRPC binds its own listeners with `grpc.so_reuseport` 0 (so a port left in
    TIME_WAIT by a restarted service counts as free, and one another process listens on does not).
    A host that resolves to several addresses (localhost: ::1 and 127.0.0.1) is refused when any of
    them is taken, where gRPC would quietly listen on the others. Other bind errors (an address not
    on this machine, no IPv6) are left to the server's own bind.
    """
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host.strip("[]") or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        return  # the server's own bind says what is wrong with the host
    for family, kind, proto, _name, sockaddr in infos:
        try:
            probe = socket.socket(family, kind, proto)
        except OSError:
            continue
        with probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PortUnavailable(in_use_message(host, port, flag, what)) from None
                if exc.errno == errno.EACCES:
                    raise PortUnavailable(f"{what} {port} on {host}: permission denied (ports below 1024 need "
                                          f"privileges); choose another with {flag}") from None
