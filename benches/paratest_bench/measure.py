"""Repetition shared by every benchmark, in the manner of hyperfine but interleaved.

hyperfine times one command N times, then the next: on a shared machine whose load drifts,
the compared commands then see different noise. Here each repetition runs every compared
command once, in an order rotated by one every repetition, so that no command is always
first (cold caches) or always after the same neighbour. The figures are medians; a ratio is
the ratio of the medians, with the median of the per-repetition (paired) ratios and the ratio
of the best runs beside it.
"""

import statistics

from .common import log, run


class Cmd:
    """One timed command. `before()` runs untimed before every run (e.g. delete timings);
    `after(result, rep)` untimed after it (e.g. read its report)."""

    def __init__(self, key, argv, cwd, env=None, before=None, after=None, timeout=900):
        self.key, self.argv, self.cwd, self.env = key, argv, cwd, env
        self.before, self.after, self.timeout = before, after, timeout


def interleave(blocks, reps, name):
    """Runs `blocks` (each a Cmd, or a list of Cmds that must run in that order, like cold then
    warm) `reps` times, rotating the order of the blocks every repetition.
    Returns {key: [Result, ...]} in repetition order."""
    blocks = [b if isinstance(b, list) else [b] for b in blocks]
    got = {c.key: [] for b in blocks for c in b}
    for i in range(reps):
        log(f"  {name} rep {i + 1} of {reps}")
        k = i % len(blocks)
        for block in blocks[k:] + blocks[:k]:
            for c in block:
                if c.before:
                    c.before()
                r = run(c.argv, c.cwd, env=c.env, timeout=c.timeout)
                if c.after:
                    c.after(r, i)
                got[c.key].append(r)
    return got


def warm_up(cmds):
    """One untimed run of each command: builds nothing later, fills caches, records timings."""
    for c in cmds:
        if c.before:
            c.before()
        run(c.argv, c.cwd, env=c.env, timeout=c.timeout)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def walls(results):
    return [r.wall for r in results]


def cpus(results):
    return [r.cpu for r in results]


def paired(xs, ys):
    """Median of the per-repetition ratios x_i / y_i (robust to slow drifts of the load)."""
    return med([x / y for x, y in zip(xs, ys) if y])


def ratio(xs, ys):
    """Ratio of the medians."""
    return med(xs) / med(ys) if med(ys) else float("nan")


def best_of(xs, ys):
    return min(xs) / min(ys) if xs and ys and min(ys) else float("nan")


def ratio_text(label, xs, ys):
    """`label = **R** (paired P, best-of B)` for two series of wall times of the same run."""
    return f"{label} = **{ratio(xs, ys):.2f}** (paired {paired(xs, ys):.2f}, best-of {best_of(xs, ys):.2f})"
