"""How many CPUs this process may use (Python 3.6 compatible)."""

import os


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the system has one, as in a
    container limited to some cores), else the machine's count."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1
