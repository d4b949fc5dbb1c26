"""pytest suites: a PyPI sdist's own suite (`pytest`, `pytest-real`) and generated ones
(`pytest-params`, `pytest-bigfile`), cargo paratest --plugin pytest against pytest-xdist and
plain pytest, with every run's verdicts checked against plain pytest's through the binary.
"""

import glob
import os
import shutil
import subprocess
import sys

from . import measure as m
from . import reports
from .common import OPTS, base_env, binaries, fmt_runs, fmt_s, header, log, pt, run, table, verdict

# Suites known to ship their tests in the sdist and to pass with plain pytest:
# version, extra test dependencies (pip), preferred Python (None: python3).
PYSUITES = {
    # 1,386 tests in 24 files, ~10 s serial; all pass on Python 3.13 (on 3.11 and
    # 3.12, tests/test_converters.py::TestPipe::test_wrapped_annotation fails upstream).
    "attrs": ("26.1.0", ["hypothesis", "pympler", "cloudpickle"], "3.13"),
    # 2,104 tests, ~55 s serial, but 1,877 of them (45 s) in tests/test_unit.py.
    "pyparsing": ("3.3.3", ["railroad-diagrams", "jinja2"], None),
}


def find_python(want, explicit=None):
    """--python, else Python `want` if installed (a pyenv shim may exist and fail: each is tried),
    else python3."""
    if explicit:
        return explicit
    if want:
        cands = [shutil.which(f"python{want}")]
        cands += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{want}.*/bin/python")), reverse=True)
        for c in cands:
            if c and subprocess.run([c, "-c", "import venv"], capture_output=True).returncode == 0:
                return c
        log(f"  no Python {want} found; using python3 (some upstream tests may fail on it)")
    return shutil.which("python3") or "python3"


def make_venv(venv, python, packages, archive=None):
    """A venv with `packages` (and the sdist `archive`, installed from the archive so that the tree
    under test holds no build artefacts); cached unless --fresh."""
    ready = venv / ".bench-ready"
    if OPTS.fresh:
        shutil.rmtree(venv, ignore_errors=True)
    if not ready.exists():
        shutil.rmtree(venv, ignore_errors=True)
        what = [str(archive)] if archive else []
        log(f"  venv {venv} ({python}): pip install {' '.join(what + packages)} ...")
        run([python, "-m", "venv", str(venv)], OPTS.work, check=True)
        run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *what, *packages], OPTS.work,
            check=True, timeout=1200)
        ready.write_text("")
    return venv


def fetch_pysuite(name, version, deps, python):
    """The sdist unpacked to work/pytest-NAME-VERSION, and its venv."""
    key = f"{name}-{version}"
    proj, sdists = OPTS.work / f"pytest-{key}", OPTS.work / "pytest-sdists" / key
    if OPTS.fresh:
        for d in (proj, sdists):
            shutil.rmtree(d, ignore_errors=True)
    if not sdists.exists() or not any(sdists.iterdir()):
        sdists.mkdir(parents=True, exist_ok=True)
        log(f"  pip download --no-deps --no-binary :all: {name}=={version} ...")
        run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
             f"{name}=={version}", "-d", str(sdists)], OPTS.work, check=True, timeout=600)
    archive = next(sdists.iterdir())
    if not proj.exists():
        unpack = OPTS.work / f"pytest-unpack-{key}"
        shutil.rmtree(unpack, ignore_errors=True)
        shutil.unpack_archive(str(archive), str(unpack))
        (top,) = list(unpack.iterdir())
        shutil.move(str(top), str(proj))
        shutil.rmtree(unpack)
    if not any(proj.rglob("test_*.py")):
        raise SystemExit(f"the sdist of {name} {version} ships no test_*.py files")
    venv = make_venv(OPTS.work / f"pytest-venv-{key}", python, ["pytest", "pytest-xdist", *deps], archive)
    return proj, venv


