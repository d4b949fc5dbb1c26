"""scripts/bench: benchmarks of cargo-paratest; each prints a markdown table and one VERDICT line.

Every timed figure is the wall time of the whole command on a prebuilt project (nothing
compiles during timed runs); the compared commands run interleaved, N repetitions, in an
order rotated every repetition; ratios are ratios of medians measured in the same run.
"""

import argparse
import sys
import time
from pathlib import Path

from . import archive, cargo_suites, copy, pytest_suites, scale
from .common import OPTS, VERDICTS, build_tool, log

# name: (function, what it measures, goal, adds its own options)
BENCHES = {
    "legacy": (cargo_suites.legacy, "fixtures/legacy (12 tests sharing one file): paratest -j 4 vs nextest -j 1",
               "<= 0.45", None),
    "real-suite": (cargo_suites.real_suite, "a crates.io suite (itertools 0.14.0): paratest -j 2 vs nextest -j 2",
                   "<= 1.3", cargo_suites.add_real_suite_args),
    "copy": (copy.copy, "workspace creation vs `cp -r` of 10,000 small files (disk and tmpfs)", "<= 1.0",
             copy.add_args),
    "skewed": (cargo_suites.skewed, "fixtures/skewed, -j 4: cold/warm vs nextest and the lower bound",
               "warm <= 0.8 x nextest", None),
    "tempdir": (cargo_suites.tempdir, "walkdir 2.5.1's suite, -j 2, run after run (issue 10)", "every run passes",
                cargo_suites.add_tempdir_args),
    "scale": (scale.scale, "100,000 synthetic tests: queue, partition, timings load/save (cargo bench)",
              "well under 1 s", None),
    "pytest": (pytest_suites.pytest_issue5, "a PyPI sdist's suite (attrs 26.1.0), every pytest-plugin mode vs "
               "xdist -n 2 (issue 5; ~4 min)", "warm <= 1.0 x xdist", pytest_suites.add_pysuite_args),
    "archive": (archive.archive, "`cargo paratest archive` vs nextest's, runs from the archive elsewhere "
                "(issue 13)", "counts equal cargo test's", archive.add_args),
    "cargo-real": (cargo_suites.cargo_real, "ripgrep 14.1.1 and just 1.59.0: paratest -j 2 warm vs cargo test and "
                   "nextest -j 2 (issue 12)", "<= 1.0 x cargo test", cargo_suites.add_cargo_real_args),
    "pytest-real": (pytest_suites.pytest_real, "attrs 26.1.0, warm and cold vs xdist -n 2 and plain pytest "
                    "(issue 12)", "warm <= 0.8, cold <= 1.0 x xdist", pytest_suites.add_pysuite_args),
    "pytest-params": (pytest_suites.pytest_params, "generated: 21,000 parametrized cases in 10 files vs seeded "
                      "xdist -n 2 (issue 12)", "warm <= 0.8 x xdist", pytest_suites.add_params_args),
    "pytest-bigfile": (pytest_suites.pytest_bigfile, "generated: one file of 100,000 cases, paratest -j 1 vs "
                       "plain pytest (issue 12)", "<= 1.10 x", pytest_suites.add_bigfile_args),
}
GROUPS = {
    "all": (["legacy", "real-suite", "copy", "skewed", "tempdir"], "the default set (about 5-6 min)"),
    "issue12": (["cargo-real", "pytest-real", "pytest-params", "pytest-bigfile", "legacy", "skewed", "real-suite"],
                "issue 12's targets, and legacy/skewed/real-suite for 'not slower' with --baseline"),
}


def keep(value):
    return value


def suppress(_value):
    return argparse.SUPPRESS


