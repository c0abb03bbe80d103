"""Run one seed against a live target: expand, execute, judge. Shared by replay and Tier 3.

How this works: ``run_seed`` expands the seed for the target's profile, hands the program to
``replay.executor.execute`` (the one executor) and judges the transcript with
``corpus.oracles.evaluate_seed``. The outcome carries everything a report needs: the verdict,
the plan digest, the identity of a failure (seed, generator version, target commit, host
arch) and the command that replays it. A harness exception is not caught here: callers
decide whether it is a crash (replay) or an errored seed (a Tier 3 walker).
"""

from __future__ import annotations

import platform
import shlex
from dataclasses import dataclass
from typing import Any

from actors.walker import Target
from corpus.generator import SeedPlan, expand
from corpus.oracles import SeedVerdict, evaluate_seed
from corpus.plan import Profile
from replay.executor import Transcript, execute

#: Budget of one seed's program; a plan takes a few seconds against a healthy target.
SEED_TIME_LIMIT_S = 60.0


@dataclass(frozen=True)
class SeedOutcome:
    plan: SeedPlan
    transcript: Transcript
    verdict: SeedVerdict
    #: The target as a replay command names it; None for the built-in refapp (its port is
    #: not worth repeating: ``assay replay --seed N`` starts a fresh one).
    target: str | None
    commit: str | None

    @property
    def digest(self) -> str:
        return self.plan.digest()

    def identity(self) -> dict[str, Any]:
        """What identifies a failure anywhere: seed, generator, target commit, host arch."""
        return {"seed": self.plan.seed, "generator": self.plan.version,
                "target_commit": self.commit or "unknown", "arch": platform.machine()}

    def replay_command(self) -> str:
        return replay_command(self.plan.seed, self.target, self.commit)


def replay_command(seed: int, target: str | None, commit: str | None = None) -> str:
    parts = ["assay", "replay", "--seed", str(seed)]
    if target:
        parts += ["--target", target]
    if commit:
        parts += ["--commit", commit]
    return " ".join(shlex.quote(p) for p in parts)


async def run_seed(seed: int, target: Target, profile: Profile, *, pid: int | None = None,
                   commit: str | None = None, builtin: bool = False,
                   time_limit_s: float = SEED_TIME_LIMIT_S) -> SeedOutcome:
    """Expand ``seed`` for ``profile``, run it against ``target``, judge it.

    ``builtin``: the target is the built-in refapp, so the replay command names no URL.
    """
    plan = expand(seed, profile)
    transcript = await execute(plan.program, target, pid=pid, time_limit_s=time_limit_s)
    verdict = evaluate_seed(plan.program, transcript)
    return SeedOutcome(plan, transcript, verdict, None if builtin else target.url, commit)
