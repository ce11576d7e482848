"""One distillation step in idiomatic PyTorch, timed like `mmard bench step` (same flags, same JSON):
teacher forward under no_grad, a K-step PGD inner loop taking only the input gradient
(torch.autograd.grad, parameters frozen, BatchNorm in eval mode), then the outer step (student in
train mode, backward, SGD with momentum and weight decay). cudnn.benchmark on GPU. The models are
written here with mmard's architectures and state_dict names; the method's terms, start, forwards
and weight decay come from `mmard bench objective` (--mmard), so no coefficient is restated here.

Usage: python bench/pytorch_step.py --student resnet18 --teacher wide_resnet --teacher-config '{"depth":16,"widen":4}' \
           --method mmard --batch 32 --pgd-steps 10 --input 3x32x32 [--device cpu|cuda] [--repeats 5] [--threads T] [--mmard target/release/mmard]"""
import argparse, contextlib, json, os, resource, statistics, subprocess, sys, time
from pathlib import Path
import torch, torch.nn as nn, torch.nn.functional as F

class SmallCNN(nn.Module):
    def __init__(self, in_channels=3, size=32, widths=(32, 64, 128), classes=10):
        super().__init__()
        c = [in_channels] + list(widths)
        for i in range(3):
            setattr(self, f"conv{i+1}", nn.Conv2d(c[i], c[i + 1], 3, 1, 1, bias=False)); setattr(self, f"bn{i+1}", nn.BatchNorm2d(c[i + 1]))
        self.fc = nn.Linear(widths[2] * (size // 8) ** 2, classes)
    def forward(self, x):
        for i in range(1, 4):
            x = F.max_pool2d(F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x))), 2)
        return self.fc(x.flatten(1))

class Basic(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False); self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False); self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + self.shortcut(x))

class ResNet18(nn.Module):
    def __init__(self, in_channels=3, width=64, classes=10, **_):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False); self.bn1 = nn.BatchNorm2d(width)
        cin, layers = width, []
        for i, m in enumerate([1, 2, 4, 8]):
            blocks = []
            for j in range(2):
                blocks.append(Basic(cin, width * m, 2 if i > 0 and j == 0 else 1)); cin = width * m
            setattr(self, f"layer{i+1}", nn.Sequential(*blocks))
        self.linear = nn.Linear(8 * width, classes)
    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))

class WRNBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin); self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout); self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.convShortcut = None if cin == cout else nn.Conv2d(cin, cout, 1, stride, 0, bias=False)
    def forward(self, x):
        a = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(a))))
        return (x if self.convShortcut is None else self.convShortcut(a)) + out

class Group(nn.Module):
    def __init__(self, n, cin, cout, stride):
        super().__init__()
        self.layer = nn.Sequential(*[WRNBlock(cin if i == 0 else cout, cout, stride if i == 0 else 1) for i in range(n)])
    def forward(self, x):
        return self.layer(x)

class WideResNet(nn.Module):
    def __init__(self, in_channels=3, depth=34, widen=10, classes=10, **_):
        super().__init__()
        ch, n = [16, 16 * widen, 32 * widen, 64 * widen], (depth - 4) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.block1 = Group(n, ch[0], ch[1], 1); self.block2 = Group(n, ch[1], ch[2], 2); self.block3 = Group(n, ch[2], ch[3], 2)
        self.bn1 = nn.BatchNorm2d(ch[3]); self.fc = nn.Linear(ch[3], classes)
    def forward(self, x):
        x = F.relu(self.bn1(self.block3(self.block2(self.block1(self.conv1(x))))))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

def DMWideResNet(in_channels=3, depth=28, width=10, classes=10, activation=None, **_):
    """RobustBench's own DMWideResNet (`pip install --no-deps robustbench==1.1.1`; only its module file is loaded)."""
    import importlib.util
    spec = importlib.util.find_spec("robustbench")
    if spec is None:
        raise SystemExit("dm_wide_resnet needs robustbench's model definition: pip install --no-deps robustbench==1.1.1")
    path = Path(spec.origin).parent / "model_zoo" / "architectures" / "dm_wide_resnet.py"
    m = importlib.util.spec_from_file_location("dm_wide_resnet", path); dm = importlib.util.module_from_spec(m); m.loader.exec_module(dm)
    act = {"relu": nn.ReLU, "swish": dm.Swish}[activation]
    mean, std = (dm.CIFAR10_MEAN, dm.CIFAR10_STD) if classes == 10 else (dm.CIFAR100_MEAN, dm.CIFAR100_STD)
    return dm.DMWideResNet(num_classes=classes, depth=depth, width=width, activation_fn=act, mean=mean, std=std, num_input_channels=in_channels)