def venv_env(venv):
    """Every command runs with the venv active, which is how the pytest plugin picks its Python."""
    env = base_env(VIRTUAL_ENV=str(venv), PATH=f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("PYTHONPATH", None)
    return env


LABELS = {
    "fresh": "cargo paratest -j 2, fresh (no timings, no collection cache: a CI clone)",
    "ci": "cargo paratest -j 2, timings, no collection cache (CI, timings restored)",
    "cold": "cargo paratest -j 2, cold (no timings.json)",
    "warm": "cargo paratest -j 2, warm",
    "test": 'cargo paratest -j 2, warm, granularity = "test"',
    "none": "cargo paratest -j 2 --isolation none, warm",
    "one": "cargo paratest -j 1, warm",
    "xd": "pytest -n 2 (pytest-xdist, PYTHONHASHSEED=0)",
    "ser": "pytest (plain, serial)",
}


# Paratest runs that hand each other their files, run in this order as one
# block: fresh writes timings for ci, ci a collection for cold, cold timings for warm.
PAIRED = ("fresh", "ci", "cold", "warm")


class PytestBench:
    """The commands of one pytest comparison, their runs, and every run's verdicts."""

    def __init__(self, name, proj, venv, keys, pytest_args=()):
        self.name, self.proj, self.env = name, proj, venv_env(venv)
        self.vpy = str(venv / "bin" / "python")
        self.out = OPTS.work / f"pytest-out-{name}"  # plain pytest's JUnit files, outside the project
        shutil.rmtree(self.out, ignore_errors=True)
        self.out.mkdir(parents=True)
        self.dot = proj / ".paratest"
        shutil.rmtree(self.dot, ignore_errors=True)
        self.toml = proj / "paratest.toml"
        self.toml.unlink(missing_ok=True)
        self.base = [self.vpy, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args]
        self.keys = keys
        self.verdicts = {}  # key -> [(passing ids, counts)] per run
        self.procs = {}  # key -> [stdout logs under .paratest/logs] per run
        self.versions = run([self.vpy, "-c", "import sys, pytest, xdist; print(sys.version.split()[0], "
                             "pytest.__version__, xdist.__version__)"], proj, env=self.env, check=True).out.split()

    def cmd(self, key, label="new", binary=None):
        """The Cmd of `key` (and for paratest keys, of one binary)."""
        name = key if label == "new" else f"{key}-{label}"
        if key in ("xd", "ser"):
            argv = self.base + (["-n", "2"] if key == "xd" else [])
            env = dict(self.env, PYTHONHASHSEED="0") if key == "xd" else self.env
            c = m.Cmd(name, argv, self.proj, env=env, timeout=OPTS.timeout)

            def before():
                # xunit1 reports carry `file`, which `timings import` needs to name node ids
                c.argv = argv + ["-o", "junit_family=xunit1", f"--junitxml={self.out / (name + '.xml')}"]

            c.before = before
            return c
        args = ["run", "--plugin", "pytest", "-j", "1" if key == "one" else "2", "--message-format", "json"]
        if key == "none":
            args += ["--isolation", "none"]
        c = m.Cmd(name, pt(binary) + args, self.proj, env=self.env, timeout=OPTS.timeout)

        def before():
            if key in ("cold", "fresh"):
                (self.dot / "timings.json").unlink(missing_ok=True)
            if key in ("ci", "fresh"):
                # A fresh clone's files are all new: the collection cache never matches there.
                (self.dot / "pytest-collection.json").unlink(missing_ok=True)
            if key == "test":
                self.toml.write_text('[plugin.pytest]\ngranularity = "test"\n')
            shutil.rmtree(self.dot / "logs", ignore_errors=True)

        c.before = before
        return c

    def record(self, name, ids, counts, procs):
        self.verdicts.setdefault(name, []).append((ids, counts))
        self.procs.setdefault(name, []).append(procs)

    def blocks(self):
        """Cold and warm of one binary run as a pair (warm uses the cold run's timings)."""
        out = []
        for label, binary in binaries():
            if label == "old" and not ({"cold", "warm"} & set(self.keys)):
                continue
            pair = [self.cmd(k, label, binary) for k in PAIRED if k in self.keys]
            if pair:
                out.append(pair)
            if label == "new":
                out += [self.cmd(k) for k in self.keys if k not in PAIRED]
        return out

    def measure(self, reps):
        blocks = self.blocks()
        cmds = [c for b in blocks for c in (b if isinstance(b, list) else [b])]
        for c in cmds:  # each run's verdicts are read right after it
            c.after = self._after_for(c)
        log(f"  {self.name}: warm-up runs (untimed) ...")
        m.warm_up([c for c in cmds if c.key in ("ser", "warm", "one")])
        self.toml.unlink(missing_ok=True)
        self.got = m.interleave(blocks, reps, self.name)
        return self.got

    def _after_for(self, c):
        def after(r, _rep):
            self.toml.unlink(missing_ok=True)
            if c.key.split("-")[0] in ("xd", "ser"):
                xml = self.out / f"{c.key}.xml"
                self.record(c.key, reports.passed_ids(xml, self.out), reports.counts(xml, self.out), None)
            else:
                v = reports.event_verdicts(r)
                logs = self.dot / "logs"
                procs = len(list(logs.glob("*.stdout"))) if logs.is_dir() else None
                self.record(c.key, reports.passing(v), reports.event_counts(v), procs)
        return after

    def compare(self):
        """{key: runs whose passing ids or counts differ from plain pytest's of the same repetition}."""
        refs = self.verdicts["ser"]
        bad = {}
        for k, runs in self.verdicts.items():
            bad[k] = sum(1 for i, (ids, c) in enumerate(runs)
                         if ids != refs[i if k != "ser" else 0][0] or c != refs[i if k != "ser" else 0][1])
        return bad

    def table(self, what, reps):
        bad = self.compare()
        header(self.name, f"{what}; Python {self.versions[0]}, pytest {self.versions[1]}, "
                          f"pytest-xdist {self.versions[2]}", reps)
        rows = []
        for k in self.got:
            base = k.split("-")[0]
            label = LABELS[base] + (", --baseline binary" if k.endswith("-old") else "")
            same = ("reference" if k == "ser" and not bad[k] else "identical" if not bad[k]
                    else f"DIFFER in {bad[k]}/{len(self.verdicts[k])} runs")
            procs = [p for p in self.procs.get(k, []) if p is not None]
            ws, cs = m.walls(self.got[k]), m.cpus(self.got[k])
            rows.append([label, reports.fmt_counts(self.verdicts[k][-1][1]), same, fmt_s(m.med(ws)), fmt_runs(ws),
                         fmt_s(m.med(cs)), " ".join(map(str, procs)) or "-"])
        table(["command", "counts (last run)", "passing ids and counts vs pytest", "median wall s", "runs wall s",
               "median CPU s", "stdout logs (one per file or batch)"], rows)
        print()
        return bad

    def walls(self, key):
        return m.walls(self.got[key])


def pytest_counts_ok(bench, keys):
    bad = bench.compare()
    return all(bad.get(k, 0) == 0 for k in keys)


def baseline_line(bench):
    for key in PAIRED:
        if f"{key}-old" in bench.got:
            print(m.ratio_text(f"{key} new / old (--baseline)", bench.walls(key), bench.walls(f"{key}-old")))


# ---------------------------------------------------------------- pytest (issue 5) and pytest-real (issue 12)


def pysuite(args):
    spec = args.pysuite
    name, _, version = spec.partition("==")
    known = PYSUITES.get(name)
    if known:
        version, deps, want = version or known[0], known[1], known[2]
    elif not version:
        raise SystemExit(f"--pysuite {spec}: give NAME==VERSION, or one of {', '.join(PYSUITES)}")
    else:
        deps, want = [], None
    proj, venv = fetch_pysuite(name, version, deps, find_python(want, args.python))
    return name, version, proj, venv


def pytest_issue5(args):
    """Issue 5: every mode of the pytest plugin on a real suite; goal warm <= 1.0 x xdist."""
    name, version, proj, venv = pysuite(args)
    keys = ["cold", "warm", "test", "none", "xd", "ser"]
    b = PytestBench("pytest", proj, venv, keys)
    b.measure(OPTS.reps)
    n = b.verdicts["ser"][-1][1].get("tests", 0)
    b.table(f"PyPI sdist `{name}` {version}, its own pytest suite ({n} tests)", OPTS.reps)
    W, C, X, S, N, T = (m.med(b.walls(k)) for k in ("warm", "cold", "xd", "ser", "none", "test"))
    print(f"{m.ratio_text('paratest warm / xdist', b.walls('warm'), b.walls('xd'))}; cold / xdist = {C / X:.2f}; "
          f"granularity=test / xdist = {T / X:.2f}; --isolation none / xdist = {N / X:.2f}; warm / serial = "
          f"{W / S:.2f}; xdist / serial = {X / S:.2f}")
    baseline_line(b)
    same = pytest_counts_ok(b, ["cold", "warm", "test", "none", "xd"])
    verdict("pytest", same and W / X <= 1.0 and n >= 1000,
            f"{name} {version}, {n} tests; verdicts {'identical to' if same else 'DIFFER from'} plain pytest's; "
            f"warm paratest/xdist = {W / X:.2f} (goal <= 1.0); granularity = \"test\": {T / X:.2f}")


def pytest_real(args):
    """Issue 12: attrs (or --pysuite), warm <= 0.8 x xdist -n 2, cold <= 1.0 x."""
    name, version, proj, venv = pysuite(args)
    b = PytestBench("pytest-real", proj, venv, ["fresh", "ci", "cold", "warm", "xd", "ser"])
    b.measure(OPTS.reps)
    n = b.verdicts["ser"][-1][1].get("tests", 0)
    b.table(f"PyPI sdist `{name}` {version}, its own pytest suite ({n} tests), -j 2", OPTS.reps)
    W, C, X, S = (m.med(b.walls(k)) for k in ("warm", "cold", "xd", "ser"))
    print(f"{m.ratio_text('warm / xdist', b.walls('warm'), b.walls('xd'))}; "
          f"{m.ratio_text('cold / xdist', b.walls('cold'), b.walls('xd'))}; warm / plain pytest = {W / S:.2f}; "
          f"xdist / plain = {X / S:.2f}")
    print(f"without the collection cache, as in a CI clone: "
          f"{m.ratio_text('timings restored / xdist', b.walls('ci'), b.walls('xd'))}; "
          f"{m.ratio_text('fresh / xdist', b.walls('fresh'), b.walls('xd'))}")
    baseline_line(b)
    same = pytest_counts_ok(b, ["fresh", "ci", "cold", "warm", "xd"])
    verdict("pytest-real", same and W / X <= 0.8 and C / X <= 1.0,
            f"{name} {version}, {n} tests; warm/xdist = {W / X:.2f} (goal <= 0.8), cold/xdist = {C / X:.2f} "
            f"(goal <= 1.0); verdicts {'identical to' if same else 'DIFFER from'} plain pytest's")


# ---------------------------------------------------------------- generated suites


def gen_venv(args):
    python = find_python("3.13", args.python)
    return make_venv(OPTS.work / "pytest-venv-generated", python, ["pytest", "pytest-xdist"])


PARAM_FILE = '''import pytest


@pytest.fixture(scope="module")
def table():
    return [i * i for i in range(1000)]


@pytest.mark.parametrize("n", range({cases}))
def test_case(table, n):
    assert sum(table[: n % 200]) >= 0


@pytest.mark.parametrize("word", [f"w{{i}}" for i in range({cases} // 10)])
class TestWords:
    def test_word(self, word):
        assert word.startswith("w")
'''


def generate(root, sizes):
    """A pytest project of len(sizes) files under root/tests, file i holding about sizes[i] cases
    (1.1 x: a parametrized function of that many cases and a class of a tenth of them)."""
    stamp = root / ".generated"
    want = repr(sizes)
    if stamp.exists() and stamp.read_text() == want and not OPTS.fresh:
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "tests").mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    for i, n in enumerate(sizes):
        (root / "tests" / f"test_gen_{i:02}.py").write_text(PARAM_FILE.format(cases=n))
    stamp.write_text(want)
    return root


