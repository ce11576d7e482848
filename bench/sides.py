"""Running one side of a side-by-side benchmark (mmard or PyTorch) so that a failing side is
reported and the other side's figures still come out."""
import re, subprocess, sys
from pathlib import Path

def output(cmd):
    """`(ok, stdout)` of `cmd`. When it failed, or skipped its GPU benches, its reason goes to stderr
    (a panic's location and message); stdout is kept either way, so the benches that ran before a
    crash still count."""
    p = subprocess.run(cmd, capture_output=True, text=True)
    name = Path(cmd[1] if len(cmd) > 1 and cmd[1].endswith(".py") else cmd[0]).name
    for line in p.stdout.splitlines():
        if "skipped" in line:
            print(f"{name}: {line}", file=sys.stderr)
    if p.returncode != 0:
        err = p.stderr.strip().splitlines()
        keep = [l for i, l in enumerate(err) if re.search(r"error|panicked", l, re.I) or (i and "panicked at" in err[i - 1])]
        print(f"{name} failed: {' / '.join(keep or err[-1:]) or p.returncode}", file=sys.stderr)
    return p.returncode == 0, p.stdout
