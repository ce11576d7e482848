"""mmard's AutoAttack against the reference (fra31's, as the `pyautoattack` package), standard version,
L∞, on the same PyTorch-trained model, images, seed and batch size, with both sides timed in this run.

The model is compare_torchattacks.py's SmallCNN (PGD-AT in PyTorch on Fashion-MNIST, saved with
safetensors). Compared, on the first N test images:
- AA: the per-stage robust accuracy and time of `mmard eval --attacks aa` and of
  `AutoAttack(version='standard').run_standard_evaluation`;
- FAB-T alone, point by point (which points it breaks), and Square alone, each run as AA runs it:
  on the points correct on clean data, in batches of B, reseeded at every batch (the reference with
  `attacks_to_run` cut to that attack; mmard's `attack` on the same points). mmard's outputs are
  re-evaluated by the PyTorch model.

On a GPU (--device cuda) both sides run there: the reference's model and images on it, mmard with
--device cuda.

Usage: python scripts/compare_autoattack.py [--mmard target/release/mmard] [--n 1000] [--train 10000]
       [--eps 0.1] [--seed 0] [--batch 250] [--weights W.safetensors] [--json out.json]
       [--device cpu|cuda] [--data-dir FOLDER] [--aa-only]
Needs: torch, safetensors, pyautoattack, numpy; Fashion-MNIST in /usr/share/datasets/fashion-mnist.
"""
import argparse, json, logging, re, subprocess, sys, tempfile, time
from pathlib import Path
import torch
from safetensors.torch import load_file, save_file
from pyautoattack import AutoAttack
sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare_torchattacks import DATA, SmallCNN, load, train_smallcnn

STAGES = ["apgd-ce", "apgd-t", "fab-t", "square"]

class Stages(logging.Handler):
    """The reference's 'robust accuracy after X: p% (total time t s)' lines, as (name, percent, time)."""
    def __init__(self):
        super().__init__(); self.rows = []
    def emit(self, record):
        m = re.match(r"robust accuracy after (\S+): ([\d.]+)% \(total time ([\d.]+) s\)", record.getMessage())
        if m:
            self.rows.append((m.group(1).lower(), float(m.group(2)), float(m.group(3))))

def reference(model, x, y, eps, seed, batch, attacks=None):
    """(robust flags, per-stage rows, seconds) of the reference on x."""
    aa = AutoAttack(model, norm="Linf", eps=eps, version="standard", seed=seed, device=x.device)
    if attacks:
        aa.attacks_to_run = attacks
    log = logging.getLogger("auto-attack"); log.setLevel(logging.DEBUG)
    h = Stages(); log.addHandler(h)
    t0 = time.time()
    x_adv, _ = aa.run_standard_evaluation(x, y, batch_size=batch)
    seconds = time.time() - t0
    log.removeHandler(h)
    with torch.no_grad():
        flags = model(x_adv).argmax(1) == y
    assert (x_adv - x).abs().max() <= eps + 1e-6
    return flags, h.rows, seconds

