"""RESULTS.md's table from results/*.json (scripts/results.sh): mean ± half the spread (max − min)/2
over the seeds of each configuration."""
import json, sys
from collections import defaultdict
from pathlib import Path

ATTACKS = ["clean", "fgsm", "pgd20", "cw", "apgd-ce", "apgd-t"]
ORDER = ["natural", "pgd_at", "trades", "ard", "iad", "rslad", "adaad", "mmard", "rslad+mmard-inner"]

def main(root="results"):
    runs = defaultdict(list)
    for f in sorted(Path(root).glob("*.json")):
        name, _seed = f.stem.rsplit("-s", 1)
        runs[name].append(json.loads(f.read_text()))
    print("| method | seeds | " + " | ".join(ATTACKS) + " | train s |")
    print("|---" * (len(ATTACKS) + 3) + "|")
    for name in sorted(runs, key=lambda n: ORDER.index(n) if n in ORDER else 99):
        rs = runs[name]
        cells = []
        for k in ATTACKS + ["train_seconds"]:
            v = [r[k] for r in rs]
            mean, half = sum(v) / len(v), (max(v) - min(v)) / 2
            cells.append(f"{mean:.0f}" if k == "train_seconds" else f"{mean:.1f} ± {half:.1f}")
        print(f"| {name} | {len(rs)} | " + " | ".join(cells) + " |")

if __name__ == "__main__":
    main(*sys.argv[1:])
