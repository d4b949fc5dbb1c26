"""What every benchmark shares: options, running a command, tables, verdicts, projects."""

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
FIXTURES = REPO / "fixtures"


class Options:
    """The parsed command line (set once by __main__; defaults for library use)."""

    reps = 3
    build = True
    bin = str(REPO / "target" / "release" / "cargo-paratest")
    baseline = None
    work = Path(os.environ.get("PARATEST_BENCH_DIR", "/tmp/paratest-bench"))
    fresh = False
    timeout = 900


OPTS = Options()
VERDICTS = []


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def base_env(**extra):
    """The environment of every command: no inherited paratest/cargo overrides."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PARATEST") and k not in ("CARGO_TARGET_DIR", "CI", "RUST_TEST_THREADS")
    }
    env["NO_COLOR"] = "1"
    env["CARGO_TERM_COLOR"] = "never"
    env.update(extra)
    return env


class Result:
    """One finished command: exit code, wall and CPU seconds, output."""

    def __init__(self, rc, wall, out, err, cpu=float("nan")):
        self.rc, self.wall, self.out, self.err, self.cpu = rc, wall, out, err, cpu

    def events(self):
        """The JSON lines of stdout (`--message-format json`)."""
        evs = []
        for line in self.out.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    evs.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
        return evs


def run(cmd, cwd, env=None, timeout=900, check=False):
    """Runs `cmd` (a list); wall time, and CPU (user + sys) of it and every descendant it waited for."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, cwd=str(cwd), env=env or base_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, timeout=timeout)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = "timeout", e.stdout or b"", (e.stderr or b"") + f"\n[timed out after {timeout} s]".encode()
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    r = Result(rc, wall, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), cpu)
    if check and r.rc != 0:
        log(f"command failed (exit {r.rc}): {' '.join(map(str, cmd))} in {cwd}")
        log(r.err[-4000:])
        log(r.out[-2000:])
        raise SystemExit(1)
    return r


def pt(binary=None):
    """The argv prefix of the binary under test (or of another one, e.g. --baseline)."""
    return [binary or OPTS.bin]


def binaries():
    """[(label, binary)]: the binary under test, then --baseline when given."""
    out = [("new", OPTS.bin)]
    if OPTS.baseline:
        out.append(("old", OPTS.baseline))
    return out


# ---------------------------------------------------------------- output


def fmt_s(x):
    return f"{x:.3f}"


def fmt_runs(xs):
    return " ".join(f"{x:.2f}" for x in xs)


def table(headers, rows):
    """A markdown table, columns padded."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


def header(name, what, reps=None):
    print()
    print(f"### {name}: {what}")
    print()
    base = f"; baseline {version_of(OPTS.baseline)}" if OPTS.baseline else ""
    print(f"{time.strftime('%Y-%m-%d %H:%M')} UTC, {os.cpu_count()} cores, shared machine, "
          f"median of {reps or OPTS.reps} interleaved runs, cargo-paratest {version_of(OPTS.bin)}{base}")
    print()


_versions = {}


def version_of(binary):
    if binary not in _versions:
        try:
            v = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
        except OSError:
            v = ""
        v = v.split(None, 1)[-1] if v else "?"
        text = f"{v} at {binary}"
        if Path(binary).resolve().is_relative_to(REPO):
            rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                 text=True).stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "src"], cwd=REPO, capture_output=True,
                                   text=True).stdout.strip()
            text = f"{v}, {Path(binary).resolve().relative_to(REPO)} of git {rev}{' (src dirty)' if dirty else ''}"
        _versions[binary] = text
    return _versions[binary]


def verdict(name, ok, text):
    """The one VERDICT line of a benchmark (also collected for the final summary)."""
    line = f"VERDICT {name}: {'PASS' if ok else 'FAIL'}: {text}"
    VERDICTS.append(line)
    print()
    print(line)
    sys.stdout.flush()


# ---------------------------------------------------------------- results


def pass_fail(r):
    return "pass" if r.rc == 0 else f"FAIL (exit {r.rc})"


def paratest_summary(r):
    """(passed, failed, total) from the run-finished event of a json run."""
    for e in r.events():
        if e.get("event") == "run-finished":
            passed = e.get("passed", 0)
            failed = e.get("failed", 0) + e.get("timed_out", 0)
            total = passed + failed + e.get("flaky", 0) + e.get("skipped", 0) + e.get("not_run", 0)
            return passed, failed, total
    return None


def test_durations(r):
    return {e["id"]: e["duration"] for e in r.events() if e.get("event") == "test-finished"}


def nextest_count(r):
    """(passed, failed, total) from nextest's `Summary [...] N tests run: P passed, F failed` line."""
    m = re.search(r"(\d+) tests? run: (\d+) passed(?:.*?(\d+) failed)?", r.err + r.out)
    if not m:
        return None
    return int(m.group(2)), int(m.group(3) or 0), int(m.group(1))


def cargo_test_counts(r):
    """(passed, failed, ignored) summed over libtest's `test result:` lines."""
    total = [0, 0, 0]
    for m in re.finditer(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", r.out + r.err):
        for i in range(3):
            total[i] += int(m.group(i + 1))
    return tuple(total)


# ---------------------------------------------------------------- projects


def build_tool():
    """`cargo build --release` of this checkout (retried: another engineer may be mid-edit)."""
    if not OPTS.build:
        return
    for attempt in range(1, 6):
        log(f"cargo build --release in {REPO} (attempt {attempt}) ...")
        r = run(["cargo", "build", "--release"], REPO, timeout=1800)
        if r.rc == 0:
            return
        log(r.err[-3000:])
        log("build failed (someone may be mid-edit); retrying in 60 s")
        time.sleep(60)
    raise SystemExit("cargo build --release kept failing")


def fresh_copy(src, dest):
    """Copies a fixture to a scratch dir (never builds inside fixtures/)."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("target", ".paratest"))
    return dest


def prebuild(project, env=None):
    """Builds the test binaries for cargo test, nextest and paratest (same profile)."""
    log(f"  prebuilding {project} ...")
    run(["cargo", "test", "--no-run"], project, env=env, check=True, timeout=3600)
    run(["cargo", "nextest", "list"], project, env=env, check=True)
    for _, binary in binaries():
        run(pt(binary) + ["list"], project, env=env, check=True)


def fetch_crate(name, version):
    """A crates.io package's source, got through cargo (a scratch project + `cargo metadata`), copied
    to work/NAME-VERSION; a crate with no library (ripgrep) is found in the registry where cargo
    unpacked it anyway."""
    dest = OPTS.work / f"{name}-{version}"
    if dest.exists() and not OPTS.fresh:
        return dest
    scratch = OPTS.work / f"fetch-{name}-{version}"
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "src").mkdir(parents=True)
    (scratch / "src" / "lib.rs").write_text("")
    (scratch / "Cargo.toml").write_text(
        f'[package]\nname = "fetch-scratch"\nversion = "0.0.0"\nedition = "2021"\n\n[workspace]\n\n'
        f'[dependencies]\n{name} = "={version}"\n'
    )
    log(f"  fetching {name} {version} with cargo ...")
    meta = json.loads(run(["cargo", "metadata", "--format-version", "1"], scratch, check=True).out)
    pkgs = [p for p in meta["packages"] if p["name"] == name and p["version"] == version]
    if pkgs:
        src = Path(pkgs[0]["manifest_path"]).parent
    else:
        home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
        found = sorted(home.glob(f"registry/src/*/{name}-{version}"))
        if not found:
            raise SystemExit(f"cannot find {name} {version} in {home}/registry/src")
        src = found[0]
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(src, dest)
    return dest