def pytest_params(args):
    """Issue 12: 20,000+ parametrized cases in few files; warm paratest -j 2 <= 0.8 x seeded xdist -n 2."""
    total = args.cases
    weights = [16, 14, 12, 10, 8, 7, 6, 5, 4, 3]  # uneven files, as real suites have
    sizes = [max(1, round(total / 1.1 * w / sum(weights))) for w in weights]
    proj = generate(OPTS.work / "pytest-params", sizes)
    b = PytestBench("pytest-params", proj, gen_venv(args), ["cold", "warm", "xd", "ser"])
    b.measure(OPTS.reps)
    n = b.verdicts["ser"][-1][1].get("tests", 0)
    b.table(f"generated: {n} parametrized cases in {len(sizes)} files ({OPTS.work / 'pytest-params'})", OPTS.reps)
    W, C, X, S = (m.med(b.walls(k)) for k in ("warm", "cold", "xd", "ser"))
    print(f"{m.ratio_text('warm / xdist', b.walls('warm'), b.walls('xd'))}; cold / xdist = {C / X:.2f}; "
          f"warm / plain pytest = {W / S:.2f}; xdist / plain = {X / S:.2f}")
    baseline_line(b)
    same = pytest_counts_ok(b, ["cold", "warm", "xd"])
    verdict("pytest-params", same and W / X <= 0.8 and n >= 20000,
            f"{n} cases in {len(sizes)} files; warm/xdist = {W / X:.2f} (goal <= 0.8), cold/xdist = {C / X:.2f}; "
            f"verdicts {'identical to' if same else 'DIFFER from'} plain pytest's")


