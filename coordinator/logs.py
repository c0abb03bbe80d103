"""structlog set-up: human-readable on a terminal, JSON lines when asked (``--log-format``)."""

from __future__ import annotations

import logging
import sys

import structlog


def configure(
    log_format: str,
    level: int = logging.INFO,
    tee: structlog.types.Processor | None = None,
) -> None:
    """``tee`` sees every event dict before rendering (soak mode copies them to a file)."""
    renderer: structlog.types.Processor
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *([tee] if tee is not None else []),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


class _CurrentStderr:
    """structlog's PrintLogger binds the stream it was configured with; this one writes to
    whatever ``sys.stderr`` is at the time (a test's capture, a redirected stream), and a
    log line that cannot be written (a closed stream, a reader gone: EPIPE) is dropped
    rather than raised into the run it describes."""

    def msg(self, message: str) -> None:
        try:
            print(message, file=sys.stderr, flush=True)
        except (OSError, ValueError):
            pass

    log = debug = info = warn = warning = err = error = critical = exception = fatal = msg


def _stderr_logger(*_args: object) -> _CurrentStderr:
    return _CurrentStderr()


def get_logger(name: str = "assay") -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
