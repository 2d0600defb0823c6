#!/usr/bin/env python3
"""Generate the safetensors / config.json fixtures of the checkpoint tests.

Usage (from the top of the source tree, with transformers 4.40.2, torch and
safetensors installed, e.g. the venv /opt/hfvenv):

    /opt/hfvenv/bin/python tests/gen/make_checkpoint_cases.py \
        [--out tests/fixtures/checkpoint]

Never run by `make check`: the C tests (tests/model/t_safetensors.c,
t_hf_config.c) read only the committed output, which is:

  dtypes.safetensors      every dtype the reader converts, scalars, 0-sized
                          tensors, F16/BF16 special values; written by
                          safetensors.torch.save_file with {"format": "pt"}
  seqcls/                 tiny BertForSequenceClassification saved by
                          save_pretrained(max_shard_size=...) as two shards +
                          model.safetensors.index.json, config.json with
                          id2label names
  base/                   tiny BertModel (names without "bert."), plus the
                          int64 embeddings.position_ids buffer that older
                          transformers versions saved
  mlm_tf/                 tiny BertForMaskedLM with the old TF-converted
                          spelling: "bert." prefix and LayerNorm.gamma/beta
  configs/*.json          config.json files written by transformers:
                          bert_base (BertConfig() defaults), pruned heads,
                          regression, id2label names

Parameter values are exact in fp16/bf16/fp32 and follow a formula the C test
recomputes, so a tensor read under a wrong name or from a wrong offset fails:

    seed(c)   = sum of the bytes of the canonical name c  mod 101
    value[i]  = (((i * 37 + seed * 11) mod 101) - 50) / 64     (row-major i)

where the canonical name drops a leading "bert." and spells LayerNorm
parameters .weight/.bias.
"""

import argparse
import json
import os
import shutil

import safetensors.torch as st
import torch
import transformers
from transformers import (BertConfig, BertForMaskedLM,
                          BertForSequenceClassification, BertModel)

EXPECTED_TRANSFORMERS = "4.40.2"

TINY = dict(vocab_size=40, hidden_size=8, num_hidden_layers=2,
            num_attention_heads=2, intermediate_size=16,
            max_position_embeddings=16, type_vocab_size=2)


def canonical(name):
    if name.startswith("bert."):
        name = name[5:]
    if name.endswith("LayerNorm.gamma"):
        name = name[: -len("gamma")] + "weight"
    elif name.endswith("LayerNorm.beta"):
        name = name[: -len("beta")] + "bias"
    return name


def formula(name, shape):
    seed = sum(canonical(name).encode()) % 101
    n = 1
    for d in shape:
        n *= d
    i = torch.arange(n, dtype=torch.int64)
    v = (((i * 37 + seed * 11) % 101) - 50).to(torch.float32) / 64.0
    return v.reshape(shape)


