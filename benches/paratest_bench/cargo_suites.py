"""Cargo suites: legacy (shared file), real-suite (itertools), skewed, tempdir (walkdir), cargo-real.

With `--baseline BIN`, legacy, real-suite, skewed and cargo-real also time that other binary's
same command in the same interleaved repetitions and print the ratio new / old.
"""

import json

from . import measure as m
from .common import (FIXTURES, OPTS, binaries, cargo_test_counts, fetch_crate, fmt_runs, fmt_s, fresh_copy,
                     header, log, nextest_count, paratest_summary, pass_fail, prebuild, pt, run, table,
                     test_durations, verdict)


def baseline_rows(got, label, key="pt"):
    """Table rows and a ratio line for `--baseline` (keys `KEY-new`, `KEY-old`)."""
    if f"{key}-old" not in got:
        return [], ""
    new, old = m.walls(got[f"{key}-new"]), m.walls(got[f"{key}-old"])
    row = [f"{label}, --baseline binary", pass_fail(got[f"{key}-old"][-1]), fmt_s(m.med(old)), fmt_runs(old)]
    return [row], m.ratio_text("new / old (--baseline)", new, old)


def not_slower(got, key="pt"):
    """(ok, text) of the "not slower than before" check: new / old <= 1.05 by medians."""
    if f"{key}-old" not in got:
        return True, ""
    r = m.ratio(m.walls(got[f"{key}-new"]), m.walls(got[f"{key}-old"]))
    return r <= 1.05, f"; new/old = {r:.2f} (goal <= 1.05, not slower)"


def pt_cmds(key, args, proj, **kw):
    """One Cmd per binary (`KEY-new`, and `KEY-old` with --baseline)."""
    return [m.Cmd(f"{key}-{label}", pt(b) + args, proj, **kw) for label, b in binaries()]


# ---------------------------------------------------------------- legacy


def legacy(args):
    """fixtures/legacy: 12 tests x 0.4 s writing one shared file; paratest -j 4 vs nextest -j 1."""
    proj = fresh_copy(FIXTURES / "legacy", OPTS.work / "legacy")
    prebuild(proj)
    pts = pt_cmds("pt", ["run", "-j", "4", "--message-format", "json"], proj)
    nx1 = m.Cmd("nx", ["cargo", "nextest", "run", "-j", "1"], proj)
    m.warm_up(pts)
    got = m.interleave(pts + [nx1], OPTS.reps, "legacy")
    nx4 = run(["cargo", "nextest", "run", "-j", "4", "--no-fail-fast"], proj)
    ct = run(["cargo", "test"], proj)
    none4 = run(pt() + ["run", "-j", "4", "--isolation", "none"], proj)
    ptw, nxw = m.walls(got["pt-new"]), m.walls(got["nx"])
    pt_ok = all(r.rc == 0 for r in got["pt-new"])
    nx_ok = all(r.rc == 0 for r in got["nx"])
    counts = nextest_count(nx4)
    brows, bline = baseline_rows(got, "cargo paratest -j 4 (copy)")
    header("legacy", "fixtures/legacy, 12 tests x 0.4 s writing one shared file")
    table(["command", "result", "median s", "runs s"], [
        ["cargo paratest -j 4 (copy)", "pass" if pt_ok else "FAIL", fmt_s(m.med(ptw)), fmt_runs(ptw)],
        *brows,
        ["cargo nextest run -j 1", "pass" if nx_ok else "FAIL", fmt_s(m.med(nxw)), fmt_runs(nxw)],
        ["cargo nextest run -j 4", pass_fail(nx4) + (f" ({counts[0]} passed, {counts[1]} failed)" if counts else ""),
         fmt_s(nx4.wall), "1 run"],
        ["cargo test", pass_fail(ct), fmt_s(ct.wall), "1 run"],
        ["cargo paratest -j 4 --isolation none", pass_fail(none4), fmt_s(none4.wall), "1 run"],
    ])
    summary = paratest_summary(got["pt-new"][-1])
    ratio = m.ratio(ptw, nxw)
    print()
    print(f"paratest tests: {summary[2] if summary else '?'}; {m.ratio_text('paratest -j 4 / nextest -j 1', ptw, nxw)}")
    if bline:
        print(bline)
    same_ok, same_text = not_slower(got)
    verdict("legacy", pt_ok and nx_ok and ratio <= 0.45 and nx4.rc != 0 and ct.rc != 0 and same_ok,
            f"paratest/nextest-j1 = {ratio:.2f} (goal <= 0.45); paratest {'passes' if pt_ok else 'FAILS'}; "
            f"nextest -j 4 {'fails' if nx4.rc else 'passes (unexpected)'}, "
            f"cargo test {'fails' if ct.rc else 'passes (unexpected)'}{same_text}")


