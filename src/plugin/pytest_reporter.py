"""cargo-paratest's side of a pytest process, run as `python -c THIS MODE ...`.

`collect ARGS...`: pytest's own collection; prints every collected node id
behind a mark, and every collection error (only the error, never the
collection tree) behind another.

`run RESULTS ARGS...`: runs the tests and writes RESULTS, one JSON object a
line, a test's lines flushed together after its teardown, so that a process
killed mid-file still leaves every test it finished (the one in flight
leaves none):
  {"event": "collected", "nodes": [NODE, ...]}          once, after collection
  {"event": "report", "when": "setup"|"call"|"teardown", "outcome": ..., ...NODE}
where NODE is {"node", "classname", "name", "file", "line"}: the testcase
attributes pytest's own --junitxml writes (`file` and `line` only under
`junit_family = xunit1`, as pytest does). A failed report also has
"failed_at": {"file", "line"}, relative to the rootdir, 1-based: the
deepest traceback line in the test's own file, else the test's definition
(for GitHub annotations).

`serve ARGS...`: one long-lived process per worker (see `Serve`): the same
lines, on the results fd, each request's followed by its answer.
"""

import json
import os
import re
import sys
import time

import pytest

try:
    from _pytest.junitxml import mangle_test_address
except ImportError:  # pytest moved it: the same rule, copied

    def mangle_test_address(address):
        path, bracket, params = address.partition("[")
        names = path.split("::")
        names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
        names[-1] += bracket + params
        return names


NODE_MARK = "paratest-node "
COLLECT_ERROR_MARK = "paratest-collect-error "
ARGS_MARK = "paratest-args "


class Collect:
    def pytest_collection_finish(self, session):
        # Paths or node ids that `addopts`, PYTEST_ADDOPTS or the plugin's
        # `args` gave (discovery itself gives none): the runner must know,
        # since they would be added to every run's own ids.
        source = getattr(session.config, "args_source", None)
        if getattr(source, "name", None) == "ARGS":
            print(ARGS_MARK + json.dumps([str(arg) for arg in session.config.args]))
        for item in session.items:
            print(NODE_MARK + item.nodeid)

    def pytest_collectreport(self, report):
        if report.failed:
            error = {"node": report.nodeid, "detail": report.longreprtext}
            print(COLLECT_ERROR_MARK + json.dumps(error), flush=True)


class Results:
    def __init__(self, path):
        self.out = open(path, "w", encoding="utf-8")
        self.prefix = None
        self.locations = False
        self.root = "."
        self.pending = []
        self.last_node = (None, None, None)

    def write(self, event):
        """Writes a line; a test's phase lines wait for its teardown and
        then go out in one write and flush (one per test, not per phase: on
        a file of short cases the per-line flush, and the reader woken for
        each line, cost more than pytest itself). A process that dies
        mid-test loses only the lines of the test it was running."""
        self.pending.append(json.dumps(event) + "\n")
        if event.get("event") != "report" or event.get("when") == "teardown":
            self.flush()

    def flush(self):
        if self.pending:
            self.out.write("".join(self.pending))
            self.pending = []
        self.out.flush()

    def pytest_sessionfinish(self, session):
        self.flush()

    def pytest_configure(self, config):
        self.prefix = config.getoption("junitprefix", None)
        self.root = str(getattr(config, "rootpath", None) or config.rootdir)
        try:
            self.locations = config.getini("junit_family") == "xunit1"
        except ValueError:  # `-p no:junitxml`: no such option, pytest's default then
            self.locations = False

    def node(self, nodeid, location):
        # The three phases of a test ask for the same node: the last one is kept.
        last_id, last_location, last = self.last_node
        if nodeid == last_id and location == last_location:
            return dict(last)
        node = self.make_node(nodeid, location)
        self.last_node = (nodeid, location, node)
        return dict(node)

    def make_node(self, nodeid, location):
        names = mangle_test_address(nodeid)
        classnames = names[:-1]
        if self.prefix:
            classnames.insert(0, self.prefix)
        node = {"node": nodeid, "classname": ".".join(classnames), "name": names[-1]}
        if self.locations and location:
            node["file"] = location[0]
            node["line"] = location[1]
        return node

    def pytest_collection_finish(self, session):
        nodes = [self.node(item.nodeid, item.location) for item in session.items]
        self.write({"event": "collected", "nodes": nodes})

    def pytest_runtest_logreport(self, report):
        event = self.node(report.nodeid, report.location)
        xfail = getattr(report, "wasxfail", None)
        event.update(
            event="report",
            when=report.when,
            outcome=report.outcome,
            xfail=xfail is not None,
            message=message(report, xfail),
            detail=report.longreprtext if report.failed else None,
            failed_at=failed_at(report, self.root) if report.failed else None,
            duration=report.duration,
            # Each phase's report holds the sections of the phases before it.
            stdout=report.capstdout + report.caplog,
            stderr=report.capstderr,
        )
        self.write(event)