def fill_by_formula(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(formula(name, tuple(p.shape)))


def make_dtypes(out):
    def f(name, shape, dtype):
        return formula(name, shape).to(dtype)

    f16_special = torch.tensor(
        [0.0, -0.0, 1.0, -2.0, 65504.0, -65504.0, float("inf"), float("-inf"),
         float("nan"), 2.0 ** -24, 2.0 ** -14, 2.0 ** -14 - 2.0 ** -24,
         1.0 / 3.0, 1e-8, 70000.0], dtype=torch.float32).to(torch.float16)
    bf16_special = torch.tensor(
        [0.0, -0.0, 1.0, float("inf"), float("-inf"), float("nan"),
         3.3895313892515355e38, 1.0 / 3.0, 2.0 ** -133], dtype=torch.float32
    ).to(torch.bfloat16)
    tensors = {
        "f32": f("f32", (2, 3), torch.float32),
        "f16": f("f16", (4, 5), torch.float16),
        "bf16": f("bf16", (3, 4), torch.bfloat16),
        "f64": f("f64", (2, 2), torch.float64),
        "f16_special": f16_special,
        "bf16_special": bf16_special,
        "i64": torch.tensor([[-(2 ** 62), 2 ** 62 + 1], [0, -1]], dtype=torch.int64),
        "i32": torch.tensor([-(2 ** 31), 2 ** 31 - 1, 7], dtype=torch.int32),
        "u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.5, dtype=torch.float32),
        "empty": torch.zeros((0, 4), dtype=torch.float32),
        "empty_f16": torch.zeros((3, 0), dtype=torch.float16),
    }
    st.save_file(tensors, os.path.join(out, "dtypes.safetensors"),
                 metadata={"format": "pt"})


def tiny_config(**extra):
    return BertConfig(**TINY, **extra)


def make_seqcls(out):
    d = os.path.join(out, "seqcls")
    shutil.rmtree(d, ignore_errors=True)
    cfg = tiny_config(num_labels=3, id2label={0: "neg", 1: "neu", 2: "pos"},
                      label2id={"neg": 0, "neu": 1, "pos": 2})
    model = BertForSequenceClassification(cfg)
    fill_by_formula(model)
    model.save_pretrained(d, safe_serialization=True, max_shard_size="5KB")
    shards = sorted(x for x in os.listdir(d) if x.endswith(".safetensors"))
    assert len(shards) >= 2, shards
    again = BertForSequenceClassification.from_pretrained(d)
    for name, p in again.named_parameters():
        assert torch.equal(p, formula(name, tuple(p.shape))), name
    return shards


def make_base(out):
    d = os.path.join(out, "base")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    model = BertModel(tiny_config())
    fill_by_formula(model)
    sd = {k: v.contiguous().clone() for k, v in model.state_dict().items()}
    # transformers >= 4.31 no longer saves this buffer; older files carry it
    sd["embeddings.position_ids"] = torch.arange(16, dtype=torch.int64)[None, :]
    st.save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    model.config.to_json_file(os.path.join(d, "config.json"))


def make_mlm_tf(out):
    d = os.path.join(out, "mlm_tf")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    model = BertForMaskedLM(tiny_config())
    fill_by_formula(model)
    sd = {}
    for k, v in model.state_dict().items():
        if k == "cls.predictions.decoder.weight" or k == "cls.predictions.decoder.bias":
            continue  # tied to word embeddings / cls.predictions.bias
        k = k.replace("LayerNorm.weight", "LayerNorm.gamma")
        k = k.replace("LayerNorm.bias", "LayerNorm.beta")
        sd[k] = v.contiguous().clone()
    st.save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})


def make_configs(out):
    d = os.path.join(out, "configs")
    os.makedirs(d, exist_ok=True)
    BertConfig().to_json_file(os.path.join(d, "bert_base.json"))
    # head-pruned: transformers records the original head indices per layer
    m = BertForSequenceClassification(
        BertConfig(**{**TINY, "num_hidden_layers": 3, "num_attention_heads": 4}))
    m.prune_heads({0: [1, 3], 2: [0]})
    m.config.to_json_file(os.path.join(d, "pruned.json"))
    BertConfig(**TINY, num_labels=1).to_json_file(os.path.join(d, "regression.json"))
    BertConfig(**TINY, id2label={0: "contradiction", 1: "entailment", 2: "neutral"},
               label2id={"contradiction": 0, "entailment": 1, "neutral": 2},
               classifier_dropout=0.25, pad_token_id=3,
               problem_type="single_label_classification"
               ).to_json_file(os.path.join(d, "labels.json"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/checkpoint")
    args = ap.parse_args()
    if transformers.__version__ != EXPECTED_TRANSFORMERS:
        print("warning: transformers %s, fixtures were made with %s"
              % (transformers.__version__, EXPECTED_TRANSFORMERS))
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    make_dtypes(args.out)
    shards = make_seqcls(args.out)
    make_base(args.out)
    make_mlm_tf(args.out)
    make_configs(args.out)
    files = []
    for root, _, names in os.walk(args.out):
        for n in names:
            files.append(os.path.relpath(os.path.join(root, n), "."))
    total = sum(os.path.getsize(f) for f in files)
    print("seqcls shards:", shards)
    print("%d files, %d bytes" % (len(files), total))
    for f in sorted(files):
        print("  %-60s %6d" % (f, os.path.getsize(f)))


if __name__ == "__main__":
    main()
