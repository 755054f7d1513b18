"""CPU time per process group over a load window, read from ``/proc`` (Linux).

On two shared cores the throughput of the production profile is whatever CPU is
left to the Rasa servers after PostgreSQL, Redis, the action servers and the
load generator have taken theirs; this says how much each took per answered
message, so the next saving is looked for where the time is.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

#: clock ticks per second (utime/stime in /proc/<pid>/stat are in ticks)
_TICKS = os.sysconf("SC_CLK_TCK")


def snapshot() -> dict[int, tuple[str, float]]:
    """pid → (command name, CPU seconds used so far, user + system) of every process."""
    found: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        # fields[0] is field 3 (state): utime and stime are fields 14 and 15
        found[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / _TICKS)
    return found


def group_of(pid: int, name: str, named: dict[int, str]) -> str:
    """The group a process counts in: a named server, the databases, us, or other."""
    if pid in named:
        return named[pid]
    if pid == os.getpid():
        return "load generator"
    if name.startswith("postgres") or name.startswith("postmaster"):
        return "postgresql"
    if name.startswith("redis"):
        return "redis"
    return "other (not ours)"


def per_group(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    named: dict[int, str],
) -> dict[str, float]:
    """CPU seconds each group used between two snapshots (processes present in both,
    or started in between)."""
    used: dict[str, float] = defaultdict(float)
    for pid, (name, seconds) in after.items():
        start = before.get(pid)
        spent = seconds - start[1] if start is not None and start[0] == name else seconds
        if spent > 0:
            used[group_of(pid, name, named)] += spent
    return dict(used)


def describe(used: dict[str, float], answered: int, seconds: float) -> str:
    """One line: each group's CPU ms per answered message and its share of a core."""
    if not answered:
        return "no message answered"
    parts = [
        f"{group} {1000 * value / answered:.1f} ms ({100 * value / seconds:.0f} %)"
        for group, value in sorted(used.items(), key=lambda item: -item[1])
        if value >= 0.005
    ]
    total = sum(used.values())
    cores = os.cpu_count() or 1
    return (f"CPU per answered message {1000 * total / answered:.1f} ms, "
            f"{100 * total / seconds:.0f} % of {100 * cores} %: " + ", ".join(parts))