def pytest_bigfile(args):
    """Issue 12: one file of 100,000 parametrized cases; paratest -j 1 warm <= 1.10 x plain pytest."""
    cases = args.big_cases
    proj = generate(OPTS.work / "pytest-bigfile", [round(cases / 1.1)])
    b = PytestBench("pytest-bigfile", proj, gen_venv(args), ["one", "ser"])
    if OPTS.baseline:
        log("  (pytest-bigfile: --baseline not timed; the comparison is with plain pytest)")
    b.measure(OPTS.reps)
    n = b.verdicts["ser"][-1][1].get("tests", 0)
    b.table(f"generated: one file of {n} parametrized cases", OPTS.reps)
    ratio = m.ratio(b.walls("one"), b.walls("ser"))
    print(m.ratio_text("paratest -j 1 / plain pytest", b.walls("one"), b.walls("ser")))
    timed_out = any(r.rc == "timeout" for rs in b.got.values() for r in rs)
    same = pytest_counts_ok(b, ["one"])
    verdict("pytest-bigfile", same and ratio <= 1.10 and not timed_out,
            f"{n} cases in one file; paratest -j 1 / plain pytest = {ratio:.2f} (goal <= 1.10)"
            f"{'; a run hit --timeout-s' if timed_out else ''}; "
            f"verdicts {'identical to' if same else 'DIFFER from'} plain pytest's")


def add_pysuite_args(p, d):
    p.add_argument("--pysuite", default=d("attrs"), metavar="SUITE",
                   help="PyPI suite: attrs (default, attrs==26.1.0), pyparsing (==3.3.3), or NAME==VERSION")
    add_python_arg(p, d)


def add_python_arg(p, d):
    p.add_argument("--python", metavar="PATH",
                   help="interpreter for the venv (default: the suite's preferred version, e.g. python3.13)")


def add_params_args(p, d):
    p.add_argument("--cases", type=int, default=d(21000), metavar="N",
                   help="cases of pytest-params, in 10 files (default: 21000)")
    add_python_arg(p, d)


def add_bigfile_args(p, d):
    p.add_argument("--big-cases", type=int, default=d(100000), metavar="N",
                   help="cases in the one file of pytest-bigfile (default: 100000)")
    add_python_arg(p, d)