def add_common(p, d):
    """Options of every benchmark. `d` wraps each default: the top-level parser holds the real
    defaults, the subcommands SUPPRESS (so that an option given before the subcommand survives)."""
    g = p.add_argument_group("common options")
    g.add_argument("--reps", type=int, default=d(3), metavar="N",
                   help="repetitions of every timed command (default 3; real-suite at least 5, copy at least 7)")
    g.add_argument("--no-build", dest="build", action="store_false", default=d(True),
                   help="do not run `cargo build --release` first")
    g.add_argument("--bin", default=d(None), metavar="PATH",
                   help="cargo-paratest binary (default: target/release/cargo-paratest)")
    g.add_argument("--baseline", default=d(None), metavar="BIN",
                   help="another cargo-paratest binary timed in the same runs (legacy, real-suite, skewed, "
                        "cargo-real, pytest-real, pytest-params): prints new / old")
    g.add_argument("--work", default=d(None), metavar="DIR", help="scratch directory (default: /tmp/paratest-bench)")
    g.add_argument("--fresh", action="store_true", default=d(False),
                   help="re-fetch and rebuild the crates.io/PyPI suites and their venvs")
    g.add_argument("--timeout-s", dest="timeout", type=float, default=d(900), metavar="S",
                   help="limit of one timed command, seconds (default 900)")


def add_own(p, names, d):
    """The options of the benchmarks `names` (one benchmark, or a group's members)."""
    done = set()
    for name in names:
        add = BENCHES[name][3]
        if add and add not in done:
            done.add(add)
            add(p, d)


def parser():
    top = argparse.ArgumentParser(
        prog="scripts/bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        conflict_handler="resolve",
        epilog="Options of one benchmark (see `scripts/bench NAME --help`) are also accepted before its name, "
               "as in `scripts/bench --crate semver@1.0.28 real-suite`. Examples: scripts/bench; "
               "scripts/bench --reps 5 --no-build skewed; "
               "scripts/bench --baseline /work/wt-baseline-rel/target/release/cargo-paratest issue12")
    add_common(top, keep)
    hidden = argparse.ArgumentParser(add_help=False, conflict_handler="resolve")
    add_own(hidden, BENCHES, keep)  # every benchmark's own options, with their defaults, not in --help
    for action in hidden._actions:  # argparse has no public way to copy an option to another parser
        kwargs = {"dest": action.dest, "default": action.default, "help": argparse.SUPPRESS}
        if action.nargs == 0:
            top.add_argument(*action.option_strings, action="store_const", const=action.const, **kwargs)
        else:
            top.add_argument(*action.option_strings, action=type(action), type=action.type,
                             metavar=action.metavar, **kwargs)
    subs = top.add_subparsers(dest="bench", metavar="BENCHMARK", title="benchmarks (default: all)")
    for name, (_, what, goal, _) in BENCHES.items():
        p = subs.add_parser(name, help=f"{what}; goal {goal}", description=f"{what}; goal {goal}")
        add_common(p, suppress)
        add_own(p, [name], suppress)
    for name, (members, what) in GROUPS.items():
        p = subs.add_parser(name, help=f"{' '.join(members)}: {what}", description=f"{' '.join(members)}: {what}",
                            conflict_handler="resolve")
        add_common(p, suppress)
        add_own(p, members, suppress)
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    if not args.cargo_crates:
        args.cargo_crates = cargo_suites.CARGO_REAL_DEFAULT
    OPTS.reps = max(1, args.reps)
    OPTS.build = args.build
    if args.bin:
        OPTS.bin = str(Path(args.bin).resolve())
    if args.baseline:
        OPTS.baseline = str(Path(args.baseline).resolve())
    if args.work:
        OPTS.work = Path(args.work).resolve()
    OPTS.fresh, OPTS.timeout = args.fresh, args.timeout
    name = args.bench or "all"
    names = GROUPS[name][0] if name in GROUPS else [name]
    if names == ["scale"]:
        scale.scale(args)
        return 0 if all(": PASS:" in v for v in VERDICTS) else 1
    OPTS.work.mkdir(parents=True, exist_ok=True)
    build_tool()
    for b in [OPTS.bin] + ([OPTS.baseline] if OPTS.baseline else []):
        if not Path(b).exists():
            print(f"no binary at {b}", file=sys.stderr)
            return 2
    t0 = time.monotonic()
    for n in names:
        log(f"== {n}")
        BENCHES[n][0](args)
    print()
    print(f"## verdicts ({time.monotonic() - t0:.0f} s in all)")
    for v in VERDICTS:
        print(v)
    return 0 if all(": PASS:" in v for v in VERDICTS) else 1


if __name__ == "__main__":
    sys.exit(main())
