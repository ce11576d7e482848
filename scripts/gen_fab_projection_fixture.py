"""Parity fixture for FAB's L-inf box-constrained hyperplane projection (AutoAttack's `projection_linf`).

Runs the reference `pyautoattack.fab_projections.projection_linf` on the CPU in float32, as FAB does
(one call per iteration on the rows [x1; x0]), on random rows of several widths and writes one case:

  tests/fixtures/fab_projection_linf.safetensors
    metadata: kind = "fab_projection_linf", dims = JSON list of the widths D, source = the reference
    for every D in dims, float32:
      points_to_project_dD [n, D]   t, the points
      w_hyperplane_dD      [n, D]   w
      b_hyperplane_dD      [n]      b (the hyperplane is <w, x> = b)
      result_dD            [n, D]   d = projection_linf(t, w, b): t + d is the reference's projection

Rows are independent (the function works row by row), so each D's n rows are one batch. The rows mix
generic points, points exactly on the hyperplane, w with zeros (and an all-zero w), b out of the box's
reach, coordinates at 0 and 1, image-like values on the 1/255 grid (ties in the sort) and FAB-like
linearisations, so that each width reaches the three branches (uniform step, bisection, box corner).

Checks, before writing: every branch occurs; each row's result equals a run of that row alone (bitwise);
t + d stays in [0, 1]; on feasible rows <w, t + d> = b up to float32 rounding; and it prints how far a
stable argsort moves the result (the reference's argsort is unstable above 16 elements, so on ties no
port can reproduce the summation order: compare with a tolerance, not bitwise).

Usage (from the repository root): <venv>/bin/python scripts/gen_fab_projection_fixture.py [--out PATH]
Needs torch, safetensors and pyautoattack.
"""
import argparse, functools, json
import torch
from safetensors.torch import save_file
from pyautoattack import __version__ as aa_version
from pyautoattack.fab_projections import projection_linf

DIMS_ROWS = {1: 24, 2: 32, 3: 32, 7: 48, 64: 40, 784: 12}


def row(kind, d, g):
    """One (t, w, b) row of the given kind, float32."""
    rand = lambda *s: torch.rand(*s, generator=g)
    randn = lambda *s: torch.randn(*s, generator=g)
    t, w = rand(d), randn(d)
    spread = lambda: w.abs().sum() * 0.5 * randn(()).item()  # b offsets within the box's reach
    if kind == "generic":
        b = (w * t).sum() + spread()
    elif kind == "near":  # small offset from a point inside the box: the uniform-step branch
        t = 0.3 + 0.4 * rand(d)
        b = (w * t).sum() + 0.05 * w.abs().sum() * randn(()).item()
    elif kind == "on_plane":  # <w, t> = b to the last bit
        b = (w * t).sum()
    elif kind == "grid":  # image-like: many equal values of t, hence ties in the sort
        t = torch.randint(0, 256, (d,), generator=g).float() / 255
        w = torch.where(rand(d) < 0.5, -1.0, 1.0) * (torch.randint(1, 4, (d,), generator=g).float() / 8)
        b = (w * t).sum() + spread()
    elif kind == "zeros_in_w":
        w = w * (rand(d) < 0.5)
        b = (w * t).sum() + spread()
    elif kind == "w_all_zero":
        w = torch.zeros(d)
        b = randn(())
    elif kind == "one_nonzero":
        w = torch.zeros(d)
        w[torch.randint(0, d, (1,), generator=g)] = randn(()).item()
        b = (w * t).sum() + spread()
    elif kind == "infeasible":  # b beyond max/min of <w, x> over [0, 1]^d
        hi, lo = w.clamp(min=0).sum(), w.clamp(max=0).sum()
        b = hi + 0.5 + rand(()).item() if rand(()).item() < 0.5 else lo - 0.5 - rand(()).item()
    elif kind == "bounds":  # coordinates at the box's faces
        t = torch.where(rand(d) < 0.5, 0.0, 1.0)
        t = torch.where(rand(d) < 0.3, rand(d), t)
        b = (w * t).sum() + spread()
    elif kind == "fab_like":  # x1 an image, w a gradient, b = <w, x1> - g as FAB builds it
        t = torch.randint(0, 256, (d,), generator=g).float() / 255
        w = 0.01 * randn(d)
        b = (w * t).sum() - 0.02 * randn(()).abs().item() * (1 if rand(()).item() < 0.8 else -1)
    else:
        raise ValueError(kind)
    return t.float(), w.float(), torch.as_tensor(b, dtype=torch.float32)