# ---------------------------------------------------------------- real-suite


def per_test_startup(proj):
    """Median wall time of one test binary running one tiny test (bare process start-up)."""
    r = run(["cargo", "nextest", "list", "--message-format", "json"], proj)
    try:
        data = json.loads(r.out)
    except json.JSONDecodeError:
        return float("nan")
    for suite in data.get("rust-suites", {}).values():
        for tname, info in suite.get("testcases", {}).items():
            if info.get("ignored"):
                continue
            return m.med([run([suite["binary-path"], "--exact", tname, "--nocapture"], suite.get("cwd", proj)).wall
                          for _ in range(20)])
    return float("nan")


def partition_balance(proj):
    """Issue 3: max shard / mean shard expected time with 3 shards."""
    shards = []
    for k in (1, 2, 3):
        r = run(pt() + ["list", "--partition", f"{k}/3", "--message-format", "json"], proj)
        shards.append(sum(float(e.get("expected_duration", 0)) for e in r.events()))
    mean = sum(shards) / 3
    bal = max(shards) / mean if mean else float("nan")
    print(f"partition balance (3 shards, expected s: {', '.join(f'{s:.2f}' for s in shards)}): "
          f"max/mean = **{bal:.3f}** (goal <= 1.05)")


def cargo_compare(proj, name, reps, nextest_args=("--no-fail-fast",)):
    """paratest -j 2 (and --baseline) vs nextest -j 2 vs `cargo test --tests`, warm, interleaved."""
    prebuild(proj)
    cmds = pt_cmds("pt", ["run", "-j", "2", "--message-format", "json"], proj) + [
        m.Cmd("nx", ["cargo", "nextest", "run", "-j", "2", *nextest_args], proj),
        # doctests left out: neither nextest nor paratest runs them
        m.Cmd("ct", ["cargo", "test", "--tests", "--no-fail-fast"], proj),
    ]
    m.warm_up(cmds)  # untimed: records timings, proves nothing is left to compile
    return m.interleave(cmds, reps, name)


def cargo_rows(got):
    ps, ns, cs = paratest_summary(got["pt-new"][-1]), nextest_count(got["nx"][-1]), cargo_test_counts(got["ct"][-1])

    def row(label, key, tests):
        rs = got[key]
        ok = "pass" if all(r.rc == 0 for r in rs) else f"FAIL (exit {rs[-1].rc})"
        return [label, ok, tests, fmt_s(m.med(m.walls(rs))), fmt_runs(m.walls(rs)), fmt_s(m.med(m.cpus(rs)))]

    rows = [row("cargo paratest -j 2 (copy, warm)", "pt-new", f"{ps[0]}/{ps[2]} passed" if ps else "?")]
    if "pt-old" in got:
        po = paratest_summary(got["pt-old"][-1])
        rows.append(row("cargo paratest -j 2, --baseline binary", "pt-old", f"{po[0]}/{po[2]} passed" if po else "?"))
    rows += [row("cargo nextest run -j 2", "nx", f"{ns[0]}/{ns[2]} passed" if ns else "?"),
             row("cargo test --tests", "ct", f"{cs[0]} passed, {cs[1]} failed, {cs[2]} ignored")]
    return rows, (ps[2] if ps else 0)


CARGO_HEADERS = ["command", "result", "tests", "median wall s", "runs wall s", "median CPU s"]


def real_suite(args):
    """A crates.io crate's own suite (default itertools 0.14.0): paratest -j 2 vs nextest -j 2."""
    name, _, version = args.crate.partition("@")
    proj = fetch_crate(name, version)
    reps = max(5, OPTS.reps)  # the noisiest of the benchmarks on a shared machine
    got = cargo_compare(proj, "real-suite", reps)
    rows, n = cargo_rows(got)
    ptw, nxw, ctw = m.walls(got["pt-new"]), m.walls(got["nx"]), m.walls(got["ct"])
    header("real-suite", f"crates.io `{name}` {version}, its own test suite", reps)
    table(CARGO_HEADERS, rows)
    ratio = m.ratio(ptw, nxw)
    print()
    print(f"{m.ratio_text('paratest / nextest wall', ptw, nxw)}; CPU ratio "
          f"{m.ratio(m.cpus(got['pt-new']), m.cpus(got['nx'])):.2f}; paratest / cargo test wall = "
          f"{m.ratio(ptw, ctw):.2f}")
    _, bline = baseline_rows(got, "")
    if bline:
        print(bline)
    durs = test_durations(got["pt-new"][-1])
    if durs and n:
        busy = sum(durs.values())
        print(f"diagnostics: sum of per-test durations {busy:.2f} s over 2 workers = {busy / 2:.2f} s; "
              f"bare process start-up of one tiny test {per_test_startup(proj) * 1000:.1f} ms")
    partition_balance(proj)
    pt_ok = all(r.rc == 0 for r in got["pt-new"])
    same_ok, same_text = not_slower(got)
    verdict("real-suite", pt_ok and ratio <= 1.3 and n >= 300 and same_ok,
            f"{name} {version}, {n} tests, paratest {'passes' if pt_ok else 'FAILS'}; "
            f"paratest/nextest = {ratio:.2f} (goal <= 1.3){same_text}")


