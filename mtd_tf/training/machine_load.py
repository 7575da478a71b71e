"""How much of the machine's CPU time its neighbours stole (Linux `/proc/stat`).

On a shared virtual machine the hypervisor lends our cores to other guests. Wall time per
epoch grows with that, and so does CPU time, more slowly (thread pools spin while a core
is away), so timings are reported with the share of CPU time stolen while they ran.
"""

STAT_PATH = "/proc/stat"
# The first eight counters of the `cpu` line: user nice system idle iowait irq softirq
# steal. (guest and guest_nice, after them, are already counted in user and nice.)
_COUNTERS = 8
_STEAL = 7


def cpu_ticks(path=STAT_PATH):
    """(stolen, total) clock ticks of all CPUs since boot, or None where not readable."""
    try:
        with open(path, encoding="ascii") as handle:
            fields = handle.readline().split()
        counters = [int(value) for value in fields[1:1 + _COUNTERS]]
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if fields[:1] != ["cpu"] or len(counters) < _COUNTERS:
        return None
    return counters[_STEAL], sum(counters)
