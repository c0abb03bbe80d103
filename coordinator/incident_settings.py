"""What ``assay run`` is told about incidents: the settings and the command-line options.

Separate from ``coordinator.incidents`` because the settings are plain data that travel in
``RunConfig.extra`` and are built by the CLI long before a run (and its incident manager)
exists; the CLI validates them here without importing the incident path's I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class IncidentSettings:
    """What ``assay run`` was told about incidents (plain data: it travels in config.extra)."""

    enabled: bool = True
    shrink: bool = True
    max_attempts: int = 60
    max_shrink_s: float = 60.0
    stall_limit: int = 30
    #: How long the run waits for open incidents after its deadline; None: as long as the
    #: run itself lasted, between 5 s and 180 s (a 5 s check stays a quick check, a soak
    #: gets its repro; the work started at the trip, so long runs rarely wait at all).
    budget_s: float | None = None
    forensics_deadline_s: float = 15.0
    agent: str | None = None
    agent_server_key: str | None = None
    agent_client_key: str | None = None
    metrics_urls: tuple[str, ...] = ()
    shrink_launch: str | None = None
    target_commit: str | None = None
    bisect_repo: str | None = None
    bisect_good: str | None = None
    bisect_bad: str = "HEAD"
    bisect_launch: str | None = None
    bisect_build: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["metrics_urls"] = list(self.metrics_urls)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> IncidentSettings:
        if not data:
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "metrics_urls" in known:
            known["metrics_urls"] = tuple(known["metrics_urls"])
        return cls(**known)

    @property
    def bisects(self) -> bool:
        return bool(self.bisect_repo and self.bisect_good and self.bisect_launch)


def load_settings(extra: Mapping[str, Any]) -> IncidentSettings:
    """The incident settings the CLI put in ``RunConfig.extra`` (defaults when absent)."""
    raw = extra.get("incidents") if isinstance(extra, Mapping) else None
    return IncidentSettings.from_json(raw if isinstance(raw, Mapping) else None)


def add_incident_options(parser: Any) -> None:
    """``assay run`` options of the incident path (forensics, shrink, bisect)."""
    add = parser.add_argument
    add("--no-shrink", action="store_true",
        help="capture dossiers but do not shrink the evidence to a reproducer")
    add("--incident-budget", type=float, metavar="SECONDS",
        help="how long the run waits for open incidents after its deadline (default: the "
        "run's duration, between 5 and 180 s)")
    add("--shrink-attempts", type=int, metavar="N",
        help="most candidate runs per shrink (default 60)")
    add("--shrink-launch", metavar="CMD",
        help="shell command serving a fresh copy of the target on 127.0.0.1:{port}; lets "
        "failures that kill the target be shrunk against fresh instances")
    add("--metrics-url", action="append", default=[], metavar="URL",
        help="target page to snapshot into each dossier (repeatable; path or URL)")
    add("--forensics-agent", metavar="tcp://HOST:PORT",
        help="`assay agent` beside a remote target, asked for process forensics")
    add("--agent-server-key", metavar="FILE|Z85", help="the agent's public CURVE key")
    add("--agent-client-key", metavar="FILE", help="this coordinator's CURVE secret certificate")
    add("--target-commit", metavar="SHA", help="commit of the target, recorded in incidents")
    add("--bisect-repo", metavar="PATH", help="git repository of the target: an incident "
        "bisects its reproducer between --bisect-good and --bisect-bad")
    add("--bisect-good", metavar="REV", help="a revision without the failure")
    add("--bisect-bad", metavar="REV", help="a revision with it (default HEAD)")
    add("--bisect-launch", metavar="CMD", help="shell command serving a checkout on {port}")
    add("--bisect-build", metavar="CMD", help="shell command building a checkout")


def incident_settings_from_args(args: Any) -> IncidentSettings:
    """Validate the incident options; ``ValueError`` (one line) when they do not fit."""
    get = lambda name: getattr(args, name, None)  # noqa: E731
    bisect = [get("bisect_repo"), get("bisect_good"), get("bisect_launch")]
    if any(bisect) and not all(bisect):
        raise ValueError("--bisect-repo, --bisect-good and --bisect-launch go together")
    for name in ("bisect_launch", "shrink_launch"):
        value = get(name)
        if value and "{port}" not in value:
            raise ValueError(f"--{name.replace('_', '-')} must contain {{port}}")
    budget = get("incident_budget")
    if budget is not None and budget < 0:
        raise ValueError("--incident-budget must not be negative")
    attempts = get("shrink_attempts")
    if attempts is not None and attempts < 1:
        raise ValueError("--shrink-attempts must be at least 1")
    agent = get("forensics_agent")
    if agent and not str(agent).startswith("tcp://"):
        raise ValueError("--forensics-agent must look like tcp://HOST:PORT")
    defaults = IncidentSettings()
    return IncidentSettings(
        shrink=not get("no_shrink"),
        max_attempts=attempts or defaults.max_attempts,
        budget_s=None if budget is None else float(budget),
        agent=agent, agent_server_key=get("agent_server_key"),
        agent_client_key=get("agent_client_key"),
        metrics_urls=tuple(get("metrics_url") or ()), shrink_launch=get("shrink_launch"),
        target_commit=get("target_commit"), bisect_repo=get("bisect_repo"),
        bisect_good=get("bisect_good"), bisect_bad=get("bisect_bad") or "HEAD",
        bisect_launch=get("bisect_launch"), bisect_build=get("bisect_build"))
