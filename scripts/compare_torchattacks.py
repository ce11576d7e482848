"""mmard eval against torchattacks on the same PyTorch-trained model and the same images.

Trains a SmallCNN (the architecture of mmard's `small_cnn`, same state_dict names) with PGD-AT in
PyTorch on Fashion-MNIST, saves it with safetensors, evaluates it with torchattacks (clean, FGSM,
PGD-20, APGD-CE, APGD-T) and with `mmard eval` on the first N test images, and prints both.

Usage: python scripts/compare_torchattacks.py [--mmard target/release/mmard] [--n 1000] [--train 10000]
Needs: torch, torchattacks, safetensors, numpy; Fashion-MNIST in /usr/share/datasets/fashion-mnist.
"""
import argparse, gzip, json, subprocess, tempfile, time
from pathlib import Path
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
from safetensors.torch import save_file

DATA = Path("/usr/share/datasets/fashion-mnist")

class SmallCNN(nn.Module):
    def __init__(self, w=(32, 64, 128)):
        super().__init__()
        self.conv1 = nn.Conv2d(1, w[0], 3, 1, 1, bias=False); self.bn1 = nn.BatchNorm2d(w[0])
        self.conv2 = nn.Conv2d(w[0], w[1], 3, 1, 1, bias=False); self.bn2 = nn.BatchNorm2d(w[1])
        self.conv3 = nn.Conv2d(w[1], w[2], 3, 1, 1, bias=False); self.bn3 = nn.BatchNorm2d(w[2])
        self.fc = nn.Linear(w[2] * 9, 10)
    def forward(self, x):
        for c, b in ((self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)):
            x = F.max_pool2d(F.relu(b(c(x))), 2)
        return self.fc(x.flatten(1))

def load(split, data=DATA):
    p = "train" if split == "train" else "t10k"
    with gzip.open(Path(data) / f"{p}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(Path(data) / f"{p}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return torch.tensor(x, dtype=torch.float32) / 255, torch.tensor(y, dtype=torch.int64)

def pgd_at(model, x, y, eps, steps=7):
    xa = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        xa.requires_grad_(True)
        g, = torch.autograd.grad(F.cross_entropy(model(xa), y), [xa])
        xa = torch.min(torch.max(xa.detach() + eps / 4 * g.sign(), x - eps), x + eps).clamp(0, 1)
    return xa

def train_smallcnn(n_train, eps):
    """A SmallCNN trained with PGD-AT (PGD-7, step ε/4) in PyTorch on the first `n_train` Fashion-MNIST
    training images for 2 epochs, seed 0, in eval mode."""
    torch.manual_seed(0)
    xt, yt = load("train")
    model = SmallCNN(); opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=2e-4)
    t0 = time.time()
    for epoch in range(2):
        perm = torch.randperm(n_train)
        for i in range(0, n_train, 128):
            idx = perm[i:i + 128]; x, y = xt[idx], yt[idx]
            model.eval(); xa = pgd_at(model, x, y, eps); model.train()
            opt.zero_grad(); F.cross_entropy(model(xa), y).backward(); opt.step()
    model.eval()
    print(f"trained SmallCNN with PGD-AT in PyTorch on {n_train} images, 2 epochs, {time.time() - t0:.0f} s")
    return model

def main():
    import torchattacks  # here, so that compare_autoattack.py can borrow the model and data without it
    ap = argparse.ArgumentParser()
    ap.add_argument("--mmard", default="target/release/mmard"); ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--train", type=int, default=10000); ap.add_argument("--eps", type=float, default=0.1)
    a = ap.parse_args()
    model = train_smallcnn(a.train, a.eps)
    xs, ys = load("test")
    x, y = xs[:a.n], ys[:a.n]
    eps = a.eps
    attacks = {
        "clean": None,
        "fgsm": torchattacks.FGSM(model, eps=eps),
        "pgd20": torchattacks.PGD(model, eps=eps, alpha=eps / 4, steps=20, random_start=True),
        "apgd-ce": torchattacks.APGD(model, norm="Linf", eps=eps, steps=100, n_restarts=1, loss="ce", seed=0),
        "apgd-t": torchattacks.APGDT(model, norm="Linf", eps=eps, steps=100, n_restarts=1, n_classes=10, seed=0),
    }
    ta = {}
    for name, atk in attacks.items():
        xa = x if atk is None else torch.cat([atk(x[i:i + 250], y[i:i + 250]) for i in range(0, a.n, 250)])
        with torch.no_grad():
            ta[name] = 100.0 * (model(xa).argmax(1) == y).float().mean().item()
    with tempfile.TemporaryDirectory() as d:
        w = Path(d) / "smallcnn.safetensors"; out = Path(d) / "eval.json"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(w))
        subprocess.run([a.mmard, "eval", "--weights", str(w), "--dataset", "fashion-mnist", "--limit", str(a.n),
                        "--eps", str(eps), "--attacks", ",".join(attacks), "--json", str(out)], check=True)
        mm = json.loads(out.read_text())
    print(f"\n{'attack':<10} {'torchattacks':>12} {'mmard':>8} {'diff':>6}")
    for name in attacks:
        print(f"{name:<10} {ta[name]:>12.2f} {mm[name]:>8.2f} {mm[name] - ta[name]:>+6.2f}")

if __name__ == "__main__":
    main()