KINDS = ["generic", "near", "on_plane", "grid", "zeros_in_w", "w_all_zero", "one_nonzero", "infeasible",
         "bounds", "fab_like"]


def branches(t, w, b):
    """Which of the reference's three cases each row falls in, from their definitions (float64, so a
    row within rounding of a border may be counted on the other side): 0 when b is out of the box's
    reach (the projection goes to the box's corner), 1 when one uniform step along every coordinate,
    shorter than the least room any coordinate has, reaches the hyperplane, 2 otherwise (bisection)."""
    t, w, b = t.double(), w.double(), b.double()
    r = (w * t).sum(1) - b
    down = (r >= 0).unsqueeze(1)  # <w, x> must decrease
    # room of each coordinate towards the face that moves <w, x> the right way (towards 0 where w = 0)
    room = torch.where(torch.where(down, w < 0, w > 0), 1 - t, t)
    reach = (w.abs() * room).sum(1)
    step = r.abs() / w.abs().sum(1)
    return torch.where(reach <= r.abs(), 0, torch.where(step < room.min(1).values, 1, 2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="tests/fixtures/fab_projection_linf.safetensors")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(args.seed)
    tensors, worst_tie, worst_f64 = {}, 0.0, 0.0
    for d, n in DIMS_ROWS.items():
        rows = [row(KINDS[i % len(KINDS)], d, g) for i in range(n)]
        t, w, b = (torch.stack(c).contiguous() for c in zip(*rows))
        res = projection_linf(t, w, b)
        assert res.dtype == torch.float32 and res.shape == t.shape
        alone = torch.cat([projection_linf(t[i:i + 1], w[i:i + 1], b[i:i + 1]) for i in range(n)])
        assert torch.equal(alone, res), f"d={d}: a row's result depends on its batch"
        br = branches(t, w, b)
        # with one coordinate, a reachable b is always reached by the uniform step
        want = {0, 1} if d == 1 else {0, 1, 2}
        assert want <= set(br.tolist()), f"d={d}: branches reached {sorted(set(br.tolist()))}"
        x = t + res
        assert x.min() >= -1e-6 and x.max() <= 1 + 1e-6, f"d={d}: projection leaves the box"
        feasible = br != 0
        resid = ((w * x).sum(1) - b).abs()[feasible]
        scale = ((w.abs() * (t.abs() + res.abs())).sum(1) + b.abs())[feasible]
        assert (resid <= 1e-5 * scale + 1e-6).all(), f"d={d}: off the hyperplane by {resid.max():.3e}"
        stable = functools.partial(torch.argsort, stable=True)
        orig, torch.argsort = torch.argsort, stable
        try:
            res_stable = projection_linf(t, w, b)
        finally:
            torch.argsort = orig
        worst_tie = max(worst_tie, (res_stable - res).abs().max().item())
        worst_f64 = max(worst_f64, (projection_linf(t.double(), w.double(), b.double()) - res).abs().max().item())
        counts = {k: int((br == k).sum()) for k in (1, 2, 0)}
        print(f"d={d:4d} n={n:3d}  uniform step {counts[1]:2d}, bisection {counts[2]:2d}, corner {counts[0]:2d}")
        for name, v in (("points_to_project", t), ("w_hyperplane", w), ("b_hyperplane", b), ("result", res)):
            tensors[f"{name}_d{d}"] = v.contiguous()
    print(f"largest change from a stable argsort (tie order): {worst_tie:.3e}; from float64: {worst_f64:.3e}")
    meta = {"kind": "fab_projection_linf", "dims": json.dumps(list(DIMS_ROWS)),
            "source": f"pyautoattack {aa_version} fab_projections.projection_linf, torch {torch.__version__} "
                      f"CPU float32, seed {args.seed}"}
    save_file(tensors, args.out, metadata=meta)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
