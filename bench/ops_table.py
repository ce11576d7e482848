"""The criterion benches of benches/ops.rs and `mmard bench kernels` beside bench/pytorch_ops.py, in
alternating rounds, as markdown tables of medians (ms, and mmard / PyTorch: below 1, mmard is
faster): per conv layer, with mmard's direct-convolution GFLOP/s against its sgemm ceiling (CPU),
and per memory-bound kernel, with mmard's GiB/s, on the GPU also against its device-to-device copy
of the same tensor.

Usage: python bench/ops_table.py [--ops BINARY] [--mmard BINARY] [--rounds 3] [--filter REGEX]
       [--device cpu|cuda] [--seconds 3]   (without --ops, cargo builds the bench, with
       `--features cuda` for cuda; the memory-bound kernels run when the filter matches
       memory_bound_<device>)"""
import argparse, json, re, statistics, subprocess, sys
from pathlib import Path
from sides import output

HERE = Path(__file__).resolve().parent
UNIT = {"ns": 1e-6, "µs": 1e-3, "ms": 1.0, "s": 1e3}
KINDS = ["forward", "backward_data", "backward_filter"]

def mmard_round(ops, filt, seconds, out):
    """criterion's point estimate of the time per bench id, e.g. out["conv2d_resnet18_b32/forward/64-64_32_k3s1"]."""
    warm = f"{seconds / 3:.2f}"; measure = f"{seconds * 2 / 3:.2f}"
    _, text = output([ops, "--bench", filt, "--warm-up-time", warm, "--measurement-time", measure, "--noplot"])
    name = None
    for line in text.splitlines():
        if line and not line.startswith((" ", "Benchmarking")):
            name = line.split()[0]
        t = re.search(r"time:\s+\[\S+ \S+ (\S+) (\S+)", line)
        if t and name:
            out.setdefault(name, []).append(float(t.group(1)) * UNIT[t.group(2)])
            name = None

def kernels_round(mmard, device, out, gibs):
    """`mmard bench kernels --json`: each kernel's median ms and GiB/s, keyed as memory_bound_<device>/<name>."""
    ok, text = output([mmard, "--device", device, "bench", "kernels", "--json"])
    if not ok:
        return
    res = json.loads(text.strip().splitlines()[-1])
    if res["emulated"]:
        print("(mmard's kernels ran on the emulated GPU: their figures time the emulator)")
    for k in res["kernels"]:
        out.setdefault(f"memory_bound_{device}/{k['name']}", []).append(k["ms"])
        gibs.setdefault(f"memory_bound_{device}/{k['name']}", []).append(k["gib_s"])

def torch_round(python, device, filt, out):
    _, text = output([python, str(HERE / "pytorch_ops.py"), "--repeats", "10", "--device", device, "--only", filt])
    for line in text.splitlines():
        g = re.match(r"(\S+)/(\S+): forward ([\d.]+) ms .*backward_data ([\d.]+) ms .*backward_filter ([\d.]+) ms", line)
        if g:
            for kind, v in zip(KINDS, g.groups()[2:]):
                out.setdefault(f"{g.group(1)}/{kind}/{g.group(2)}", []).append(float(v))
        g = re.match(r"memory_bound (\S+): ([\d.]+) ms", line)
        if g:
            out.setdefault(f"memory_bound_{device}/{g.group(1)}", []).append(float(g.group(2)))
        g = re.match(r"sgemm 2048: ([\d.]+) ms", line)
        if g:
            out.setdefault("sgemm/2048", []).append(float(g.group(1)))

def bench_binary(cuda):
    """The ops bench of this checkout, built by cargo if needed, with or without the cuda feature:
    cargo's own answer, not the newest file in target/, which may be the other build."""
    cmd = ["cargo", "bench", "--bench", "ops", "--no-run", "--message-format=json"] + (["--features", "cuda"] if cuda else [])
    p = subprocess.run(cmd, capture_output=True, text=True)
    exes = [m.get("executable") for m in map(json.loads, p.stdout.splitlines()) if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "ops"]
    if p.returncode != 0 or not exes or not exes[-1]:
        sys.exit(f"`{' '.join(cmd)}` failed (or pass --ops BINARY):\n{p.stderr.strip()[-2000:]}")
    return exes[-1]

