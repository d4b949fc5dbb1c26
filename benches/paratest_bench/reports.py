"""Reports read through the binary under test, never by a JUnit reader of our own.

- `cargo paratest timings import REPORT.xml -o T.json` maps any tool's JUnit (pytest's own,
  nextest's) to our test ids and keeps the passing cases; `timings show --message-format json`
  lists them. That gives the set of passing test ids of a foreign run.
- `cargo paratest merge -o OUT.xml REPORT.xml` reads a foreign report and writes ours, whose root
  holds exact counts (tests, failures, errors, skipped).
- A paratest run's own verdicts are its `--message-format json` events.
"""

import json
import xml.etree.ElementTree as ET

from .common import log, pt, run


def passed_ids(report, scratch):
    """Test ids that passed in a JUnit report of any tool (through `timings import`)."""
    out = scratch / (report.stem + ".imported.json")
    out.unlink(missing_ok=True)
    r = run(pt() + ["timings", "import", str(report), "-o", str(out)], scratch)
    if r.rc != 0:
        log(f"  timings import {report}: exit {r.rc}: {r.err[-500:]}")
        return set()
    show = run(pt() + ["timings", "--timings", str(out), "show", "--message-format", "json"], scratch)
    ids = set()
    for line in show.out.splitlines():
        if line.startswith("{"):
            ident = json.loads(line)["id"]
            if "::" in ident:  # pytest node ids; the per-file totals have none
                ids.add(ident)
    return ids


def counts(report, scratch):
    """{tests, failures, errors, skipped} of a JUnit report of any tool (through `merge`)."""
    out = scratch / (report.stem + ".merged.xml")
    r = run(pt() + ["merge", "-o", str(out), str(report)], scratch)
    if r.rc != 0:
        log(f"  merge {report}: exit {r.rc}: {r.err[-500:]}")
        return {}
    # Only the suites' counts, written by the binary (its root holds no `skipped`).
    suites = ET.parse(out).getroot().findall("testsuite")
    return {k: sum(int(s.get(k, "0")) for s in suites) for k in ("tests", "failures", "errors", "skipped")}


def event_verdicts(result):
    """{test id: final result} from a paratest json run (`xfail`/`error` kinds kept apart)."""
    got = {}
    for e in result.events():
        if e.get("event") == "test-finished" and not e.get("retrying"):
            v = e.get("result")
            if e.get("kind") in ("xfail", "error"):
                v = e["kind"]
            got[e["id"]] = v
    return got


def event_counts(verdicts):
    """{tests, failures, errors, skipped} of event verdicts, in `counts`' terms (xfail = skipped)."""
    vals = list(verdicts.values())
    return {
        "tests": len(vals),
        "failures": sum(v in ("failed", "timed-out") for v in vals),
        "errors": sum(v == "error" for v in vals),
        "skipped": sum(v in ("skipped", "xfail") for v in vals),
    }


def passing(verdicts):
    return {i for i, v in verdicts.items() if v in ("passed", "flaky")}


def fmt_counts(c):
    if not c:
        return "?"
    return f"{c['tests']} tests, {c['failures']} failed, {c['errors']} errors, {c['skipped']} skipped"
