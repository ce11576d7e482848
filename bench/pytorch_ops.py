"""The same work as benches/ops.rs in PyTorch (eager, default threads): a 2048³ sgemm, the conv
layers of ResNet-18 and WRN-34-10 at batch 32 and of SmallCNN at batch 128 (forward, backward-data,
backward-filter), whole ResNet-18 passes (the model of bench/pytorch_step.py), and the memory-bound
ops at SmallCNN's first activation at batch 128 (1024 on the GPU). Prints medians, each under the
name of its criterion bench. On `--device cuda`: cuDNN with benchmark mode and TF32 off (mmard's
default), names as in a `--features cuda` build (`NAME_cuda`, `memory_bound_cuda`). `--only REGEX`
times only what matches those names (`bench/ops_table.py` passes its criterion filter).
Usage: python bench/pytorch_ops.py [--repeats N] [--device cpu|cuda] [--only REGEX]   (needs torch)"""
import argparse, re, statistics, sys, time
from pathlib import Path
import torch
import torch.nn.functional as F

RESNET18 = [(3, 64, 32, 3, 1), (64, 64, 32, 3, 1), (64, 128, 32, 3, 2), (128, 128, 16, 3, 1), (64, 128, 32, 1, 2),
            (128, 256, 16, 3, 2), (256, 256, 8, 3, 1), (128, 256, 16, 1, 2), (256, 512, 8, 3, 2), (512, 512, 4, 3, 1),
            (256, 512, 8, 1, 2)]
WRN34_10 = [(3, 16, 32, 3, 1), (16, 160, 32, 3, 1), (16, 160, 32, 1, 1), (160, 160, 32, 3, 1), (160, 320, 32, 3, 2),
            (160, 320, 32, 1, 2), (320, 320, 16, 3, 1), (320, 640, 16, 3, 2), (320, 640, 16, 1, 2), (640, 640, 8, 3, 1)]
SMALL_CNN = [(3, 32, 32, 3, 1), (32, 64, 16, 3, 1), (64, 128, 8, 3, 1)]
B = 32
# (name, batch, layers), as the criterion groups of benches/ops.rs
NETS = [("conv2d_resnet18_b32", B, RESNET18), ("conv2d_wrn34_10_b32", B, WRN34_10), ("conv2d_small_cnn_b128", 128, SMALL_CNN)]

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--repeats", type=int, default=10); ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", default=""); a = ap.parse_args()
    dev = torch.device(a.device); cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    wanted = lambda name: re.search(a.only, name) is not None
    rand = lambda *shape: torch.rand(*shape, device=dev)

    def median_time(f):
        f(); sync()
        ts = []
        for _ in range(a.repeats):
            t = time.perf_counter(); f(); sync(); ts.append(time.perf_counter() - t)
        return statistics.median(ts)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {a.device}")
    if wanted("sgemm/2048"):
        a_, b_ = rand(2048, 2048), rand(2048, 2048)
        t = median_time(lambda: a_ @ b_)
        print(f"sgemm 2048: {t*1e3:.4f} ms ({2 * 2048**3 / t / 1e9:.0f} GFLOP/s)")
    x = rand(1024 if cuda else 128, 32, 32, 32) - 0.5; x2 = torch.rand_like(x); gy = torch.rand_like(x)
    gamma, beta, rm, rv = torch.ones(32, device=dev), torch.zeros(32, device=dev), torch.zeros(32, device=dev), torch.ones(32, device=dev)
    def bn_train():
        xi = x.detach().requires_grad_(True); g_ = gamma.clone().requires_grad_(True); b_ = beta.clone().requires_grad_(True)
        torch.autograd.grad(F.batch_norm(xi, rm.clone(), rv.clone(), g_, b_, True, 0.1, 1e-5), [xi, g_, b_], gy)
    def bn_eval_in():
        xi = x.detach().requires_grad_(True)
        torch.autograd.grad(F.batch_norm(xi, rm, rv, gamma, beta, False, 0.1, 1e-5), [xi], gy)
    def maxpool_fb():
        xi = x.detach().requires_grad_(True)
        y = F.max_pool2d(xi, 2); torch.autograd.grad(y, [xi], torch.ones_like(y))
    ops = [("copy", x.clone), ("relu_forward", lambda: torch.relu(x)), ("relu_backward", lambda: torch.ops.aten.threshold_backward(gy, x, 0.0)),
           ("add", lambda: x + x2), ("maxpool_forward", lambda: F.max_pool2d_with_indices(x, 2)), ("maxpool_fwd_bwd", maxpool_fb),
           ("bn_eval_forward", lambda: F.batch_norm(x, rm, rv, gamma, beta, False, 0.1, 1e-5)), ("bn_eval_fwd_bwd_input_only", bn_eval_in),
           ("bn_train_fwd_bwd", bn_train),
           ("pgd_step", lambda: torch.min(torch.max(x + 2 / 255 * torch.sign(gy), x2 - 8 / 255), x2 + 8 / 255).clamp_(0, 1))]
    for name, f in ops:
        if wanted(f"memory_bound_{dev.type}/{name}"):
            print(f"memory_bound {name}: {median_time(f) * 1e3:.4f} ms")
    for net, batch, layers in NETS:
        group = net + ("_cuda" if cuda else "")
        for cin, cout, side, k, s in layers:
            layer = f"{cin}-{cout}_{side}_k{k}s{s}"
            if not any(wanted(f"{group}/{kind}/{layer}") for kind in ("forward", "backward_data", "backward_filter")):
                continue
            x = rand(batch, cin, side, side) - 0.5; w = rand(cout, cin, k, k) - 0.5
            y = F.conv2d(x, w, None, s, k // 2); gy = torch.rand_like(y)
            flops = 2 * y.numel() * cin * k * k
            fwd = median_time(lambda: F.conv2d(x, w, None, s, k // 2))
            bd = median_time(lambda: torch.ops.aten.convolution_backward(gy, x, w, None, [s, s], [k // 2] * 2, [1, 1], False, [0, 0], 1, [True, False, False]))
            bf = median_time(lambda: torch.ops.aten.convolution_backward(gy, x, w, None, [s, s], [k // 2] * 2, [1, 1], False, [0, 0], 1, [False, True, False]))
            print(f"{group}/{layer}: forward {fwd*1e3:.4f} ms ({flops/fwd/1e9:.0f} GFLOP/s), "
                  f"backward_data {bd*1e3:.4f} ms ({flops/bd/1e9:.0f}), backward_filter {bf*1e3:.4f} ms ({flops/bf/1e9:.0f})")
    if not wanted("resnet18_b32/"):
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from pytorch_step import ResNet18
    torch.manual_seed(0)
    m = ResNet18().to(dev); x = rand(B, 3, 32, 32); y = torch.arange(B, device=dev) % 10
    def eval_forward():
        m.eval()
        with torch.no_grad(): m(x)
    def input_grad():
        m.eval(); xi = x.detach().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(m(xi), y, reduction="sum"), [xi])
    def train_step_grads():
        m.train(); m.zero_grad(); F.cross_entropy(m(x), y).backward()
    for p in m.parameters(): p.requires_grad_(False)
    t_eval = median_time(eval_forward); t_in = median_time(input_grad)
    for p in m.parameters(): p.requires_grad_(True)
    t_tr = median_time(train_step_grads)
    print(f"resnet18_b32: eval_forward {t_eval*1e3:.1f} ms, input_grad {t_in*1e3:.1f} ms, train_step_grads {t_tr*1e3:.1f} ms")

if __name__ == "__main__":
    main()
