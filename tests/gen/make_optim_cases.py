#!/usr/bin/env python3
"""Generate the optimizer reference trajectories of tests/model/t_optim.c.

Usage (from the top of the source tree, with torch 1.13 and safetensors,
e.g. the venv /opt/hfvenv):

    /opt/hfvenv/bin/python tests/gen/make_optim_cases.py [--out tests/fixtures/optim]

Never run by `make check`: the C test reads only the committed output. The
generator is seeded and rewrites byte-identical files on the same machine.

Each case is one safetensors file. A small "model" of a few tensors with
mixed decay / no-decay segments is trained for STEPS steps on given random
gradients (no forward pass: the gradient of step t is stored), exactly as a
PyTorch training loop does it:

    for t in 0..STEPS-1:
        p.grad = grads[t] (per tensor)
        grad_norm[t] = torch.nn.utils.clip_grad_norm_(params, max_norm)
                       (skipped when max_norm == 0; then the fp32 total
                        2-norm torch.norm(stack(norms)) is stored instead)
        group["lr"] = lr(t) for both groups       (schedule below, in double)
        opt.step()        torch.optim.AdamW / Adam, torch 1.13 single-tensor path
        params[t] = all parameters, flattened in segment order

with two parameter groups: weight_decay = wd for decay segments, 0 for the
others. lr(t) is the kd_hpc schedule (include/kd/model/lr_schedule.h),
t = number of updates already made:

    warmup  t <  W:  lr_max * (t + 1) / W
    linear  t >= W:  lr_min + (lr_max - lr_min) * (T - t) / (T - W)
    cosine  t >= W:  lr_min + (lr_max - lr_min) * 0.5 * (1 + cos(pi (t - W) / (T - W)))
    constant t >= W: lr_max

Tensors of each file (F32 unless stated; N = parameter count, S = STEPS):

    segments   I64 [NSEG, 3]  (offset, count, decay) of each tensor in the flat block
    init       [N]            parameters before the first step
    grads      [S, N]         raw (unclipped) gradient of step t
    lr         [S]            lr(t) rounded to F32 (the C side recomputes it in double)
    grad_norm  [S]            pre-clip total norm as torch returns it (fp32)
    params     [S, N]         parameters after the update of step t
    m, v       [N]            exp_avg, exp_avg_sq after the last step

Metadata (strings; floats as Python repr, so strtod gives the same double):
optimizer ("adamw" | "adam"), beta1, beta2, eps, weight_decay, max_norm,
schedule ("linear" | "cosine" | "constant"), lr_max, lr_min, warmup_steps,
total_steps, steps, segment_names (comma-separated), torch (version).
"""

import argparse
import json
import math
import os
import struct

import safetensors.torch as st
import torch

STEPS = 12

# (name, shape, decay): sizes chosen so that segments are not multiples of
# the C kernel's block width and one is a single element.
SEGMENTS = [
    ("enc.weight", (6, 7), 1),
    ("enc.bias", (7,), 0),
    ("ln.weight", (19,), 0),
    ("ln.bias", (19,), 0),
    ("dec.weight", (5, 9), 1),
    ("scale", (1,), 1),
    ("head.weight", (33,), 1),
]

# Per-step gradient scale: sqrt(N) ~ 13, so the total norm crosses 1 and 2
# in both directions (clipping active on some steps, inactive on others).
GRAD_SCALES = [0.01, 0.05, 0.2, 0.03, 0.5, 0.08, 0.02, 0.3, 0.06, 0.15, 0.01, 0.4]

CASES = {
    # BERT-style AdamW: beta2 0.98, linear warmup + decay, clipping at 1
    "adamw": dict(optimizer="adamw", beta1=0.9, beta2=0.98, eps=1e-6,
                  weight_decay=0.1, max_norm=1.0, schedule="linear",
                  lr_max=1e-2, lr_min=0.0, warmup_steps=3, total_steps=STEPS),
    # Adam with L2 regularisation, cosine decay to a floor, clipping at 2
    "adam": dict(optimizer="adam", beta1=0.8, beta2=0.999, eps=1e-8,
                 weight_decay=0.05, max_norm=2.0, schedule="cosine",
                 lr_max=2e-2, lr_min=1e-3, warmup_steps=2, total_steps=STEPS),
    # AdamW without clipping, constant rate after a one-step warmup
    "adamw_noclip": dict(optimizer="adamw", beta1=0.9, beta2=0.999, eps=1e-8,
                         weight_decay=0.01, max_norm=0.0, schedule="constant",
                         lr_max=3e-3, lr_min=0.0, warmup_steps=1,
                         total_steps=STEPS),
}


