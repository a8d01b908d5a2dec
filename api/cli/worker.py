"""``brandloop worker``: a Celery worker that runs the API's queued jobs (``BRANDLOOP_QUEUE=celery``)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from brandloop.api.cli.app import app
from brandloop.api.cli.common import database, settings
from brandloop.errors import BadInputError
from brandloop.logs import configure_logging


@app.command()
def worker(
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="jobs this worker runs at once")
    ] = 2,
    loglevel: Annotated[str, typer.Option(help="Celery's log level")] = "INFO",
) -> None:
    """Run jobs from Redis (``BRANDLOOP_REDIS_URL``) until stopped; SIGTERM drains gracefully.

    Needs ``BRANDLOOP_QUEUE=celery`` on the API replicas and a database every process shares
    (PostgreSQL); see docs/runbook.md.
    """
    from brandloop.api.jobs.celery_queue import run_worker

    current = settings()
    if current.resolved_database_url.startswith("sqlite"):
        raise BadInputError(
            "brandloop worker needs a shared database: set BRANDLOOP_DATABASE_URL to PostgreSQL"
        )
    configure_logging(level=logging.INFO)
    run_worker(current, database(), concurrency=concurrency, loglevel=loglevel)
