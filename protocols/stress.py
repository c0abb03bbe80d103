"""``assay stress``: the post-deploy harness's presets, overrides and pass/fail rules, as data.

The harness this replaces ran hey (a concurrent baseline), vegeta (a sustained rate) and
slowhttptest with vegeta control traffic (slow loris), each judged against a threshold,
with two presets and every value overridable by an environment variable. The names and
defaults are that harness's, so a pipeline that exported ``SUSTAINED_RATE=2000`` keeps
working; flags (``--sustained-rate 2000``) override the environment, which overrides the
preset. Nothing here does I/O: ``resolve`` takes the environment as a mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from protocols.load_errors import LoadInputError
from protocols.load_values import parse_duration, parse_rate


@dataclass(frozen=True)
class StressSettings:
    #: Test 1, the concurrent baseline (hey -c): closed-model workers, and for how long.
    concurrent_workers: int
    concurrent_duration_s: float
    #: Test 2, the sustained rate (vegeta -rate): open-model requests per second.
    sustained_rate: float
    sustained_duration_s: float
    #: Test 3, slow loris (slowhttptest -c) with open-model control traffic beside it.
    loris_conns: int
    loris_duration_s: float
    loris_control_rate: float
    loris_control_duration_s: float
    #: Thresholds: test 1's error %, test 2's success % and p99, test 3's control success %.
    thresh_err_pct: float
    thresh_success_pct: float
    thresh_p99_ms: float
    thresh_loris_ctrl: float

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: The harness's defaults: sized for a load host on the same network as the target.
SAME_NETWORK = StressSettings(
    concurrent_workers=4096, concurrent_duration_s=30.0,
    sustained_rate=1000.0, sustained_duration_s=60.0,
    loris_conns=1000, loris_duration_s=60.0, loris_control_rate=100.0,
    loris_control_duration_s=30.0,
    thresh_err_pct=1.0, thresh_success_pct=99.5, thresh_p99_ms=500.0, thresh_loris_ctrl=95.0)

#: One laptop hitting a small remote VM: its own ports and CPU give out long before a
#: serious server does, so the load is small and the latency bound loose.
LAPTOP = replace(
    SAME_NETWORK, concurrent_workers=32, concurrent_duration_s=15.0, sustained_rate=10.0,
    sustained_duration_s=30.0, loris_conns=50, loris_duration_s=20.0,
    loris_control_rate=5.0, thresh_p99_ms=8000.0, thresh_err_pct=5.0)

PRESETS: dict[str, StressSettings] = {"laptop": LAPTOP, "same-network": SAME_NETWORK}

#: setting -> (environment variable, kind). Durations accept plain seconds (the harness
#: wrote LORIS_DURATION=60) as well as 30s / 1m.
OVERRIDES: dict[str, tuple[str, str]] = {
    "concurrent_workers": ("CONCURRENT_WORKERS", "count"),
    "concurrent_duration_s": ("CONCURRENT_DURATION", "duration"),
    "sustained_rate": ("SUSTAINED_RATE", "rate"),
    "sustained_duration_s": ("SUSTAINED_DURATION", "duration"),
    "loris_conns": ("LORIS_CONNS", "count"),
    "loris_duration_s": ("LORIS_DURATION", "duration"),
    "loris_control_rate": ("LORIS_CONTROL_RATE", "rate"),
    "loris_control_duration_s": ("LORIS_CONTROL_DURATION", "duration"),
    "thresh_err_pct": ("THRESH_ERR_PCT", "percent"),
    "thresh_success_pct": ("THRESH_SUCCESS_PCT", "percent"),
    "thresh_p99_ms": ("THRESH_P99_MS", "positive"),
    "thresh_loris_ctrl": ("THRESH_LORIS_CTRL", "percent"),
}


def flag_name(setting: str) -> str:
    """``loris_duration_s`` -> ``--loris-duration``."""
    return "--" + setting.removesuffix("_s").replace("_", "-")


def _convert(kind: str, text: str, where: str) -> float | int:
    raw = str(text).strip()
    if kind == "duration":
        try:
            return parse_duration(raw, bare_seconds=True)
        except LoadInputError as exc:
            raise LoadInputError(f"{where}: {exc}") from None
    if kind == "rate":
        try:
            return parse_rate(raw)
        except LoadInputError as exc:
            raise LoadInputError(f"{where}: {exc}") from None
    try:
        number = float(raw)
    except ValueError:
        raise LoadInputError(f"{where}: {raw!r} is not a number") from None
    if kind == "count":
        if number != int(number) or number < 1:
            raise LoadInputError(f"{where}: must be a whole number of at least 1 (got {raw!r})")
        return int(number)
    if kind == "percent" and not 0 <= number <= 100:
        raise LoadInputError(f"{where}: must be a percentage, 0 to 100 (got {raw!r})")
    if kind == "positive" and not number > 0:
        raise LoadInputError(f"{where}: must be greater than zero (got {raw!r})")
    return number


def resolve(preset: str, environ: Mapping[str, str],
            flags: Mapping[str, str | None]) -> StressSettings:
    """The preset, then ``environ`` overrides, then ``flags`` (setting name -> text, None
    when not given). Raises LoadInputError with one line naming the variable or flag."""
    if preset not in PRESETS:
        raise LoadInputError(f"--preset {preset!r} is not one of: {', '.join(PRESETS)}")
    settings = PRESETS[preset]
    changes: dict[str, Any] = {}
    for setting, (variable, kind) in OVERRIDES.items():
        if environ.get(variable, "").strip():
            changes[setting] = _convert(kind, environ[variable], variable)
        flag = flags.get(setting)
        if flag is not None:
            changes[setting] = _convert(kind, flag, flag_name(setting))
    return replace(settings, **changes)


@dataclass(frozen=True)
class TestVerdict:
    name: str
    passed: bool
    #: Each measured figure against its bound, e.g. "errors 0.12 % <= 1 %".
    checks: tuple[str, ...]


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def judge_concurrent(summary: Mapping[str, Any], s: StressSettings) -> TestVerdict:
    """hey's test: the share of requests that failed (transport errors and statuses the
    load run counts as failed) must stay at or under ``thresh_err_pct``; a run that got
    no answer at all fails."""
    requests = int(summary.get("requests", 0))
    errors = _pct(int(summary.get("errors", 0)), requests)
    ok = requests > 0 and errors <= s.thresh_err_pct
    return TestVerdict("concurrent", ok, (
        f"requests {requests} (> 0)", f"errors {errors:.2f} % (<= {s.thresh_err_pct:g} %)"))


def judge_sustained(summary: Mapping[str, Any], s: StressSettings) -> TestVerdict:
    """vegeta's test: success % of the requests *due* (a dropped request is not a
    success) at or over ``thresh_success_pct``, and the p99 latency from the due time at
    or under ``thresh_p99_ms``."""
    due = int(summary.get("requests", 0)) + int(summary.get("dropped", 0))
    succeeded = int(summary.get("requests", 0)) - int(summary.get("errors", 0))
    success = _pct(succeeded, due)
    p99 = (summary.get("latency_ms") or {}).get("p99")
    ok = due > 0 and success >= s.thresh_success_pct and p99 is not None \
        and p99 <= s.thresh_p99_ms
    shown = "none" if p99 is None else f"{p99:.1f} ms"
    return TestVerdict("sustained", ok, (
        f"success {success:.2f} % (>= {s.thresh_success_pct:g} %)",
        f"p99 {shown} (<= {s.thresh_p99_ms:g} ms)"))


def judge_loris(control_success_pct: float | None, s: StressSettings) -> TestVerdict:
    """slowhttptest's test: the control traffic's success % while the slow connections
    are held, at or over ``thresh_loris_ctrl``."""
    ok = control_success_pct is not None and control_success_pct >= s.thresh_loris_ctrl
    shown = "none" if control_success_pct is None else f"{control_success_pct:.2f} %"
    return TestVerdict("loris", ok, (f"control success {shown} "
                                     f"(>= {s.thresh_loris_ctrl:g} %)",))