def failed_at(report, root):
    """Where a failed phase failed: the deepest traceback entry in the
    test's own file (an assertion in a helper elsewhere points at the test's
    call of it), else the test's definition. `None` when pytest gave no
    location."""
    if not report.location:
        return None
    own_file, own_line = report.location[0], report.location[1]
    own = os.path.normcase(os.path.abspath(os.path.join(root, own_file)))
    line = None if own_line is None else own_line + 1
    entries = getattr(getattr(report.longrepr, "reprtraceback", None), "reprentries", None)
    for entry in entries or []:
        place = getattr(entry, "reprfileloc", None)
        # Entry paths are relative to the current directory, or absolute.
        if place is not None and os.path.normcase(os.path.abspath(place.path)) == own:
            line = place.lineno
    if line is None:
        return None
    return {"file": own_file.replace(os.sep, "/"), "line": line}


def message(report, xfail):
    """The one-line message pytest's --junitxml gives this phase."""
    if report.passed:
        return None
    if report.skipped:
        if xfail is not None:
            return xfail[len("reason: ") :] if xfail.startswith("reason: ") else xfail
        longrepr = report.longrepr
        if isinstance(longrepr, tuple):
            reason = longrepr[2]
            return reason[len("Skipped: ") :] if reason.startswith("Skipped: ") else reason
        return str(longrepr)
    crash = getattr(report.longrepr, "reprcrash", None)
    return crash.message if crash is not None else str(report.longrepr)


class KeepSession:
    """The `nextitem` of a request's last test: its teardown keeps what the
    session holds (session-scoped fixtures) and tears down the rest, as
    under pytest-xdist, whose workers never know their last test either."""

    def __init__(self, session):
        self._session = session

    def listchain(self):
        return [self._session]

    def __getattr__(self, name):
        return getattr(self._session, name)


class Serve(Results):
    """`serve ARGS...`: collects once, then runs the tests whose ids come on
    stdin, one JSON request a line, and answers each on the results fd
    (PARATEST_SERVE_FD): the `run` mode's lines for its nodes as they
    come, then the answer {"id", "status", "duration"}."""

    def __init__(self):
        # Private copies: a test that reads stdin or closes fd 3 cannot touch them.
        results_fd = int(os.environ.get("PARATEST_SERVE_FD", "3"))
        self.requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
        self.out = os.fdopen(os.dup(results_fd), "w", encoding="utf-8")
        os.close(results_fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        self.prefix = None
        self.locations = False
        self.reports = None
        self.pending = []
        self.last_node = (None, None, None)
        self.by_id = {}
        self.collect_errors = {}

    def write(self, event):
        if self.reports is None:
            return
        if event.get("event") == "report":
            self.reports.append((event["node"], event["outcome"]))
        Results.write(self, event)

    def answer(self, answer):
        self.pending.append(json.dumps(answer) + "\n")
        self.flush()

    def pytest_collectreport(self, report):
        if report.failed:
            self.collect_errors[report.nodeid] = report.longreprtext

    def pytest_collection_finish(self, session):
        for item in session.items:
            self.by_id.setdefault(item.nodeid, []).append(item)
            self.by_id.setdefault(item.nodeid.split("::")[0], []).append(item)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        keep = KeepSession(session)
        for line in self.requests:
            try:
                request = json.loads(line)
            except ValueError:
                continue
            if request.get("shutdown"):
                break
            self.run(session, request, keep)
            if session.shouldstop or session.shouldfail:
                break
        try:
            session._setupstate.teardown_exact(None)
        except BaseException as error:  # nothing is left to report it on
            print("paratest: session teardown failed: %r" % (error,), file=sys.stderr)
        return True

    def run(self, session, request, keep):
        test_id = request.get("id", "")
        items = self.by_id.get(test_id)
        if not items:
            error = self.collect_errors.get(test_id.split("::")[0])
            # Never a pass nor a skip: discovery listed this id, and pytest
            # did not run it (SPEC: a test pytest never reported is an error).
            message = ("ERROR collecting %s" % test_id if error else
                       "error: pytest did not collect %s in the workspace "
                       "(discovery listed it)" % test_id)
            self.answer({"id": test_id, "status": "failed",
                         "message": message, "stderr": error})
            return
        os.environ["PARATEST_TEST"] = test_id
        os.environ["PARATEST_ATTEMPT"] = str(request.get("attempt", 1))
        self.reports = []
        nodes = [self.node(item.nodeid, item.location) for item in items]
        self.write({"event": "collected", "nodes": nodes})
        started = time.perf_counter()
        for i, item in enumerate(items):
            item._report_sections = []
            nextitem = items[i + 1] if i + 1 < len(items) else keep
            item.ihook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            if session.shouldstop or session.shouldfail:
                break
        reports, self.reports = self.reports, None
        skipped = {node for node, outcome in reports if outcome == "skipped"}
        if not reports or any(outcome == "failed" for _, outcome in reports):
            status = "failed"
        else:
            status = "skipped" if len(skipped) == len(items) else "passed"
        self.answer({"id": test_id, "status": status, "duration": time.perf_counter() - started})


def main(argv):
    if argv[0] == "collect":
        return pytest.main(argv[1:], plugins=[Collect()])
    if argv[0] == "serve":
        code = int(pytest.main(argv[1:], plugins=[Serve()]))
        # The session is over (its fixtures torn down, its summary written):
        # freeing every collected item one by one, as the interpreter's own
        # exit does, costs seconds on a large suite and tells nobody anything.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return pytest.main(argv[2:], plugins=[Results(argv[1])])


sys.exit(int(main(sys.argv[1:])))
