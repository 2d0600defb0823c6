#!/usr/bin/env python3
"""PyTorch peer for bench/engine_bench.sh: BERT sequence classification
inference and training-step throughput on the CPU.

Prints one JSON object per measurement on stdout:
  {"peer": "torch-1.13.1", "model": "base", "threads": 1, "batch": 8,
   "seq": 128, "mode": "infer", "tok_s": ..., "median_s": ...}

The model is transformers' BertForSequenceClassification when transformers
imports, else an equivalent module written here (same shapes and ops), so the
same script runs with Debian's torch and with PyPI's. --onnx also exports the
inference graph and measures ONNX Runtime on it.

Run it with OPENBLAS_NUM_THREADS and OMP_NUM_THREADS equal to --threads:
Debian's torch multiplies through OpenBLAS, whose own thread pool otherwise
competes with torch's (measured here: BERT-mini inference 0.9k tok/s with the
default pool against 13.5k tok/s with OPENBLAS_NUM_THREADS=1).
"""
import argparse
import json
import statistics
import sys
import time

import torch

MODELS = {  # layers, hidden, heads, ffn
    "base": (12, 768, 12, 3072),
    "small": (4, 512, 8, 2048),
    "mini": (4, 256, 4, 1024),
    "tiny4": (4, 312, 12, 1200),
}


def build(name, seq):
    layers, hidden, heads, ffn = MODELS[name]
    try:
        from transformers import BertConfig, BertForSequenceClassification
        cfg = BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers,
                         num_attention_heads=heads, intermediate_size=ffn,
                         max_position_embeddings=max(512, seq), num_labels=2,
                         hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                         attn_implementation="eager")
        return BertForSequenceClassification(cfg), "transformers"
    except Exception:  # transformers missing or incompatible with this torch
        return PlainBert(layers, hidden, heads, ffn, seq), "plain"


class PlainBert(torch.nn.Module):
    """BERT encoder + pooler + classifier with transformers' shapes."""

    def __init__(self, layers, hidden, heads, ffn, seq):
        super().__init__()
        self.heads = heads
        self.wte = torch.nn.Embedding(30522, hidden)
        self.wpe = torch.nn.Embedding(max(512, seq), hidden)
        self.wtt = torch.nn.Embedding(2, hidden)
        self.ln0 = torch.nn.LayerNorm(hidden, eps=1e-12)
        self.layers = torch.nn.ModuleList()
        for _ in range(layers):
            self.layers.append(torch.nn.ModuleDict(dict(
                q=torch.nn.Linear(hidden, hidden), k=torch.nn.Linear(hidden, hidden),
                v=torch.nn.Linear(hidden, hidden), o=torch.nn.Linear(hidden, hidden),
                ln1=torch.nn.LayerNorm(hidden, eps=1e-12), f1=torch.nn.Linear(hidden, ffn),
                f2=torch.nn.Linear(ffn, hidden), ln2=torch.nn.LayerNorm(hidden, eps=1e-12))))
        self.pool = torch.nn.Linear(hidden, hidden)
        self.cls = torch.nn.Linear(hidden, 2)

    def forward(self, input_ids, attention_mask, labels=None):
        B, T = input_ids.shape
        pos = torch.arange(T).unsqueeze(0)
        x = self.ln0(self.wte(input_ids) + self.wpe(pos) + self.wtt(torch.zeros_like(input_ids)))
        bias = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        H = self.heads
        for L in self.layers:
            def split(t):
                return t.view(B, T, H, -1).transpose(1, 2)
            q, k, v = split(L["q"](x)), split(L["k"](x)), split(L["v"](x))
            s = q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5) + bias
            ctx = (s.softmax(-1) @ v).transpose(1, 2).reshape(B, T, -1)
            x = L["ln1"](x + L["o"](ctx))
            x = L["ln2"](x + L["f2"](torch.nn.functional.gelu(L["f1"](x))))
        logits = self.cls(torch.tanh(self.pool(x[:, 0])))
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
        return type("Out", (), {"logits": logits, "loss": loss})


def timeit(fn, passes, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(passes):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=MODELS, required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--modes", default="infer,train")
    ap.add_argument("--onnx", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model, impl = build(a.model, a.seq)
    ids = torch.randint(1000, 30000, (a.batch, a.seq))
    mask = torch.ones(a.batch, a.seq, dtype=torch.long)
    labels = torch.randint(0, 2, (a.batch,))
    tokens = a.batch * a.seq
    peer = "torch-" + torch.__version__.split("+")[0]
    base = dict(model=a.model, threads=a.threads, batch=a.batch, seq=a.seq, impl=impl)
    if "infer" in a.modes:
        model.eval()

        def infer():
            with torch.no_grad():
                model(input_ids=ids, attention_mask=mask)
        t = timeit(infer, a.passes)
        print(json.dumps(dict(base, peer=peer, mode="infer", median_s=t, tok_s=tokens / t)))
    if "train" in a.modes:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

        def step():
            opt.zero_grad(set_to_none=False)
            out = model(input_ids=ids, attention_mask=mask, labels=labels)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        t = timeit(step, a.passes)
        print(json.dumps(dict(base, peer=peer, mode="train", median_s=t, tok_s=tokens / t)))
    if a.onnx:
        try:
            import onnxruntime as ort
        except ImportError:
            return
        import os
        import tempfile
        model.eval()
        path = os.path.join(tempfile.mkdtemp(), "bert.onnx")
        torch.onnx.export(model, (ids, mask), path, input_names=["input_ids", "attention_mask"],
                          output_names=["logits"], opset_version=17)
        so = ort.SessionOptions()
        so.intra_op_num_threads = a.threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        feed = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
        t = timeit(lambda: sess.run(None, feed), a.passes)
        print(json.dumps(dict(base, peer="onnxruntime-" + ort.__version__, mode="infer",
                              median_s=t, tok_s=tokens / t)))


if __name__ == "__main__":
    sys.exit(main())
