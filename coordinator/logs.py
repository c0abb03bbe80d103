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
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str = "assay") -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)