ARCHS = {"small_cnn": SmallCNN, "resnet18": ResNet18, "wide_resnet": WideResNet, "dm_wide_resnet": DMWideResNet}

def kl(a, b, tau=1.0):
    """Per-sample KL(softmax(a/τ) ‖ softmax(b/τ))."""
    la, lb = F.log_softmax(a / tau, 1), F.log_softmax(b / tau, 1)
    return (la.exp() * (la - lb)).sum(1)

def objective(mmard, method, eps):
    """The method as mmard defines it (`mmard bench objective`): its terms, start, forwards and weight decay,
    so this twin restates no coefficient and times the same work."""
    out = subprocess.run([mmard, "bench", "objective", "--method", method, "--eps", repr(eps)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{mmard} bench objective failed: {out.stderr.strip()}")
    return json.loads(out.stdout)

def active(terms):
    return [t for t in terms if t["weight"] != 0]

def reads(terms):
    return {v for t in active(terms) for k, v in t.items() if k in ("z", "a", "b")} | \
        ({"teacher_adv"} if any(t["kind"] == "introspection" for t in active(terms)) else set())

def per_sample(terms, z, y):
    """Σ weight·term per sample over the terms of nonzero weight (docs/methods.md)."""
    total = 0
    for t in active(terms):
        if t["kind"] == "ce":
            v = F.cross_entropy(z[t["z"]], y, reduction="none")
        elif t["kind"] == "kl":
            v = kl(z[t["a"]], z[t["b"]], t["tau"])
        else:  # introspection: KL at τ = 1 weighted by 1 − P_T(x')[y]^β, a constant
            w = 1 - F.softmax(z["teacher_adv"], 1).gather(1, y[:, None])[:, 0].detach() ** t["beta"]
            v = w * kl(z[t["a"]], z[t["b"]])
        total = total + t["weight"] * v
    return total

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--student", required=True); ap.add_argument("--student-config", default="{}")
    ap.add_argument("--teacher"); ap.add_argument("--teacher-config", default="{}")
    ap.add_argument("--method", required=True); ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--pgd-steps", type=int, default=10); ap.add_argument("--input", default="3x32x32")
    ap.add_argument("--classes", type=int, default=10); ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="cpu"); ap.add_argument("--threads", type=int)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--mmard", default="target/release/mmard", help="the mmard binary whose method definitions are timed")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 in convolutions and matmuls (mmard: --tf32)")
    ap.add_argument("--amp", action="store_true", help="forwards under torch.autocast in bfloat16, as AMP trains (GPU; mmard has no bf16 mode yet)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    # Under torchrun: data parallel over gloo, each rank on its share of the batch, the gradients
    # summed in one buffer after the backward and rank 0's BatchNorm buffers broadcast, as
    # `mpirun mmard bench step` does (and DDP by default, less its overlap, which has little to hide
    # on a 2-core CPU); rank 0 reports.
    ranks = int(os.environ.get("WORLD_SIZE", "1"))
    if ranks > 1:
        torch.distributed.init_process_group("gloo")
    rank = torch.distributed.get_rank() if ranks > 1 else 0
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        # Plain fp32 unless asked, as mmard (PyTorch enables TF32 for cuDNN convolutions by default).
        torch.backends.cudnn.allow_tf32 = a.tf32
        torch.backends.cuda.matmul.allow_tf32 = a.tf32
    c, h, w = map(int, a.input.split("x"))
    def build(name, cfg):
        cfg = {"in_channels": c, "classes": a.classes, "size": h, **json.loads(cfg)}
        return ARCHS[name](**cfg).to(dev)
    torch.manual_seed(0)
    student = build(a.student, a.student_config)
    teacher = build(a.teacher, a.teacher_config).eval() if a.teacher else None
    if teacher is not None:
        teacher.requires_grad_(False)
    eps, step = 8 / 255, 2 / 255
    obj = objective(a.mmard, a.method, eps)
    inner_reads, outer_reads = reads(obj["inner_terms"]), reads(obj["outer_terms"])
    opt = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9, weight_decay=obj["weight_decay"])
    x = torch.rand(a.batch, c, h, w, device=dev); y = torch.randint(0, a.classes, (a.batch,), device=dev)
    if ranks > 1:
        share = slice(rank * a.batch // ranks, (rank + 1) * a.batch // ranks)
        x, y = x[share], y[share]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    # AMP: convolutions and GEMMs in bf16, losses and the optimizer in f32 (autocast's own lists)
    amp = (lambda: torch.autocast(dev.type, dtype=torch.bfloat16)) if a.amp else contextlib.nullcontext
    times = {"teacher_forward": [], "inner": [], "outer": []}
    for rep in range(a.repeats + 1):
        sync(); t0 = time.perf_counter()
        with torch.no_grad(), amp():
            t_nat = teacher(x) if "teacher_nat" in inner_reads | outer_reads else None
        sync(); t1 = time.perf_counter()
        student.eval(); student.requires_grad_(False)
        with torch.no_grad(), amp():
            s_nat = student(x) if "student_nat" in inner_reads else None
        r = obj["start_radius"]
        xa = (x + torch.empty_like(x).uniform_(-r, r)).clamp(0, 1)
        for _ in range(a.pgd_steps if inner_reads else 0):
            xa.requires_grad_(True)
            with amp():
                z = {"student_adv": student(xa), "student_nat": s_nat, "teacher_nat": t_nat}
                if "teacher_adv" in inner_reads:
                    z["teacher_adv"] = teacher(xa)
                loss = per_sample(obj["inner_terms"], z, y).sum()
            g, = torch.autograd.grad(loss, [xa])
            xa = torch.min(torch.max(xa.detach() + step * g.sign(), x - eps), x + eps).clamp(0, 1)
        sync(); t2 = time.perf_counter()
        student.train(); student.requires_grad_(True)
        opt.zero_grad(set_to_none=True)
        z = {"teacher_nat": t_nat}
        with amp():
            for f in obj["outer_forwards"]:  # S(x') first, and every set the formula names (BatchNorm's statistics)
                z[f] = student(xa if f == "student_adv" else x)
            if "teacher_adv" in outer_reads:
                with torch.no_grad():
                    z["teacher_adv"] = teacher(xa)
            loss = per_sample(obj["outer_terms"], z, y).mean()
        loss.backward()
        if ranks > 1:
            grads = [q.grad for q in student.parameters() if q.grad is not None]
            flat = torch.cat([g.reshape(-1) for g in grads])
            torch.distributed.all_reduce(flat)
            torch.nn.utils.vector_to_parameters(flat / ranks, grads)
        opt.step()
        if ranks > 1:
            for b in student.buffers():
                if b.is_floating_point():
                    torch.distributed.broadcast(b, 0)
        sync(); t3 = time.perf_counter()
        if rep > 0:
            times["teacher_forward"].append(t1 - t0); times["inner"].append(t2 - t1); times["outer"].append(t3 - t2)
    res = {k: statistics.median(v) for k, v in times.items()}
    res["total"] = statistics.median([sum(t) for t in zip(*times.values())])
    res["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # Like mmard's figure (driver's used memory), reserved rather than allocated: what the caching allocator holds.
    res["device_mem_mib"] = torch.cuda.max_memory_reserved() / 2**20 if dev.type == "cuda" else 0.0
    res["config"] = {"student": a.student, "teacher": a.teacher, "method": a.method, "batch": a.batch, "pgd_steps": a.pgd_steps,
                     "threads": torch.get_num_threads(), "device": a.device, "torch": torch.__version__, "ranks": ranks,
                     "precision": "amp-bf16" if a.amp else "tf32" if a.tf32 else "fp32"}
    if rank > 0:
        return
    print(json.dumps(res) if a.json else f"{a.method} step: teacher forward {res['teacher_forward']:.3f} s, inner {res['inner']:.3f} s, "
          f"outer {res['outer']:.3f} s, total {res['total']:.3f} s, peak RSS {res['peak_rss_mib']:.0f} MiB")

if __name__ == "__main__":
    main()