# ---------------------------------------------------------------- cargo-real (issue 12)


def cargo_real(args):
    """Issue 12: real Cargo suites, paratest -j 2 warm vs `cargo test` (goal <= 1.0 x) and nextest -j 2."""
    ok = True
    lines = []
    for spec in args.cargo_crates:
        name, _, version = spec.partition("@")
        proj = fetch_crate(name, version)
        got = cargo_compare(proj, f"cargo-real {name}", OPTS.reps)
        rows, n = cargo_rows(got)
        ptw, nxw, ctw = m.walls(got["pt-new"]), m.walls(got["nx"]), m.walls(got["ct"])
        header("cargo-real", f"crates.io `{name}` {version}, its own suite ({n} tests), -j 2, warm timings")
        table(CARGO_HEADERS, rows)
        r_ct, r_nx = m.ratio(ptw, ctw), m.ratio(ptw, nxw)
        print()
        print(f"{m.ratio_text('paratest / cargo test', ptw, ctw)}; {m.ratio_text('paratest / nextest', ptw, nxw)}")
        _, bline = baseline_rows(got, "")
        if bline:
            print(bline)
        # A suite may have tests that fail here under every tool: paratest must agree with cargo test.
        ps, cs = paratest_summary(got["pt-new"][-1]), cargo_test_counts(got["ct"][-1])
        pt_ok = ps is not None and (ps[0], ps[1]) == cs[:2]
        failing = sorted(e["id"] for e in got["pt-new"][-1].events()
                         if e.get("event") == "test-finished" and e.get("result") in ("failed", "timed-out"))
        if failing:
            print(f"failing under paratest (cargo test: {cs[1]} failed): {', '.join(failing[:10])}")
        ok = ok and pt_ok and r_ct <= 1.0
        lines.append(f"{name} {version} ({n} tests) {r_ct:.2f} x cargo test, {r_nx:.2f} x nextest"
                     f"{'' if pt_ok else ' (paratest and cargo test DISAGREE on pass/fail counts)'}")
    verdict("cargo-real", ok, "; ".join(lines) + " (goal <= 1.0 x cargo test)")


# ---------------------------------------------------------------- skewed