def mmard_attack(mmard, weights, x, y, eps, seed, batch, attack, model, d, device):
    """Per point, whether the model still classifies mmard's output correctly; and the seconds."""
    inp, out = Path(d) / f"{attack}_in.safetensors", Path(d) / f"{attack}_out.safetensors"
    save_file({"input": x.cpu().contiguous(), "labels": y.cpu().contiguous()}, str(inp))
    t0 = time.time()
    subprocess.run([mmard, "--device", device, "attack", "--weights", str(weights), "--input", str(inp), "--attack", attack,
                    "--eps", str(eps), "--seed", str(seed), "--batch-size", str(batch), "--output", str(out)], check=True, capture_output=True)
    seconds = time.time() - t0
    xa = load_file(str(out))["adversarial"].to(x.device)
    assert (xa - x).abs().max() <= eps + 1e-6 and xa.min() >= 0 and xa.max() <= 1
    with torch.no_grad():
        return model(xa).argmax(1) == y, seconds

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mmard", default="target/release/mmard"); ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--train", type=int, default=10000); ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0); ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--weights", help="a SmallCNN to use instead of training one (written there when absent)")
    ap.add_argument("--json", help="write every figure here")
    ap.add_argument("--device", default="cpu"); ap.add_argument("--data-dir", default=str(DATA))
    ap.add_argument("--aa-only", action="store_true", help="skip FAB-T and Square alone (half the time)")
    a = ap.parse_args()
    dev = torch.device(a.device)
    # Both sides in float32: PyTorch allows TF32 in cuDNN convolutions by default, and FAB-T's points,
    # a hair across the boundary, then read as correct (on an H200, 24 of 770 did).
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    with tempfile.TemporaryDirectory() as d:
        weights = Path(a.weights) if a.weights else Path(d) / "smallcnn.safetensors"
        if weights.exists():
            model = SmallCNN(); model.load_state_dict(load_file(str(weights))); model.eval()
        else:
            model = train_smallcnn(a.train, a.eps)
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
        model = model.to(dev)
        xs, ys = load("test", a.data_dir)
        x, y = xs[:a.n].to(dev), ys[:a.n].to(dev)
        with torch.no_grad():
            clean = model(x).argmax(1) == y
        print(f"{a.n} Fashion-MNIST test images, eps {a.eps}, seed {a.seed}, batch {a.batch}, on {a.device}, "
              f"{torch.get_num_threads()} threads; clean {100 * clean.float().mean():.2f}%", flush=True)

        # AA, both sides, per stage.
        ref_flags, ref_rows, ref_s = reference(model, x, y, a.eps, a.seed, a.batch)
        out = Path(d) / "aa.json"
        t0 = time.time()
        subprocess.run([a.mmard, "--device", a.device, "eval", "--weights", str(weights), "--dataset", "fashion-mnist",
                        "--data-dir", a.data_dir, "--limit", str(a.n),
                        "--eps", str(a.eps), "--attacks", "aa", "--aa-batch", str(a.batch), "--seed", str(a.seed),
                        "--json", str(out)], check=True)
        mm_s = time.time() - t0
        mm = json.loads(out.read_text())
        mm_rows = {s["attack"]: s for s in mm["aa_protocol"]["stages"]}
        print(f"\n| stage | pyautoattack % | s | mmard % | s | pyautoattack s / mmard s |\n|---|---|---|---|---|---|")
        last = 0.0
        for name, acc, total in ref_rows:
            m = mm_rows.get(name)
            ms = f"{m['accuracy']:.2f} | {m['seconds']:.1f} | {(total - last) / m['seconds']:.2f}" if m else "— | — | —"
            print(f"| {name} | {acc:.2f} | {total - last:.1f} | {ms} |")
            last = total
        print(f"| AA (whole run) | {100 * ref_flags.float().mean():.2f} | {ref_s:.1f} | {mm['aa']:.2f} | {mm_s:.1f} | {ref_s / mm_s:.2f} |")

        # FAB-T and Square alone, on the points correct on clean data.
        idx = clean.nonzero().squeeze(1)
        alone = {}
        for attack in [] if a.aa_only else ["fab-t", "square"]:
            rf, _, rs = reference(model, x[idx], y[idx], a.eps, a.seed, a.batch, attacks=[attack])
            mf, ms = mmard_attack(a.mmard, weights, x[idx], y[idx], a.eps, a.seed, a.batch, attack, model, d, a.device)
            agree = 100 * (rf == mf).float().mean().item()
            alone[attack] = {"reference": 100 * rf.float().sum().item() / a.n, "mmard": 100 * mf.float().sum().item() / a.n,
                             "agreement": agree, "reference_s": rs, "mmard_s": ms}
            print(f"\n{attack} alone: pyautoattack {alone[attack]['reference']:.2f}%, mmard {alone[attack]['mmard']:.2f}% "
                  f"(of all {a.n}); the same verdict on {agree:.2f}% of the {len(idx)} points attacked; "
                  f"{rs:.1f} s / {ms:.1f} s", flush=True)
        if a.json:
            Path(a.json).write_text(json.dumps({
                "n": a.n, "eps": a.eps, "seed": a.seed, "batch": a.batch, "clean": 100 * clean.float().mean().item(),
                "reference": {"aa": 100 * ref_flags.float().mean().item(), "seconds": ref_s,
                              "stages": [{"attack": n, "accuracy": acc, "total_seconds": t} for n, acc, t in ref_rows]},
                "mmard": {"aa": mm["aa"], "seconds": mm_s, "stages": mm["aa_protocol"]["stages"]},
                "alone": alone}, indent=1))

if __name__ == "__main__":
    main()
