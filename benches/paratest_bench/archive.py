"""archive (issue 13): `cargo paratest archive` vs `cargo nextest archive`, and runs from the archive
elsewhere (project moved away, cargo off PATH): pass counts against `cargo test --tests`."""

import shutil

from . import measure as m
from .common import (FIXTURES, OPTS, base_env, cargo_test_counts, fetch_crate, fmt_runs, fmt_s, fresh_copy,
                     header, log, paratest_summary, prebuild, pt, run, table, verdict)


def bare_env():
    """No cargo, no rustc: the system's directories only (cargo lives in ~/.cargo/bin)."""
    env = base_env(PATH="/usr/bin:/bin")
    for tool in ("cargo", "rustc"):
        if shutil.which(tool, path=env["PATH"]):
            raise SystemExit(f"{tool} is in /usr/bin or /bin: cannot hide it")
    return env


def archive_one(label, proj):
    work = OPTS.work / "archive"
    work.mkdir(parents=True, exist_ok=True)
    prebuild(proj)
    ct_counts = cargo_test_counts(run(["cargo", "test", "--tests", "--no-fail-fast"], proj))
    pt_file, nx_file = work / f"{label}.paratest.tar.zst", work / f"{label}.nextest.tar.zst"
    got = m.interleave([m.Cmd("pt", pt() + ["archive", "--archive-file", str(pt_file)], proj),
                        m.Cmd("nx", ["cargo", "nextest", "archive", "--archive-file", str(nx_file)], proj)],
                       OPTS.reps, f"archive {label}")
    if any(r.rc != 0 for rs in got.values() for r in rs):
        raise SystemExit(f"archive {label}: an archive command failed")
    sizes = {"pt": pt_file.stat().st_size, "nx": nx_file.stat().st_size}
    moved = proj.with_name(proj.name + ".moved-away")
    shutil.rmtree(moved, ignore_errors=True)
    proj.rename(moved)
    try:
        env = bare_env()
        elsewhere = work / f"{label}-elsewhere"
        shutil.rmtree(elsewhere, ignore_errors=True)
        elsewhere.mkdir()
        whole = run(pt() + ["run", "--archive-file", str(pt_file), "-j", "2", "--message-format", "json"],
                    elsewhere, env=env, timeout=1800)
        shard_ids, shard_counts = [], []
        for k in (1, 2):
            r = run(pt() + ["run", "--archive-file", str(pt_file), "-j", "2", "--partition", f"{k}/2",
                            "--message-format", "json", "--junit", str(elsewhere / f"junit-{k}.xml")],
                    elsewhere, env=env, timeout=1800)
            shard_ids += [e["id"] for e in r.events() if e.get("event") == "test-finished" and not e.get("retrying")]
            shard_counts.append(paratest_summary(r))
    finally:
        moved.rename(proj)
    ws = paratest_summary(whole)
    if whole.rc not in (0, 1):
        log(whole.err[-3000:])
    once = len(shard_ids) == len(set(shard_ids))
    ptw, nxw = m.walls(got["pt"]), m.walls(got["nx"])
    print(f"#### {label} ({proj.name})")
    print()
    table(["archive", "size", "creation s (median)", "runs"], [
        ["cargo-paratest archive", f"{sizes['pt'] / 1e6:.1f} MB", fmt_s(m.med(ptw)), fmt_runs(ptw)],
        ["cargo nextest archive", f"{sizes['nx'] / 1e6:.1f} MB", fmt_s(m.med(nxw)), fmt_runs(nxw)],
    ])
    print()
    shard_passed = sum(c[0] for c in shard_counts if c)
    shard_failed = sum(c[1] for c in shard_counts if c)
    print(f"- `cargo test --tests` (in place): {ct_counts[0]} passed, {ct_counts[1]} failed, {ct_counts[2]} ignored")
    print(f"- from the archive, moved away, cargo off PATH, `-j 2`: exit {whole.rc}, "
          f"{ws[0] if ws else '?'} passed, {ws[1] if ws else '?'} failed (of {ws[2] if ws else '?'})")
    print(f"- two shards `--partition 1/2`, `2/2`: {shard_passed} passed, {shard_failed} failed, "
          f"each test {'once' if once else 'MORE THAN ONCE'} ({len(shard_ids)} finished)")
    print(f"- size ratio paratest/nextest {sizes['pt'] / sizes['nx']:.2f} (ours holds the source too); "
          f"{m.ratio_text('creation paratest / nextest', ptw, nxw)}")
    print()
    return ws, ct_counts, once, shard_passed


def archive(args):
    header("archive", "`cargo paratest archive` vs `cargo nextest archive`, and runs from the archive elsewhere")
    fixture = fresh_copy(FIXTURES / "archive-suite", OPTS.work / "archive-suite")
    name, _, version = args.archive_crate.partition("@")
    crate = fetch_crate(name, version)
    ok = True
    for label, proj in (("archive-suite", fixture), (f"{name}-{version}", crate)):
        ws, ct, once, shard_passed = archive_one(label, proj)
        ok = ok and ws is not None and ws[0] == ct[0] and ws[1] == ct[1] and once and shard_passed == ct[0]
    verdict("archive", ok, "pass/fail counts from the archive (whole and two shards) equal cargo test's, each test once")


def add_args(p, d):
    p.add_argument("--archive-crate", default=d("ripgrep@14.1.1"), metavar="NAME@VERSION",
                   help="third-party crate for archive (default: ripgrep@14.1.1; building it takes minutes)")
