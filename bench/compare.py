"""`mmard bench step` beside bench/pytorch_step.py for a list of configurations, in one run, and a
markdown table of times and ratios (PyTorch time / mmard time: above 1, mmard is faster).

Usage: python bench/compare.py [--mmard target/release/mmard] [--device cpu|cuda] [--repeats 5] [--only NAME]"""
import argparse, json, subprocess, sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CPU = [
    ("rslad small_cnn<-small_cnn b128", ["--student", "small_cnn", "--teacher", "small_cnn", "--method", "rslad", "--batch", "128", "--input", "3x32x32"]),
    ("rslad resnet18<-resnet18 b32", ["--student", "resnet18", "--teacher", "resnet18", "--method", "rslad", "--batch", "32"]),
    ("mmard resnet18<-wrn16-4 b32", ["--student", "resnet18", "--teacher", "wide_resnet", "--teacher-config", '{"depth":16,"widen":4}', "--method", "mmard", "--batch", "32"]),
]
GPU = [
    ("rslad resnet18<-wrn34-10 b128", ["--student", "resnet18", "--teacher", "wide_resnet", "--teacher-config", '{"depth":34,"widen":10}', "--method", "rslad", "--batch", "128"]),
    ("mmard resnet18<-wrn34-10 b128", ["--student", "resnet18", "--teacher", "wide_resnet", "--teacher-config", '{"depth":34,"widen":10}', "--method", "mmard", "--batch", "128"]),
]

def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mmard", default="target/release/mmard"); ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", default="5"); ap.add_argument("--only")
    a = ap.parse_args()
    configs = CPU if a.device == "cpu" else GPU
    print("| step (K = 10) | mmard s | PyTorch s | PyTorch / mmard | mmard inner / outer s | PyTorch inner / outer s | peak RSS MiB mmard / PyTorch |")
    print("|---|---|---|---|---|---|---|")
    for name, args in configs:
        if a.only and a.only not in name:
            continue
        common = args + ["--pgd-steps", "10", "--device", a.device, "--repeats", a.repeats, "--json"]
        m = run([a.mmard, "bench", "step"] + common)
        p = run([sys.executable, str(HERE / "pytorch_step.py")] + common)
        print(f"| {name} | {m['total']:.3f} | {p['total']:.3f} | {p['total'] / m['total']:.2f} | {m['inner']:.3f} / {m['outer']:.3f} "
              f"| {p['inner']:.3f} / {p['outer']:.3f} | {m['peak_rss_mib']:.0f} / {p['peak_rss_mib']:.0f} |", flush=True)

if __name__ == "__main__":
    main()
