"""RESULTS.md's table from scripts/results.sh's runs: mean ± half the spread (max − min)/2 over seeds."""
import json, sys
from collections import defaultdict
from pathlib import Path

ATTACKS = ["clean", "fgsm", "pgd20", "cw", "apgd-ce", "apgd-t"]
ORDER = ["natural", "pgd_at", "trades", "ard", "iad", "rslad", "adaad", "mmard", "rslad+mmard-inner"]

def main(root="runs/results"):
    runs = defaultdict(list)
    for d in sorted(Path(root).iterdir()):
        if (d / "eval.json").exists():
            name, seed = d.name.rsplit("-s", 1)
            r = json.loads((d / "eval.json").read_text())
            r["seconds"] = float((d / "seconds").read_text())
            runs[name].append(r)
    print("| method | seeds | " + " | ".join(ATTACKS) + " | train s |")
    print("|---" * (len(ATTACKS) + 3) + "|")
    for name in sorted(runs, key=lambda n: ORDER.index(n) if n in ORDER else 99):
        rs = runs[name]
        cells = []
        for k in ATTACKS + ["seconds"]:
            v = [r[k] for r in rs]
            mean, half = sum(v) / len(v), (max(v) - min(v)) / 2
            cells.append(f"{mean:.0f}" if k == "seconds" else f"{mean:.1f} ± {half:.1f}")
        print(f"| {name} | {len(rs)} | " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main(*sys.argv[1:])
