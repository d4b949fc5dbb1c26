"""scale: 100,000 synthetic tests through the library's own functions (`cargo bench --bench scale`)."""

import subprocess

from .common import REPO, verdict


def scale(args):
    print()
    print("### scale: 100,000 synthetic tests (cargo bench --bench scale)")
    proc = subprocess.run(["cargo", "bench", "--bench", "scale"], cwd=REPO, capture_output=True, text=True)
    print(proc.stdout.rstrip())
    if proc.returncode != 0:
        print(proc.stderr[-2000:])
    met = proc.returncode == 0 and "): met" in proc.stdout
    verdict("scale", met, "queue + partition and timings load + save well under 1 s each"
            if met else "see the output above")
