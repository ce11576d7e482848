"""A/B of two mmard binaries on the `mmard bench step` configurations of bench/compare.py: the two
alternate within every round, so that a noisy machine's drift hits both; per configuration it
prints both medians and the median of the per-round ratios B / A (below 1, B is faster).

Usage: python bench/ab.py A_BINARY B_BINARY [--rounds 5] [--repeats 3] [--only NAME]"""
import argparse, json, statistics, subprocess
from compare import CPU

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a"); ap.add_argument("b")
    ap.add_argument("--rounds", type=int, default=5); ap.add_argument("--repeats", default="3"); ap.add_argument("--only")
    args = ap.parse_args()
    for name, flags in CPU:
        if args.only and args.only not in name:
            continue
        times = {args.a: [], args.b: []}
        for _ in range(args.rounds):
            for binary in (args.a, args.b):
                p = subprocess.run([binary, "bench", "step"] + flags + ["--pgd-steps", "10", "--repeats", args.repeats, "--json"],
                                   capture_output=True, text=True, check=True)
                times[binary].append(json.loads(p.stdout.strip().splitlines()[-1])["total"])
        ta, tb = times[args.a], times[args.b]
        ratios = [y / x for x, y in zip(ta, tb)]
        print(f"{name}: A {statistics.median(ta):.3f} s, B {statistics.median(tb):.3f} s, "
              f"B/A {statistics.median(ratios):.3f} (rounds: {', '.join(f'{r:.2f}' for r in ratios)})", flush=True)

if __name__ == "__main__":
    main()
