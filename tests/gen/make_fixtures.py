#!/usr/bin/env python3
"""Generate the PyTorch / Hugging Face reference fixtures for the BERT model.

Usage (from the top of the source tree, with transformers 4.40.2, torch 1.13
and safetensors installed, e.g. the venv /opt/hfvenv):

    /opt/hfvenv/bin/python tests/gen/make_fixtures.py [--out tests/fixtures/models]

It writes, for every case below, a directory tests/fixtures/models/<case>/ with

    config.json          written by transformers' save_pretrained
    model.safetensors    written by transformers' save_pretrained
                         (safe_serialization=True); the parameters the golden
                         values were computed from (for train20: the initial
                         parameters, before any update)
    vocab.txt            a tiny synthetic WordPiece vocabulary (VOCAB below)
    golden.safetensors   inputs, outputs, losses and gradients of the real
                         transformers classes (names: tests/fixtures/models/README.md)

and tests/fixtures/models/fixtures.mk (EXTRA_DIST of every fixture file).

Cases: cls_single, cls_pair, regression, pruned, mlm, train20.

Everything is seeded (torch.manual_seed per case plus a per-case
torch.Generator for data and parameter perturbation), so a re-run writes the
same values up to the last-bit rounding of the machine's BLAS. The script is
never run by `make check`; the C tests read only the committed files. After
writing each case it reloads the directory with transformers (or, for the
FFN-pruned case which transformers cannot load, rebuilds the module shapes by
hand and loads the state dict strictly) and checks that the logits agree.
"""

import argparse
import json
import math
import os
import sys
import warnings

import safetensors.torch as st
import torch
import transformers
from torch import nn
from transformers import (BertConfig, BertForMaskedLM,
                          BertForSequenceClassification, BertTokenizer)

EXPECTED_TRANSFORMERS = "4.40.2"

