"""hf_load.py: loads a student exported by kd_hpc with transformers and
compares its logits with kd_hpc's own (helper of hf_load.sh; runs only in
a Python environment that has transformers and torch).

    python hf_load.py DIR IDS LOGITS TEXT_A [TEXT_B]

DIR is the export directory (config.json, model.safetensors, vocab.txt),
IDS and LOGITS the space-separated token ids and logits kd_hpc printed for
the same input. Prints TAP lines (without a plan) and exits 0 when every
point holds. The metric is the project's golden one: max |got - want| /
max(|want|, 1e-3 max |want|) <= 1e-4.
"""
import sys

import torch
from transformers import BertForSequenceClassification, BertTokenizer

n = 0
fails = 0


def point(cond, desc):
    global n, fails
    n += 1
    if not cond:
        fails += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (n, desc))


def main():
    d, ids_txt, logits_txt, text_a = sys.argv[1:5]
    text_b = sys.argv[5] if len(sys.argv) > 5 else None
    want_ids = [int(x) for x in ids_txt.split()]
    want = [float(x) for x in logits_txt.split()]

    tok = BertTokenizer.from_pretrained(d)
    model = BertForSequenceClassification.from_pretrained(d)
    model.eval()
    point(True, "transformers loads the directory (BertForSequenceClassification, "
          "%d labels, %d layers)" % (model.config.num_labels, model.config.num_hidden_layers))

    enc = tok(text_a, text_b, return_tensors="pt")
    got_ids = enc["input_ids"][0].tolist()
    point(got_ids == want_ids, "BertTokenizer gives kd_hpc's ids (%d tokens)" % len(got_ids))
    if got_ids != want_ids:
        print("#   transformers: %s" % got_ids)
        print("#   kd_hpc:       %s" % want_ids)

    with torch.no_grad():
        got = model(**enc).logits[0].double().tolist()
    floor = 1e-3 * max(abs(w) for w in want)
    err = max(abs(g - w) / max(abs(w), floor) for g, w in zip(got, want))
    point(len(got) == len(want) and err <= 1e-4,
          "logits agree: transformers %s, kd_hpc %s, max rel err %.2g"
          % (["%.6g" % g for g in got], ["%.6g" % w for w in want], err))
    return 0 if fails == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
