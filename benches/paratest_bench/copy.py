"""copy: workspace creation vs `cp -r` for a project of 10,000 small files (disk and tmpfs)."""

import os
import shutil
import subprocess
from pathlib import Path

from . import measure as m
from .common import OPTS, base_env, fmt_runs, fmt_s, header, log, prebuild, pt, table, verdict


def make_copy_project(root, nfiles):
    shutil.rmtree(root, ignore_errors=True)
    (root / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text(
        '[package]\nname = "copytree"\nversion = "0.1.0"\nedition = "2021"\npublish = false\n\n[workspace]\n')
    (root / "src" / "lib.rs").write_text("#[test]\nfn trivial() {\n    assert_eq!(1 + 1, 2);\n}\n")
    ndirs = 100
    per = max(1, nfiles // ndirs)
    body = ("x" * 63 + "\n") * 3 + "y" * 7 + "\n"  # 200 bytes
    for d in range(ndirs):
        dd = root / "tree" / f"d{d:03}"
        dd.mkdir(parents=True)
        for f in range(per):
            (dd / f"f{f:03}.txt").write_text(body)
    return ndirs * per


def count_files(path):
    return sum(len(files) for _, _, files in os.walk(path))


def reflink_supported(directory):
    a, b = directory / "reflink-a", directory / "reflink-b"
    a.write_text("reflink probe\n")
    rl = subprocess.run(["cp", "--reflink=always", str(a), str(b)], capture_output=True, text=True)
    for p in (a, b):
        p.unlink(missing_ok=True)
    why = rl.stderr.strip().splitlines()[-1] if rl.stderr.strip() else ""
    return rl.returncode == 0, why


def measure_copy(base, reps, files):
    """paratest's workspace-ready `duration` and `cp -r` of a generated project under `base`.
    Every copy goes to a fresh path, all are deleted only at the end, `sync` runs before each.
    Returns (paratest durations, paratest walls, cp walls, files in source, files copied, nfiles)."""
    base.mkdir(parents=True, exist_ok=True)
    proj = base / "copytree"
    nfiles = make_copy_project(proj, files)
    env = base_env(CARGO_TARGET_DIR=str(OPTS.work / "copytree-target"))
    prebuild(proj, env=env)
    src_files = count_files(proj)
    side = base / "copytree-side"  # timings/junit/logs outside the source
    side_args = ["--timings", str(side / "timings.json"), "--junit", str(side / "junit.xml"),
                 "--output", str(side / "logs")]
    outs = base / "copy-out"
    shutil.rmtree(outs, ignore_errors=True)
    outs.mkdir()
    ready = {}
    counter = iter(range(10 ** 6))

    def pt_cmd():
        root = outs / f"ws-{next(counter)}"
        root.mkdir()
        ready["root"] = root
        return pt() + ["run", "-j", "1", "--message-format", "json", "--workspace-root", str(root),
                       "--keep-workspaces"] + side_args

    def after_pt(r, _rep):
        evs = [e for e in r.events() if e.get("event") == "workspace-ready"]
        if r.rc != 0 or not evs:
            log(r.err[-2000:])
            raise SystemExit("copy: paratest run failed or printed no workspace-ready event")
        ready["copied"] = count_files(evs[0]["path"])
        ready.setdefault("durations", []).append(evs[0]["duration"])

    # A Cmd's argv is fixed, so a fresh destination is made in `before` and patched in.
    ptc = m.Cmd("pt", [], proj, env=env, after=after_pt)
    cpc = m.Cmd("cp", [], base, env=env)

    def before_pt():
        ptc.argv = pt_cmd()
        os.sync()

    def before_cp():
        cpc.argv = ["cp", "-r", str(proj), str(outs / f"cp-{next(counter)}")]
        os.sync()

    ptc.before, cpc.before = before_pt, before_cp
    m.warm_up([ptc, cpc])  # warm-up + check of what gets copied
    ready["durations"] = []
    got = m.interleave([ptc, cpc], reps, f"copy in {base}")
    shutil.rmtree(outs, ignore_errors=True)
    return ready["durations"], m.walls(got["pt"]), m.walls(got["cp"]), src_files, ready["copied"], nfiles


def copy(args):
    reps = max(7, OPTS.reps)  # cheap, and the file system is the noisiest part
    disk = OPTS.work / "copy-disk"
    pts, walls, cps, src_files, copied, nfiles = measure_copy(disk, reps, args.files)
    reflink, why = reflink_supported(disk)
    shm = Path("/dev/shm")
    mem = None
    if shm.is_dir() and os.access(shm, os.W_OK):
        mem_base = shm / "paratest-bench-copy"
        mem = measure_copy(mem_base, reps, args.files)
        shutil.rmtree(mem_base, ignore_errors=True)
    ratio = m.ratio(pts, cps)
    header("copy", f"workspace creation for a project holding {nfiles} files of 200 bytes in 100 dirs", reps)
    rows = [
        [f"paratest workspace-ready `duration` (-j 1), disk ({disk})", fmt_s(m.med(pts)), fmt_runs(pts)],
        ["`cp -r` of the same project dir, disk", fmt_s(m.med(cps)), fmt_runs(cps)],
        ["(whole `cargo paratest run -j 1`, disk, for scale)", fmt_s(m.med(walls)), fmt_runs(walls)],
    ]
    if mem:
        rows += [["paratest workspace-ready `duration`, tmpfs (/dev/shm)", fmt_s(m.med(mem[0])), fmt_runs(mem[0])],
                 ["`cp -r`, tmpfs (/dev/shm)", fmt_s(m.med(mem[2])), fmt_runs(mem[2])]]
    table(["what", "median s", "runs s"], rows)
    print()
    print(f"files in source: {src_files}; files in the paratest workspace: {copied}; "
          f"reflinks (`cp --reflink=always`) on {disk}: {'supported' if reflink else 'NOT supported'}"
          f"{' (' + why + ')' if why and not reflink else ''}")
    print(m.ratio_text("paratest copy / cp -r, disk", pts, cps))
    mem_note, mratio = "", None
    if mem:
        mratio = m.ratio(mem[0], mem[2])
        mem_note = f"; tmpfs {mratio:.2f}"
        print(m.ratio_text("paratest copy / cp -r, tmpfs (no disk noise)", mem[0], mem[2]))
    ok = ratio <= 1.0 and (mratio is None or mratio <= 1.0) and copied is not None and copied >= src_files
    verdict("copy", ok, f"workspace/cp -r = {ratio:.2f} on disk (goal <= 1.0){mem_note}, {nfiles} files; "
            f"{copied} of {src_files} files copied; reflink {'yes' if reflink else 'no'}")


def add_args(p, d):
    p.add_argument("--files", type=int, default=d(10000), metavar="N",
                   help="files in the generated project of copy (default: 10000, as 100 dirs)")
