"""``brandloop serve``: the HTTP API on uvicorn, with its job workers in the same process."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from brandloop.api.cli.app import app


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

    if workers is not None:
        os.environ["BRANDLOOP_API_WORKERS"] = str(workers)
        get_api_settings.cache_clear()
    application = create_app(configure_logs=True, freeze_heap=True)
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
