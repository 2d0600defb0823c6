#!/usr/bin/env python3
"""Check a checkpoint directory written by kd_hpc's C writer with Python's
safetensors and with transformers (by hand; never run by `make check`).

Usage, from the build directory:

    KD_CKPT_EXPORT_DIR=/tmp/kd_export tests/model/t_safetensors
    /opt/hfvenv/bin/python $srcdir/tests/gen/check_written_checkpoint.py /tmp/kd_export

The directory holds what tests/model/t_safetensors.c exports:

  config.json, model.safetensors   a tiny head-pruned
                                   BertForSequenceClassification whose values
                                   follow the fixture formula (see
                                   make_checkpoint_cases.py)
  convert.safetensors              "src" (F32) and its "f16" / "bf16" forms
                                   rounded by the C writer

Checks: safetensors.safe_open reads both files (header, padding, metadata);
transformers loads the model with no missing, unexpected or mismatched
weights, every parameter equals the formula, pruned heads and labels come
through, and a forward pass runs; the C writer's F16/BF16 rounding equals
torch's float32 -> float16 / bfloat16 conversion bit for bit.
"""

import os
import sys

import torch
from safetensors import safe_open
from transformers import BertForSequenceClassification

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_checkpoint_cases import canonical, formula  # noqa: E402


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/kd_export"
    failures = []

    with safe_open(os.path.join(d, "model.safetensors"), framework="pt") as f:
        meta = f.metadata()
        names = list(f.keys())
        if meta.get("format") != "pt":
            failures.append("metadata format is %r" % meta.get("format"))
        for n in names:
            t = f.get_tensor(n)
            if not torch.equal(t, formula(n, tuple(t.shape))):
                failures.append("safe_open: %s differs from the formula" % n)
    print("safe_open: %d tensors, metadata %s" % (len(names), meta))

    model, info = BertForSequenceClassification.from_pretrained(
        d, output_loading_info=True)
    for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        if info[k]:
            failures.append("from_pretrained %s: %s" % (k, info[k]))
    for n, p in model.named_parameters():
        if not torch.equal(p.detach(), formula(n, tuple(p.shape))):
            failures.append("transformers: %s (canonical %s) differs" % (n, canonical(n)))
    cfg = model.config
    print("config: pruned_heads %s, id2label %s, num_labels %d"
          % (cfg.pruned_heads, cfg.id2label, cfg.num_labels))
    if cfg.pruned_heads != {0: [1, 3]}:
        failures.append("pruned_heads %s" % cfg.pruned_heads)
    if cfg.id2label != {0: "neg", 1: "neu", 2: "pos"}:
        failures.append("id2label %s" % cfg.id2label)
    q = model.bert.encoder.layer[0].attention.self.query.weight
    if tuple(q.shape) != (4, 8):
        failures.append("layer 0 query shape %s" % (tuple(q.shape),))
    model.eval()
    with torch.no_grad():
        out = model(input_ids=torch.tensor([[1, 5, 7, 2]]))
    print("forward logits:", out.logits.tolist())
    if not torch.isfinite(out.logits).all():
        failures.append("non-finite logits")

    with safe_open(os.path.join(d, "convert.safetensors"), framework="pt") as f:
        src = f.get_tensor("src")
        f16 = f.get_tensor("f16")
        bf16 = f.get_tensor("bf16")
    want16 = src.to(torch.float16)
    wantbf = src.to(torch.bfloat16)
    if not torch.equal(f16.view(torch.int16), want16.view(torch.int16)):
        bad = (f16.view(torch.int16) != want16.view(torch.int16)).nonzero().flatten()
        failures.append("F16 rounding differs from torch at %s" % bad.tolist())
    if not torch.equal(bf16.view(torch.int16), wantbf.view(torch.int16)):
        bad = (bf16.view(torch.int16) != wantbf.view(torch.int16)).nonzero().flatten()
        failures.append("BF16 rounding differs from torch at %s" % bad.tolist())
    print("convert: %d values, F16 and BF16 compared bitwise with torch" % src.numel())

    if failures:
        for f in failures:
            print("FAIL:", f)
        sys.exit(1)
    print("OK: %s is readable by safetensors and transformers" % d)


if __name__ == "__main__":
    main()
