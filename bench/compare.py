"""`mmard bench step` beside bench/pytorch_step.py for a list of configurations, in one run, and a
markdown table of times and ratios (PyTorch time / mmard time: above 1, mmard is faster).

On a GPU every step is measured at fp32, at TF32 and with PyTorch's AMP (PRECISIONS).

Usage: python bench/compare.py [--mmard target/release/mmard] [--device cpu|cuda] [--repeats 5] [--only NAME]
       [--jsonl FILE]   (each configuration's figures appended to FILE as it is measured)"""
import argparse, json, sys
from pathlib import Path
from sides import output

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

# On a GPU each step runs at three precisions: plain fp32 on both sides; TF32 convolutions and
# matmuls on both; and PyTorch's AMP (bf16 autocast) beside mmard's fastest, TF32, since mmard has
# no bf16 mode yet. (name suffix, mmard's flags, PyTorch's flags)
PRECISIONS = {"cpu": [("", [], [])],
              "cuda": [(" fp32", [], []), (" tf32", ["--tf32"], ["--tf32"]), (" AMP bf16 vs mmard tf32", ["--tf32"], ["--amp"])]}

def run(cmd):
    """The JSON a benchmark printed, or None when it failed (`sides.output` reports why): one side
    failing, e.g. mmard without a CUDA build, still leaves the other side's figures."""
    ok, text = output(cmd)
    return json.loads(text.strip().splitlines()[-1]) if ok else None

def cells(m, p, mem, gpu):
    f = lambda r, k: f"{r[k]:.3f}" if r else "—"
    ratio = f"{p['total'] / m['total']:.2f}" if m and p else "—"
    phases = lambda r: f"{r['inner']:.3f} / {r['outer']:.3f}" if r else "—"
    rss = lambda r: f"{r[mem]:.0f}" if r else "—"
    row = [f(m, "total"), f(p, "total"), ratio, phases(m), phases(p), f"{rss(m)} / {rss(p)}"]
    if gpu:  # the step against its own convolutions run alone (`convolutions_alone`)
        c = m and m.get("convolutions_alone")
        row.append(f"{c:.3f} ({m['total'] / c:.2f}x)" if c else "—")
    return row

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mmard", default="target/release/mmard"); ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", default="5"); ap.add_argument("--only"); ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--jsonl")
    a = ap.parse_args()
    configs = CPU if a.device == "cpu" else GPU
    mem = "peak_rss_mib" if a.device == "cpu" else "device_mem_mib"
    label = "peak RSS MiB" if a.device == "cpu" else "GPU memory MiB"
    gpu = a.device != "cpu"
    floor = " mmard's convolutions alone s (step / them) |" if gpu else ""
    print(f"| step (K = 10) | mmard s | PyTorch s | PyTorch / mmard | mmard inner / outer s | PyTorch inner / outer s | {label} mmard / PyTorch |{floor}")
    print("|---|---|---|---|---|---|---|" + ("---|" if gpu else ""))
    failed = False
    for base, args in configs:
        for suffix, mflags, pflags in PRECISIONS["cpu" if a.device == "cpu" else "cuda"]:
            name = base + suffix
            if a.only and a.only not in name:
                continue
            common = args + ["--pgd-steps", "10", "--device", a.device, "--repeats", a.repeats, "--json"]
            m = run([a.mmard, "bench", "step"] + common + mflags)
            p = run([a.python, str(HERE / "pytorch_step.py"), "--mmard", a.mmard] + common + pflags)
            print("| " + " | ".join([name] + cells(m, p, mem, gpu)) + " |", flush=True)
            if a.jsonl:
                with open(a.jsonl, "a") as f:
                    f.write(json.dumps({"step": name, "device": a.device, "mmard": m, "pytorch": p}) + "\n")
            failed = failed or m is None or p is None
    # the table stays whole; the exit status says whether every figure in it was measured
    sys.exit(1 if failed else 0)

if __name__ == "__main__":
    main()
