"""Structured logs for every brandloop process (CLI, API, worker, eval harness).

One JSON object a line when stderr is not a terminal (a service, a CI log, a pipe), a short
human line when it is. Each line carries the ids of the context it was logged in: the
request, the job and the run (:func:`bound` sets them), so one run can be followed through the
agent, memory, the registry and the eval harness. Modules log through
``logging.getLogger(__name__)``; nothing is written until an entry point calls
:func:`configure_logging`. Tracebacks are logged only in debug mode (``--debug`` or
``BRANDLOOP_DEBUG=1``): a traceback may quote a value, and logs must never hold a secret.
"""

from __future__ import annotations

import atexit
import copy
import json
import logging
import os
import queue
import sys
import traceback
from contextvars import ContextVar, Token
from logging.handlers import QueueHandler, QueueListener
from typing import Any, TextIO

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
run_id_var: ContextVar[str | None] = ContextVar("run_id", default=None)
job_id_var: ContextVar[str | None] = ContextVar("job_id", default=None)

_IDS = {"request_id": request_id_var, "run_id": run_id_var, "job_id": job_id_var}
_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
_TRUE = {"1", "true", "yes", "on"}
_debug = False


def debug_enabled() -> bool:
    """``--debug`` was given, or ``BRANDLOOP_DEBUG`` is set to a true value."""
    return _debug or os.environ.get("BRANDLOOP_DEBUG", "").strip().lower() in _TRUE


def set_debug(enabled: bool) -> None:
    global _debug
    _debug = enabled


class bound:
    """Log lines written inside carry these ids (``run_id``, ``job_id``, ``request_id``).

    A plain and an async context manager, so it can sit in an ``async with`` beside others.
    """

    def __init__(self, **ids: str | None) -> None:
        self._ids = ids
        self._tokens: list[tuple[ContextVar[str | None], Token[str | None]]] = []

    def __enter__(self) -> None:
        self._tokens = [(_IDS[name], _IDS[name].set(value)) for name, value in self._ids.items()]

    def __exit__(self, *_exc: object) -> None:
        for var, token in reversed(self._tokens):
            var.reset(token)

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__(*exc)


def _stamp(record: logging.LogRecord) -> None:
    for name, var in _IDS.items():
        if getattr(record, name, None) is None:
            setattr(record, name, var.get())
    if record.exc_info and record.exc_info[0] is not None:
        record.error = record.exc_info[0].__name__
        if debug_enabled():
            record.traceback = "".join(traceback.format_exception(*record.exc_info))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the context's ids, any extras."""

    def format(self, record: logging.LogRecord) -> str:
        _stamp(record)
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in entry:
                entry[key] = value
        return json.dumps(entry, default=str)


class HumanFormatter(logging.Formatter):
    """``LEVEL logger [run … job …] message``, and the traceback in debug mode."""

    def format(self, record: logging.LogRecord) -> str:
        _stamp(record)
        ids = " ".join(
            f"{name.removesuffix('_id')}={value}"
            for name in ("run_id", "job_id")
            if (value := getattr(record, name, None))
        )
        line = f"{record.levelname} {record.name}{f' [{ids}]' if ids else ''} {record.getMessage()}"
        trace = getattr(record, "traceback", None)
        return f"{line}\n{trace.rstrip()}" if trace else line


class _StampingQueueHandler(QueueHandler):
    """Hands records to the logging thread, stamped with the ids of the context they were
    logged in (context variables do not cross threads)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        stamped = copy.copy(record)
        stamped.msg, stamped.args = record.getMessage(), None
        _stamp(stamped)
        stamped.exc_info, stamped.exc_text, stamped.stack_info = None, None, None
        return stamped


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a line is written (tests swap it)."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


_listener: QueueListener | None = None


def configure_logging(
    *,
    json_logs: bool | None = None,
    level: int = logging.INFO,
    background: bool = False,
    stream: TextIO | None = None,
) -> None:
    """Send brandloop's logs to stderr (or ``stream``): JSON unless ``json_logs`` is False or,
    left None, stderr is a terminal. ``background`` formats and writes on a thread of its own
    (the API: its event loop only stamps and enqueues). Debug mode lowers the level to DEBUG."""
    global _listener
    target = stream or sys.stderr
    if json_logs is None:
        json_logs = not target.isatty()
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    handler.setFormatter(JsonFormatter() if json_logs else HumanFormatter())
    if _listener is not None:
        _listener.stop()
        _listener = None
    root = logging.getLogger("brandloop")
    if background:
        records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        _listener = QueueListener(records, handler)
        _listener.start()
        atexit.register(_listener.stop)
        root.handlers[:] = [_StampingQueueHandler(records)]
    else:
        root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug_enabled() else level)
    root.propagate = False
