"""``brandloop serve``: the HTTP API on uvicorn, with its job workers in the same process."""

from __future__ import annotations

import errno
import os
import socket
import sys
from typing import Annotated

import typer

from brandloop.api.cli.app import app
from brandloop.errors import BadInputError


def _check_listen(host: str, port: int) -> None:
    """Refuse, before anything starts or is printed, an address this process cannot listen on
    (the port taken by another server, an address not on this host). The server binds it again
    a moment later, as uvicorn does, with ``SO_REUSEADDR``."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise BadInputError(
            f"--host {host}: not an address to listen on ({exc.strerror})"
        ) from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise BadInputError(
                    f"--port {port}: port {port} on {host} is already in use "
                    "(stop what listens there, or choose another --port)"
                ) from None
            raise BadInputError(
                f"--host {host} --port {port}: cannot listen there ({exc.strerror})"
            ) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8000,
    workers: Annotated[
        int | None, typer.Option(min=0, max=64, help="jobs run at once (BRANDLOOP_API_WORKERS)")
    ] = None,
) -> None:
    """Serve the studio at ``/`` and the HTTP API (``/v1``, ``/healthz``, ``/readyz``,
    ``/metrics``, ``/docs``).

    Extra image providers come from ``BRANDLOOP_PROVIDER_PLUGINS`` like every other command.
    """
    import uvicorn

    from brandloop.api.app import create_app
    from brandloop.api.config import get_api_settings
    from brandloop.api.warmup import Warmup
    from brandloop.settings import get_settings

    _check_listen(host, port)
    if workers is not None:
        os.environ["BRANDLOOP_API_WORKERS"] = str(workers)
        get_api_settings.cache_clear()
    # the models load in the background from start; /readyz says "warming" until they are in
    warmup = Warmup(freeze=True) if get_settings().warm_up else None
    application = create_app(configure_logs=True, freeze_heap=True, warmup=warmup)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    sys.stderr.write(
        f"brandloop studio: http://{shown}:{port}/  (sign in with an API key, or the link "
        "`brandloop studio link --tenant T --principal U` prints; the API is under /v1)\n"
    )
    uvicorn.run(
        application,
        host=host,
        port=port,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=5,
    )