def schedule_lr(c, t):
    """The learning rate of the update made when t updates are done."""
    w, total = c["warmup_steps"], c["total_steps"]
    hi, lo = c["lr_max"], c["lr_min"]
    if t < w:
        return hi * ((t + 1) / w)
    if c["schedule"] == "constant":
        return hi
    if t >= total:
        return lo
    if c["schedule"] == "linear":
        return lo + (hi - lo) * ((total - t) / (total - w))
    progress = (t - w) / (total - w)
    return lo + (hi - lo) * (0.5 * (1.0 + math.cos(math.pi * progress)))


def make_case(name, c, seed):
    gen = torch.Generator().manual_seed(seed)
    params = []
    for _, shape, _ in SEGMENTS:
        p = torch.randn(shape, generator=gen) * 0.5
        params.append(torch.nn.Parameter(p))
    params[0].data.view(-1)[3] = 0.0   # exact zeros stay meaningful
    params[4].data.view(-1)[0] = 0.0
    n = sum(p.numel() for p in params)

    grads = torch.empty(STEPS, n)
    for t in range(STEPS):
        g = torch.randn(n, generator=gen) * GRAD_SCALES[t]
        g[5] = 0.0                                   # a zero gradient entry
        # ln.bias gets tiny gradients so eps dominates its denominators
        off = sum(math.prod(s) for _, s, _ in SEGMENTS[:3])
        g[off:off + 19] *= 1e-6
        grads[t] = g

    decay = [p for p, (_, _, d) in zip(params, SEGMENTS) if d]
    nodecay = [p for p, (_, _, d) in zip(params, SEGMENTS) if not d]
    groups = [{"params": decay, "weight_decay": c["weight_decay"]},
              {"params": nodecay, "weight_decay": 0.0}]
    kw = dict(lr=c["lr_max"], betas=(c["beta1"], c["beta2"]), eps=c["eps"])
    if c["optimizer"] == "adamw":
        opt = torch.optim.AdamW(groups, foreach=False, **kw)
    else:
        opt = torch.optim.Adam(groups, foreach=False, **kw)

    init = torch.cat([p.detach().reshape(-1) for p in params]).clone()
    lrs, norms, traj = [], [], torch.empty(STEPS, n)
    for t in range(STEPS):
        off = 0
        for p in params:
            p.grad = grads[t, off:off + p.numel()].reshape(p.shape).clone()
            off += p.numel()
        if c["max_norm"] > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, c["max_norm"])
        else:
            norm = torch.norm(torch.stack([torch.norm(p.grad, 2) for p in params]), 2)
        lr = schedule_lr(c, t)
        for grp in opt.param_groups:
            grp["lr"] = lr
        opt.step()
        lrs.append(lr)
        norms.append(norm.item())
        traj[t] = torch.cat([p.detach().reshape(-1) for p in params])

    m = torch.cat([opt.state[p]["exp_avg"].reshape(-1) for p in params])
    v = torch.cat([opt.state[p]["exp_avg_sq"].reshape(-1) for p in params])
    seg, off = [], 0
    for _, shape, d in SEGMENTS:
        seg.append([off, math.prod(shape), d])
        off += math.prod(shape)

    tensors = {
        "segments": torch.tensor(seg, dtype=torch.int64),
        "init": init,
        "grads": grads,
        "lr": torch.tensor(lrs, dtype=torch.float32),
        "grad_norm": torch.tensor(norms, dtype=torch.float32),
        "params": traj,
        "m": m.clone(),
        "v": v.clone(),
    }
    meta = {k: (repr(v) if isinstance(v, float) else str(v)) for k, v in c.items()}
    meta["steps"] = str(STEPS)
    meta["segment_names"] = ",".join(s[0] for s in SEGMENTS)
    meta["torch"] = torch.__version__
    return tensors, meta, norms


def save_sorted(tensors, path, metadata):
    """safetensors.torch.save_file, but with the header keys (and metadata
    keys) in sorted order: the library orders metadata by a hash map, which
    would make the file differ from run to run. Checked by reloading."""
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, off = [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        data = t.numpy().tobytes()
        dtype = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        header[name] = {"dtype": dtype, "shape": list(t.shape),
                        "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(len(text) + 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    back = st.load_file(path)
    assert set(back) == set(tensors)
    assert all(torch.equal(back[k], tensors[k]) for k in tensors)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/optim")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    for i, (name, c) in enumerate(CASES.items()):
        tensors, meta, norms = make_case(name, c, 1234 + i)
        path = os.path.join(args.out, name + ".safetensors")
        save_sorted(tensors, path, meta)
        clipped = sum(1 for x in norms if c["max_norm"] > 0 and x > c["max_norm"])
        print(f"{path}: {c['optimizer']} {c['schedule']}, {clipped}/{STEPS} steps clipped, "
              f"norms {min(norms):.3g}..{max(norms):.3g}")


if __name__ == "__main__":
    main()