# ---------------------------------------------------------------------------
# Vocabulary: ids 0..8 are special, the rest are filler words and suffixes.
SPECIALS = ["[PAD]", "[unused0]", "[unused1]", "[unused2]", "[unused3]",
            "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
FILLER = [
    ".", ",", "!", "?", "'", "-",
    "the", "a", "an", "and", "or", "not", "is", "was", "it", "this", "that",
    "of", "to", "in", "on", "with", "for", "very", "so",
    "good", "bad", "great", "awful", "fine", "movie", "film", "plot",
    "actor", "story", "scene", "music", "end", "time", "love", "hate",
    "like", "funny", "dull", "long", "short", "slow", "fast", "cat", "dog",
    "run", "play", "##s", "##ed", "##ing", "##ly", "##er", "##est", "##y",
    "##a", "##e", "##i", "##o", "##u", "##n", "##t", "##r",
]
VOCAB = SPECIALS + FILLER
V = len(VOCAB)
PAD, UNK, CLS, SEP, MASK = 0, 5, 6, 7, 8
FIRST_WORD = len(SPECIALS)  # ids >= this are ordinary tokens
assert VOCAB[PAD] == "[PAD]" and VOCAB[UNK] == "[UNK]" and VOCAB[CLS] == "[CLS]"
assert VOCAB[SEP] == "[SEP]" and VOCAB[MASK] == "[MASK]"
assert len(set(VOCAB)) == V

# ---------------------------------------------------------------------------
# train20 optimisation constants (documented in the README; the C side
# replicates them exactly)
TRAIN_STEPS = 20
TRAIN_WARMUP = 4
TRAIN_LR = 1e-3
TRAIN_BETAS = (0.9, 0.999)
TRAIN_EPS = 1e-8
TRAIN_WD = 0.01
TRAIN_CLIP = 1.0


def train_lr(t):
    """Learning rate of the update made at 0-based step t (t = 0..19)."""
    return TRAIN_LR * min((t + 1) / TRAIN_WARMUP,
                          (TRAIN_STEPS - t) / (TRAIN_STEPS - TRAIN_WARMUP))


def no_decay(name):
    return name.endswith(".bias") or "LayerNorm" in name


# ---------------------------------------------------------------------------
# helpers


def base_config(**kw):
    cfg = dict(vocab_size=V, type_vocab_size=2, pad_token_id=PAD,
               hidden_act="gelu", initializer_range=0.2,
               layer_norm_eps=1e-12, hidden_dropout_prob=0.1,
               attention_probs_dropout_prob=0.1)
    cfg.update(kw)
    return BertConfig(**cfg)


def perturb_parameters(model, gen):
    """Make every parameter non-trivial: transformers initialises biases to
    0, LayerNorm to (1, 0) and the [PAD] embedding row to 0, which would hide
    mistakes in the C code. Weights keep their N(0, initializer_range)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.numel() == 0:
                continue
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        emb = model.bert.embeddings.word_embeddings.weight
        std = model.config.initializer_range
        emb[PAD].copy_(std * torch.randn(emb.shape[1], generator=gen))


def randint(gen, lo, hi, shape):
    return torch.randint(lo, hi, shape, generator=gen, dtype=torch.long)


def make_single(gen, T, lengths):
    """[CLS] w.. [SEP] [PAD].. ; lengths include CLS and SEP."""
    B = len(lengths)
    ids = torch.full((B, T), PAD, dtype=torch.long)
    tt = torch.zeros((B, T), dtype=torch.long)
    am = torch.zeros((B, T), dtype=torch.long)
    for b, n in enumerate(lengths):
        assert 2 <= n <= T
        ids[b, 0] = CLS
        ids[b, 1:n - 1] = randint(gen, FIRST_WORD, V, (n - 2,))
        ids[b, n - 1] = SEP
        am[b, :n] = 1
    # one [UNK] to make sure special ids appear inside text too
    ids[0, 1] = UNK
    return ids, tt, am


def make_pair(gen, T, pairs):
    """[CLS] a.. [SEP] b.. [SEP] [PAD].. ; token type 0 up to and including
    the first [SEP], 1 for b and the final [SEP], 0 on padding."""
    B = len(pairs)
    ids = torch.full((B, T), PAD, dtype=torch.long)
    tt = torch.zeros((B, T), dtype=torch.long)
    am = torch.zeros((B, T), dtype=torch.long)
    for b, (la, lb) in enumerate(pairs):
        n = la + lb + 3
        assert n <= T
        ids[b, 0] = CLS
        ids[b, 1:1 + la] = randint(gen, FIRST_WORD, V, (la,))
        ids[b, 1 + la] = SEP
        ids[b, 2 + la:2 + la + lb] = randint(gen, FIRST_WORD, V, (lb,))
        ids[b, n - 1] = SEP
        tt[b, 2 + la:n] = 1
        am[b, :n] = 1
    return ids, tt, am


def write_vocab(path):
    with open(path, "w", encoding="utf-8") as f:
        for tok in VOCAB:
            f.write(tok + "\n")


def check_vocab(dirname):
    tok = BertTokenizer(os.path.join(dirname, "vocab.txt"), do_lower_case=True)
    assert tok.pad_token_id == PAD and tok.unk_token_id == UNK
    assert tok.cls_token_id == CLS and tok.sep_token_id == SEP
    assert tok.mask_token_id == MASK
    enc = tok("The movie was funny", "the cats played")
    assert enc["input_ids"][0] == CLS and enc["input_ids"][-1] == SEP


def summarize(case, tensors):
    print(f"  {case}: {len(tensors)} golden tensors")
    for name in sorted(tensors):
        t = tensors[name]
        if t.is_floating_point() and t.numel() > 0:
            m = t.abs().max().item()
            print(f"    {name:60s} {str(list(t.shape)):16s} max|x|={m:.4g}")
        else:
            print(f"    {name:60s} {str(list(t.shape)):16s} {t.dtype}")


def capture_forward(model, want_pooled):
    """Install hooks that retain the embedding output (for its gradient) and
    the pooler output. Returns the dict they fill and the hook handles."""
    got = {}

    def emb_hook(_m, _inp, out):
        out.retain_grad()
        got["embedding_output"] = out

    def pool_hook(_m, _inp, out):
        got["pooled"] = out

    hs = [model.bert.embeddings.register_forward_hook(emb_hook)]
    if want_pooled:
        hs.append(model.bert.pooler.register_forward_hook(pool_hook))
    return got, hs


def run_case(model, inputs, labels, mlm_positions=None):
    """One forward + backward in eval mode (dropout off). Returns the golden
    tensor dict (inputs, outputs, gradients)."""
    model.eval()
    model.zero_grad(set_to_none=True)
    is_mlm = isinstance(model, BertForMaskedLM)
    got, hooks = capture_forward(model, want_pooled=not is_mlm)
    out = model(**inputs, labels=labels, output_hidden_states=True,
                output_attentions=True, return_dict=True)
    for h in hooks:
        h.remove()
    for h in out.hidden_states:
        h.retain_grad()
    out.logits.retain_grad()
    out.loss.backward()

    g = {}
    for k in ("input_ids", "token_type_ids", "attention_mask"):
        g[k] = inputs[k].clone()
    g["labels"] = labels.clone()
    B = inputs["input_ids"].shape[0]
    if is_mlm:
        g["mlm_positions"] = mlm_positions.clone()
        idx = mlm_positions.unsqueeze(-1).expand(-1, -1, out.logits.shape[-1])
        g["mlm_logits"] = torch.gather(out.logits.detach(), 1, idx)
        g["grad.mlm_logits"] = torch.gather(out.logits.grad, 1, idx)
        # every other position has label -100 and hence zero gradient
        mask = torch.ones_like(out.logits.grad, dtype=torch.bool)
        mask.scatter_(1, idx, False)
        assert out.logits.grad[mask].abs().max().item() == 0.0
    else:
        g["logits"] = out.logits.detach().clone()
        g["grad.logits"] = out.logits.grad.clone()
        g["pooled"] = got["pooled"].detach().clone()
    g["loss"] = out.loss.detach().clone().reshape(())
    for i, h in enumerate(out.hidden_states):
        g[f"hidden_states.{i}"] = h.detach().clone()
        g[f"grad.hidden_states.{i}"] = h.grad.clone()
    for l, a in enumerate(out.attentions):
        g[f"attentions.{l}"] = a.detach().clone()
    eo = got["embedding_output"]
    assert eo is out.hidden_states[0]
    g["grad.embedding_output"] = eo.grad.clone()
    for name, p in model.named_parameters():
        gr = p.grad if p.grad is not None else torch.zeros_like(p)
        g[f"grad.{name}"] = gr.detach().clone()
    assert B == g["input_ids"].shape[0]
    return g, out


def save_model_dir(model, dirname, extra_config=None):
    os.makedirs(dirname, exist_ok=True)
    if extra_config:
        for k, v in extra_config.items():
            setattr(model.config, k, v)
    model.save_pretrained(dirname, safe_serialization=True)
    write_vocab(os.path.join(dirname, "vocab.txt"))
    check_vocab(dirname)


def save_golden(dirname, case, g, model_cls, extra_meta=None):
    tensors = {k: v.contiguous() for k, v in g.items()}
    for k, v in tensors.items():
        assert v.dtype in (torch.float32, torch.int64), (k, v.dtype)
    meta = {"case": case, "model_class": model_cls,
            "generator": "tests/gen/make_fixtures.py",
            "transformers": transformers.__version__,
            "torch": torch.__version__}
    if extra_meta:
        meta.update(extra_meta)
    # one metadata key: safetensors writes a metadata map in hash order, so
    # several keys would make the file bytes differ from run to run
    st.save_file(tensors, os.path.join(dirname, "golden.safetensors"),
                 metadata={"kd_hpc_fixture": json.dumps(meta, sort_keys=True)})
    summarize(case, tensors)


def check_names(dirname, g):
    """model.safetensors and the grad.* entries must name the same tensors."""
    saved = st.load_file(os.path.join(dirname, "model.safetensors"))
    gnames = {k[len("grad."):] for k in g
              if k.startswith("grad.") and not k.startswith("grad.hidden_states.")
              and k not in ("grad.embedding_output", "grad.logits",
                            "grad.mlm_logits")}
    if set(saved) != gnames:
        print("    model.safetensors only:", sorted(set(saved) - gnames))
        print("    grads only:", sorted(gnames - set(saved)))
        raise SystemExit("name mismatch")
    return saved


def reload_check(cls, dirname, inputs, ref_logits):
    model, info = cls.from_pretrained(dirname, output_loading_info=True)
    bad = {k: v for k, v in info.items() if v}
    assert not bad, bad
    model.eval()
    with torch.no_grad():
        logits = model(**inputs).logits
    d = (logits - ref_logits).abs().max().item()
    print(f"    reload {cls.__name__}: max|logits - golden| = {d:.3g}")
    assert d <= 1e-6, d


# ---------------------------------------------------------------------------
# cases


def case_cls_single(out):
    torch.manual_seed(1001)
    gen = torch.Generator().manual_seed(2001)
    cfg = base_config(hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=4, intermediate_size=64,
                      max_position_embeddings=16, num_labels=3,
                      problem_type="single_label_classification")
    model = BertForSequenceClassification(cfg)
    perturb_parameters(model, gen)
    ids, tt, am = make_single(gen, 9, [9, 6, 4])
    inputs = dict(input_ids=ids, token_type_ids=tt, attention_mask=am)
    labels = torch.tensor([2, 0, 1])
    g, o = run_case(model, inputs, labels)
    d = os.path.join(out, "cls_single")
    save_model_dir(model, d)
    check_names(d, g)
    save_golden(d, "cls_single", g, "BertForSequenceClassification")
    reload_check(BertForSequenceClassification, d, inputs, g["logits"])


def case_cls_pair(out):
    torch.manual_seed(1002)
    gen = torch.Generator().manual_seed(2002)
    cfg = base_config(hidden_size=24, num_hidden_layers=3,
                      num_attention_heads=2, intermediate_size=40,
                      max_position_embeddings=12, num_labels=3,
                      layer_norm_eps=1e-6, classifier_dropout=0.2,
                      problem_type="single_label_classification")
    model = BertForSequenceClassification(cfg)
    perturb_parameters(model, gen)
    ids, tt, am = make_pair(gen, 10, [(3, 4), (2, 2), (4, 1)])
    inputs = dict(input_ids=ids, token_type_ids=tt, attention_mask=am)
    labels = torch.tensor([1, 2, 0])
    g, o = run_case(model, inputs, labels)
    d = os.path.join(out, "cls_pair")
    save_model_dir(model, d)
    check_names(d, g)
    save_golden(d, "cls_pair", g, "BertForSequenceClassification")
    reload_check(BertForSequenceClassification, d, inputs, g["logits"])


def case_regression(out):
    torch.manual_seed(1003)
    gen = torch.Generator().manual_seed(2003)
    cfg = base_config(hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=8, intermediate_size=48,
                      max_position_embeddings=16, num_labels=1,
                      problem_type="regression")
    model = BertForSequenceClassification(cfg)
    perturb_parameters(model, gen)
    ids, tt, am = make_pair(gen, 8, [(2, 3), (1, 1), (3, 1)])
    inputs = dict(input_ids=ids, token_type_ids=tt, attention_mask=am)
    labels = torch.tensor([3.8, 0.4, 2.25], dtype=torch.float32)
    g, o = run_case(model, inputs, labels)
    # transformers: MSELoss()(logits.squeeze(), labels.squeeze())
    ref = ((g["logits"][:, 0] - labels) ** 2).mean()
    assert abs(ref.item() - g["loss"].item()) < 1e-6
    d = os.path.join(out, "regression")
    save_model_dir(model, d)
    check_names(d, g)
    save_golden(d, "regression", g, "BertForSequenceClassification")
    reload_check(BertForSequenceClassification, d, inputs, g["logits"])


PRUNE_HEADS = {0: [1, 3], 1: [0, 1, 2, 3]}
PRUNE_FFN = [24, 40, 0]  # FFN width kept per layer (of intermediate_size 64)


def slice_ffn(layer, keep):
    """Replace the layer's FFN by the sub-network of the kept neurons."""
    old_in, old_out = layer.intermediate.dense, layer.output.dense
    C = old_in.in_features
    new_in = nn.Linear(C, len(keep))
    new_out = nn.Linear(len(keep), C)
    with torch.no_grad():
        new_in.weight.copy_(old_in.weight[keep])
        new_in.bias.copy_(old_in.bias[keep])
        new_out.weight.copy_(old_out.weight[:, keep])
        new_out.bias.copy_(old_out.bias)
    layer.intermediate.dense = new_in
    layer.output.dense = new_out


def empty_ffn(layer, width):
    C = layer.intermediate.dense.in_features
    layer.intermediate.dense = nn.Linear(C, width)
    layer.output.dense = nn.Linear(width, C)


def case_pruned(out):
    torch.manual_seed(1004)
    gen = torch.Generator().manual_seed(2004)
    cfg = base_config(hidden_size=32, num_hidden_layers=3,
                      num_attention_heads=4, intermediate_size=64,
                      max_position_embeddings=16, num_labels=3,
                      problem_type="single_label_classification")
    model = BertForSequenceClassification(cfg)
    perturb_parameters(model, gen)
    with warnings.catch_warnings():
        # nn.Linear with zero outputs warns that its init is a no-op
        warnings.simplefilter("ignore", UserWarning)
        model.prune_heads(PRUNE_HEADS)
    F = cfg.intermediate_size
    for l, w in enumerate(PRUNE_FFN):
        if w != F:
            keep = torch.sort(torch.randperm(F, generator=gen)[:w]).values
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                slice_ffn(model.bert.encoder.layer[l], keep)
    ids, tt, am = make_single(gen, 8, [8, 5, 3])
    inputs = dict(input_ids=ids, token_type_ids=tt, attention_mask=am)
    labels = torch.tensor([0, 2, 1])
    g, o = run_case(model, inputs, labels)
    d = os.path.join(out, "pruned")
    save_model_dir(model, d,
                   extra_config={"kd_hpc_intermediate_sizes": list(PRUNE_FFN)})
    saved = check_names(d, g)
    with open(os.path.join(d, "config.json")) as f:
        cj = json.load(f)
    print("    config.json pruned_heads:", cj["pruned_heads"],
          "kd_hpc_intermediate_sizes:", cj["kd_hpc_intermediate_sizes"])
    save_golden(d, "pruned", g, "BertForSequenceClassification")

    # transformers re-applies pruned_heads on load but knows nothing of the
    # FFN widths, so from_pretrained must fail; rebuild the shapes by hand.
    try:
        BertForSequenceClassification.from_pretrained(d)
        raise SystemExit("pruned: from_pretrained unexpectedly succeeded")
    except RuntimeError as e:
        print("    from_pretrained refuses the FFN-pruned checkpoint (expected):",
              str(e).splitlines()[0][:80])
    cfg2 = BertConfig.from_pretrained(d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        m2 = BertForSequenceClassification(cfg2)  # post_init re-prunes heads
        for l, w in enumerate(cfg2.kd_hpc_intermediate_sizes):
            empty_ffn(m2.bert.encoder.layer[l], w)
    m2.load_state_dict(saved, strict=True)
    m2.eval()
    with torch.no_grad():
        logits = m2(**inputs).logits
    dd = (logits - g["logits"]).abs().max().item()
    print(f"    rebuilt pruned model: max|logits - golden| = {dd:.3g}")
    assert dd <= 1e-6


def case_mlm(out):
    torch.manual_seed(1005)
    gen = torch.Generator().manual_seed(2005)
    cfg = base_config(hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=4, intermediate_size=64,
                      max_position_embeddings=16)
    model = BertForMaskedLM(cfg)
    assert model.cls.predictions.decoder.weight is \
        model.bert.embeddings.word_embeddings.weight
    assert model.cls.predictions.decoder.bias is model.cls.predictions.bias
    perturb_parameters(model, gen)
    T, P = 10, 2
    ids, tt, am = make_pair(gen, T, [(3, 4), (4, 1), (2, 1)])
    # positions to predict: ordinary tokens only, ascending per row
    pos = torch.tensor([[2, 6], [1, 3], [1, 4]])
    labels = torch.full((3, T), -100, dtype=torch.long)
    for b in range(3):
        for j in range(P):
            p = pos[b, j].item()
            assert ids[b, p] >= FIRST_WORD and am[b, p] == 1
            labels[b, p] = ids[b, p]
    # BERT-style corruption: mostly [MASK], one kept, one replaced
    for b in range(3):
        for j in range(P):
            ids[b, pos[b, j]] = MASK
    ids[1, pos[1, 1]] = labels[1, pos[1, 1]]
    ids[2, pos[2, 0]] = FIRST_WORD + 7
    inputs = dict(input_ids=ids, token_type_ids=tt, attention_mask=am)
    g, o = run_case(model, inputs, labels, mlm_positions=pos)
    # loss: mean cross entropy over the B*P predicted positions
    lp = torch.log_softmax(g["mlm_logits"], -1)
    tgt = torch.gather(labels, 1, pos)
    ref = -torch.gather(lp, 2, tgt.unsqueeze(-1)).mean()
    assert abs(ref.item() - g["loss"].item()) < 1e-5
    d = os.path.join(out, "mlm")
    save_model_dir(model, d)
    check_names(d, g)
    save_golden(d, "mlm", g, "BertForMaskedLM")
    # compare gathered logits after reload
    m2, info = BertForMaskedLM.from_pretrained(d, output_loading_info=True)
    assert not any(info.values()), info
    m2.eval()
    with torch.no_grad():
        full = m2(**inputs).logits
    idx = pos.unsqueeze(-1).expand(-1, -1, V)
    dd = (torch.gather(full, 1, idx) - g["mlm_logits"]).abs().max().item()
    print(f"    reload BertForMaskedLM: max|mlm_logits - golden| = {dd:.3g}")
    assert dd <= 1e-6
    assert m2.cls.predictions.decoder.weight is \
        m2.bert.embeddings.word_embeddings.weight


def case_train20(out):
    torch.manual_seed(1006)
    gen = torch.Generator().manual_seed(2006)
    cfg = base_config(hidden_size=16, num_hidden_layers=2,
                      num_attention_heads=2, intermediate_size=32,
                      max_position_embeddings=16, num_labels=3,
                      hidden_dropout_prob=0.0,
                      attention_probs_dropout_prob=0.0,
                      problem_type="single_label_classification")
    model = BertForSequenceClassification(cfg)
    perturb_parameters(model, gen)
    d = os.path.join(out, "train20")
    save_model_dir(model, d)  # initial parameters

    S, B, T = TRAIN_STEPS, 4, 8
    all_ids = torch.zeros((S, B, T), dtype=torch.long)
    all_tt = torch.zeros_like(all_ids)
    all_am = torch.zeros_like(all_ids)
    all_lab = torch.zeros((S, B), dtype=torch.long)
    for s in range(S):
        pairs = []
        for _ in range(B):
            la = int(torch.randint(1, 4, (1,), generator=gen))
            lb = int(torch.randint(0, T - 3 - la + 1, (1,), generator=gen))
            pairs.append((la, lb))
        ids, tt, am = make_pair(gen, T, pairs)
        ids[0, 1] = int(torch.randint(FIRST_WORD, V, (1,), generator=gen))
        all_ids[s], all_tt[s], all_am[s] = ids, tt, am
        # a learnable rule so the loss visibly falls
        all_lab[s] = ids[:, 1] % 3

    named = list(model.named_parameters())
    decay = [p for n, p in named if not no_decay(n)]
    nodecay = [p for n, p in named if no_decay(n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": TRAIN_WD},
         {"params": nodecay, "weight_decay": 0.0}],
        lr=TRAIN_LR, betas=TRAIN_BETAS, eps=TRAIN_EPS)

    model.train()  # dropout probabilities are 0 in the config
    losses, norms, lrs = [], [], []
    g = {}
    for s in range(S):
        lr_s = train_lr(s)
        for grp in opt.param_groups:
            grp["lr"] = lr_s
        opt.zero_grad(set_to_none=True)
        inputs = dict(input_ids=all_ids[s], token_type_ids=all_tt[s],
                      attention_mask=all_am[s])
        loss = model(**inputs, labels=all_lab[s]).loss
        loss.backward()
        if s == 0:
            for n, p in named:
                g[f"grad.{n}"] = p.grad.detach().clone()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN_CLIP)
        opt.step()
        losses.append(loss.item())
        norms.append(norm.item())
        lrs.append(lr_s)
        if s == 0:
            for n, p in named:
                g[f"after1.{n}"] = p.detach().clone()
        print(f"    step {s:2d} lr={lr_s:.6g} loss={loss.item():.6f} "
              f"grad_norm={norm.item():.4f}")

    g["steps.input_ids"] = all_ids
    g["steps.token_type_ids"] = all_tt
    g["steps.attention_mask"] = all_am
    g["steps.labels"] = all_lab
    g["steps.loss"] = torch.tensor(losses, dtype=torch.float32)
    g["steps.grad_norm"] = torch.tensor(norms, dtype=torch.float32)
    g["steps.lr"] = torch.tensor(lrs, dtype=torch.float32)
    for n, p in named:
        g[f"final.{n}"] = p.detach().clone()
    saved = st.load_file(os.path.join(d, "model.safetensors"))
    assert set(saved) == {n for n, _ in named}
    save_golden(d, "train20", g, "BertForSequenceClassification", extra_meta={
        "optimizer": "torch.optim.AdamW", "lr": repr(TRAIN_LR),
        "betas": repr(TRAIN_BETAS), "eps": repr(TRAIN_EPS),
        "weight_decay": repr(TRAIN_WD), "clip_grad_norm": repr(TRAIN_CLIP),
        "schedule": "lr_t = lr * min((t+1)/4, (20-t)/16), t = 0..19",
        "no_decay": "name ends with '.bias' or contains 'LayerNorm'"})
    replay_train20(d, g)


def replay_train20(d, g):
    """Re-run the trajectory from model.safetensors with a hand-written
    AdamW / schedule / clipping that follows the README formulas literally,
    and check it lands on the torch.optim trajectory."""
    model = BertForSequenceClassification.from_pretrained(d)
    model.train()
    named = list(model.named_parameters())
    m = {n: torch.zeros_like(p) for n, p in named}
    v = {n: torch.zeros_like(p) for n, p in named}
    b1, b2 = TRAIN_BETAS
    worst = {}
    for t in range(TRAIN_STEPS):
        model.zero_grad(set_to_none=True)
        loss = model(input_ids=g["steps.input_ids"][t],
                     token_type_ids=g["steps.token_type_ids"][t],
                     attention_mask=g["steps.attention_mask"][t],
                     labels=g["steps.labels"][t]).loss
        loss.backward()
        assert abs(loss.item() - g["steps.loss"][t].item()) < 1e-4
        norm = math.sqrt(sum(float((p.grad.double() ** 2).sum())
                             for _, p in named))
        assert abs(norm - g["steps.grad_norm"][t].item()) < 1e-4 * (1 + norm)
        coef = min(1.0, TRAIN_CLIP / (norm + 1e-6))
        lr = train_lr(t)
        k = t + 1  # AdamW's step counter after the increment
        bc1, bc2 = 1 - b1 ** k, 1 - b2 ** k
        with torch.no_grad():
            for n, p in named:
                gr = p.grad * coef
                wd = 0.0 if no_decay(n) else TRAIN_WD
                p.mul_(1 - lr * wd)
                m[n].mul_(b1).add_(gr, alpha=1 - b1)
                v[n].mul_(b2).addcmul_(gr, gr, value=1 - b2)
                denom = v[n].sqrt() / math.sqrt(bc2) + TRAIN_EPS
                p.add_(-(lr / bc1) * m[n] / denom)
    for n, p in named:
        worst[n] = (p.detach() - g[f"final.{n}"]).abs().max().item()
    key_bias = {n: e for n, e in worst.items() if n.endswith("self.key.bias")}
    other = max(e for n, e in worst.items() if n not in key_bias)
    print(f"    replay with the documented formulas: max|final diff| = "
          f"{other:.3g} (key biases: {max(key_bias.values()):.3g})")
    assert other < 1e-5


CASES = {
    "cls_single": case_cls_single,
    "cls_pair": case_cls_pair,
    "regression": case_regression,
    "pruned": case_pruned,
    "mlm": case_mlm,
    "train20": case_train20,
}


def write_mk(out, top):
    files = []
    for case in CASES:
        for f in sorted(os.listdir(os.path.join(out, case))):
            path = os.path.join(out, case, f)
            os.chmod(path, 0o644)
            files.append(os.path.relpath(path, top))
    files.append(os.path.relpath(os.path.join(out, "README.md"), top))
    files.append(os.path.relpath(os.path.abspath(__file__), top))
    with open(os.path.join(out, "fixtures.mk"), "w") as f:
        f.write("# Reference fixtures of the BERT model "
                "(generated by tests/gen/make_fixtures.py).\n")
        f.write("EXTRA_DIST += \\\n")
        f.write(" \\\n".join("\t" + x for x in files) + "\n")


def main():
    top = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(top, "tests", "fixtures",
                                                  "models"))
    ap.add_argument("cases", nargs="*", default=list(CASES))
    a = ap.parse_args()
    if transformers.__version__ != EXPECTED_TRANSFORMERS:
        print(f"warning: transformers {transformers.__version__}, fixtures "
              f"were made with {EXPECTED_TRANSFORMERS}", file=sys.stderr)
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    os.makedirs(a.out, exist_ok=True)
    for c in a.cases:
        print(f"case {c}")
        CASES[c](a.out)
    write_mk(os.path.abspath(a.out), top)
    total = 0
    for root, _dirs, fs in os.walk(a.out):
        for f in fs:
            total += os.path.getsize(os.path.join(root, f))
    print(f"total size of {a.out}: {total} bytes")


if __name__ == "__main__":
    main()
