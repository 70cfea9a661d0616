"""CPU time and memory of a process and its descendants, read from /proc (Linux)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Memory:
    rss_mib: float
    peak_mib: float  # the largest VmHWM in the tree: a lower bound of the tree's peak


def cpu_seconds(pid: int) -> float:
    """utime+stime of `pid` and its live descendants, plus children it has reaped."""
    total = 0.0
    for index, member in enumerate(tree(pid)):
        fields = _stat_fields(member)
        if fields is None:
            continue
        # After the "(comm)" field: utime, stime, cutime, cstime are fields 14-17.
        ticks = int(fields[11]) + int(fields[12])
        if index == 0:
            ticks += int(fields[13]) + int(fields[14])
        total += ticks / _TICK
    return total


def memory(pid: int) -> Memory:
    rss = peak = 0.0
    for member in tree(pid):
        status = _read(f"/proc/{member}/status")
        values = {
            line.split(":", 1)[0]: int(line.split()[1]) / 1024
            for line in status.splitlines()
            if line.startswith(("VmRSS:", "VmHWM:"))
        }
        rss += values.get("VmRSS", 0.0)
        peak = max(peak, values.get("VmHWM", 0.0))
    return Memory(rss, peak)


def tree(root: int) -> list[int]:
    """`root` first, then its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    members = [root]
    for member in members:
        members.extend(children.get(member, []))
    return members


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state first)."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    # The command name may hold spaces and parentheses; it ends at the last ")".
    return stat[stat.rindex(")") + 2 :].split()


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