def skewed(args):
    """fixtures/skewed: 16 x 0.5 s + one 4 s test named last, -j 4: cold/warm vs nextest and the bound."""
    proj = fresh_copy(FIXTURES / "skewed", OPTS.work / "skewed")
    prebuild(proj)
    timings = proj / ".paratest" / "timings.json"
    run_args = ["run", "-j", "4", "--message-format", "json"]
    blocks = []
    for label, b in binaries():
        cold = m.Cmd(f"cold-{label}", pt(b) + run_args, proj, before=lambda: timings.unlink(missing_ok=True))
        warm = m.Cmd(f"pt-{label}", pt(b) + run_args, proj)  # timings recorded by the cold run
        blocks.append([cold, warm])
    blocks += [m.Cmd("nx", ["cargo", "nextest", "run", "-j", "4"], proj),
               m.Cmd("one", pt() + run_args + ["--exact", "a01_short"], proj)]
    m.warm_up([blocks[0][1]])
    got = m.interleave(blocks, OPTS.reps, "skewed")
    lbs, starts = [], []
    for w in got["pt-new"]:
        d = test_durations(w)
        if d:
            lbs.append(max(max(d.values()), sum(d.values()) / 4))
    for s in got["one"]:
        sd = test_durations(s)
        starts.append(s.wall - sum(sd.values()) if sd else float("nan"))
    colds, warms, nxs = m.walls(got["cold-new"]), m.walls(got["pt-new"]), m.walls(got["nx"])
    lb, st = m.med(lbs), m.med(starts)
    warm, cold, nx = m.med(warms), m.med(colds), m.med(nxs)
    ok = all(r.rc == 0 for k in ("cold-new", "pt-new", "nx") for r in got[k])
    rows = [["cargo paratest -j 4, cold (no timings.json)", fmt_s(cold), fmt_runs(colds)],
            ["cargo paratest -j 4, warm", fmt_s(warm), fmt_runs(warms)]]
    if OPTS.baseline:
        rows += [["--baseline binary, cold", fmt_s(m.med(m.walls(got["cold-old"]))), fmt_runs(m.walls(got["cold-old"]))],
                 ["--baseline binary, warm", fmt_s(m.med(m.walls(got["pt-old"]))), fmt_runs(m.walls(got["pt-old"]))]]
    rows += [["cargo nextest run -j 4", fmt_s(nx), fmt_runs(nxs)],
             ["lower bound max(longest, total/4) (measured durations)", fmt_s(lb), fmt_runs(lbs)],
             ["paratest fixed start-up (one-test run minus the test)", fmt_s(st), fmt_runs(starts)]]
    header("skewed", "fixtures/skewed, 16 x 0.5 s + one 4 s test named last, -j 4")
    table(["what", "median s", "runs s"], rows)
    budget = 1.1 * lb + st
    print()
    print(f"warm / lower bound = **{warm / lb:.2f}**; warm / (1.1 x lower bound + start-up {st:.2f} s) = "
          f"**{warm / budget:.2f}** (goal <= 1.0); warm / nextest = **{warm / nx:.2f}** (goal <= 0.8); "
          f"cold / nextest = {cold / nx:.2f}")
    _, bline = baseline_rows(got, "")
    if bline:
        print(f"warm {bline}; cold {m.ratio_text('new / old', colds, m.walls(got['cold-old']))}")
    same_ok, same_text = not_slower(got)
    verdict("skewed", ok and warm <= budget and warm / nx <= 0.8 and same_ok,
            f"warm = {warm / lb:.2f} x lower bound ({warm:.2f} s vs budget {budget:.2f} s); "
            f"warm/nextest = {warm / nx:.2f} (goal <= 0.8); all runs {'pass' if ok else 'DID NOT PASS'}{same_text}")


# ---------------------------------------------------------------- tempdir (issue 10)


def tempdir(args):
    """walkdir 2.5.1's suite, paratest -j 2, run after run: every run must pass (own TMPDIR per worker)."""
    proj = fetch_crate("walkdir", "2.5.1")
    run(["cargo", "test", "--no-run"], proj, check=True)
    run(pt() + ["list"], proj, check=True)
    cmd = pt() + ["run", "-j", "2", "--message-format", "json"]
    runs = []
    for i in range(args.runs):
        log(f"  tempdir run {i + 1} of {args.runs}")
        runs.append(run(cmd, proj))
    summaries = [paratest_summary(r) for r in runs]
    passed_runs = sum(1 for r in runs if r.rc == 0)
    failed_tests = [s[1] if s else "?" for s in summaries]
    n = summaries[-1][2] if summaries[-1] else 0
    header("tempdir", "crates.io `walkdir` 2.5.1, its own test suite; `cargo paratest -j 2` run after run", len(runs))
    table(["runs", "runs passed", "tests per run", "failed tests per run", "median wall s"],
          [[str(len(runs)), str(passed_runs), str(n), " ".join(map(str, failed_tests)), fmt_s(m.med(m.walls(runs)))]])
    if passed_runs < len(runs):
        log(next(r for r in runs if r.rc != 0).err[-3000:])
    verdict("tempdir", passed_runs == len(runs) and n > 0,
            f"walkdir 2.5.1, {n} tests: {passed_runs} of {len(runs)} runs with -j 2 pass (goal: all)")


def add_real_suite_args(p, d):
    p.add_argument("--crate", default=d("itertools@0.14.0"), metavar="NAME@VERSION",
                   help="crates.io crate for real-suite (default: itertools@0.14.0)")


def add_cargo_real_args(p, d):
    p.add_argument("--cargo-crate", dest="cargo_crates", action="append", metavar="NAME@VERSION",
                   help="crates.io crate(s) for cargo-real, repeatable (default: ripgrep@14.1.1 and just@1.59.0)")


def add_tempdir_args(p, d):
    p.add_argument("--runs", type=int, default=d(10), metavar="N", help="runs of tempdir (default: 10)")


CARGO_REAL_DEFAULT = ["ripgrep@14.1.1", "just@1.59.0"]