def flops(layer, batch):
    cin, cout, side, k, s = map(int, re.match(r"(\d+)-(\d+)_(\d+)_k(\d+)s(\d+)", layer).groups())
    o = (side + 2 * (k // 2) - k) // s + 1
    return 2 * batch * cout * o * o * cin * k * k

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ops"); ap.add_argument("--rounds", type=int, default=3); ap.add_argument("--filter")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--seconds", type=float, default=3, help="criterion warm-up + measurement per bench")
    ap.add_argument("--python", default=sys.executable); ap.add_argument("--mmard", default="target/release/mmard")
    a = ap.parse_args()
    cuda = a.device == "cuda"
    # criterion's regex crate has no \w or \d
    filt = a.filter or ("conv2d[a-z0-9_]*_cuda/|memory_bound_cuda" if cuda else "sgemm|conv2d[a-z0-9_]*_b[0-9]+/|memory_bound_cpu")
    group = f"memory_bound_{a.device}"
    kernels = re.search(filt, group + "/") is not None
    ops = None if filt == group else a.ops or bench_binary(cuda)
    m, p, gibs = {}, {}, {}
    for _ in range(a.rounds):
        if ops:
            mmard_round(ops, filt, a.seconds, m)
        if kernels:
            kernels_round(a.mmard, a.device, m, gibs)
        torch_round(a.python, a.device, filt, p)
    if not m:
        sys.exit(f"no mmard benchmark ran for the filter {filt!r}" + (" (is it a --features cuda build, on a GPU machine?)" if cuda else ""))
    med = lambda d, k: statistics.median(d[k]) if k in d else float("nan")
    ratio = lambda t, q: f"{t / q:.2f}" if q > 0 else "—"
    ceiling = None if cuda or "sgemm/2048" not in m else 2 * 2048 ** 3 / med(m, "sgemm/2048") / 1e6
    if ceiling:
        print(f"sgemm 2048³: mmard {ceiling:.0f} GFLOP/s, PyTorch {2 * 2048 ** 3 / med(p, 'sgemm/2048') / 1e6:.0f} GFLOP/s; medians of {a.rounds} rounds\n")
    groups = dict.fromkeys(k.split("/")[0] for k in m if k.startswith("conv2d"))
    for g in groups:
        batch = int(re.search(r"_b(\d+)(_cuda)?$", g).group(1))
        share = "" if cuda else "; mmard GFLOP/s as a share of its sgemm"
        print(f"**{g}** (ms, mmard / PyTorch, ratio{share})\n")
        print("| layer | forward | backward-data | backward-filter |\n|---|---|---|---|")
        for layer in dict.fromkeys(k.split("/")[2] for k in m if k.startswith(g + "/")):
            cells = []
            for kind in KINDS:
                t, q = med(m, f"{g}/{kind}/{layer}"), med(p, f"{g}/{kind}/{layer}")
                rate = f", {flops(layer, batch) / t / 1e6 / ceiling:.0%}" if ceiling else f", {flops(layer, batch) / t / 1e9:.1f} TFLOP/s"
                cells.append(f"{t:.3f} / {q:.3f} ({ratio(t, q)}){rate}")
            print(f"| {layer} | " + " | ".join(cells) + " |")
        print()
    ops_bound = [k for k in m if k.startswith(group + "/") and k in gibs]
    if ops_bound:
        # On the CPU mmard's copy is one memcpy on one core, no ceiling for two-thread ops.
        copy = med(gibs, f"{group}/copy") if cuda else None
        share = " share of mmard's copy |" if copy else ""
        print(f"**{group}** (one [{1024 if cuda else 128}, 32, 32, 32] f32 tensor, {128 if cuda else 16} MiB)\n")
        print(f"| op | mmard ms | PyTorch ms | mmard / PyTorch | mmard GiB/s |{share}\n|---|---|---|---|---|{'---|' if copy else ''}")
        for k in ops_bound:
            t, q, r = med(m, k), med(p, k), med(gibs, k)
            q_ = f"{q:.4f}" if q > 0 else "—"
            print(f"| {k.split('/')[1]} | {t:.4f} | {q_} | {ratio(t, q)} | {r:.1f} |" + (f" {r / copy:.0%} |" if copy else ""))
        print()

if __name__ == "__main__":
    main()
