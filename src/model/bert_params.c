/* bert_params.c: the size tables of a BERT model and the blocks they size
 * (model layer; no MPI, no kernels).
 *
 * Three layouts are computed here, each by ONE function that either
 * measures (no arena: returns the bytes) or binds (carves the arena in the
 * same order), so the `--dry-run` bound and the allocation cannot drift:
 *   - parameters (bert_param_table): HF-named tensors, shared by the
 *     gradient and Adam blocks;
 *   - activations (layout_acts): what the forward keeps for the backward;
 *   - activation gradients (layout_grad_acts): the backward's working set,
 *     sized by the widest layer and reused by every layer.
 * Everything is sized for the maximum batch (opts.B, opts.T, opts.P); a
 * smaller batch uses the front of each slot, densely with its own dims. */
#include "kd/model/bert.h"
#include "kd/core/log.h"
#include "kd/core/rng.h"
#include "kd/kernels/attention.h"
#include "kd/kernels/elementwise.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- size tables ------------------------------------------------------- */

void bert_table_free(struct bert_table *tab)
{
    free(tab->t);
    memset(tab, 0, sizeof *tab);
}

int bert_table_find(const struct bert_table *tab, const char *name)
{
    for (int i = 0; i < tab->n; i++)
        if (strcmp(tab->t[i].name, name) == 0)
            return i;
    return -1;
}

/* Floats per alignment unit of the arena (16 for 64-byte lines). */
#define ALIGN_FLOATS (ARENA_ALIGN / sizeof(float))

/* Appends a tensor. packed = 1 places it right after the previous one (the
 * K and V parts of a packed QKV), else on the next aligned offset. */
static void tab_add(struct bert_table *tab, const char *name, int ndim, int64_t d0, int64_t d1,
                    unsigned head, int packed)
{
    if (tab->n == tab->cap) {
        tab->cap = tab->cap ? 2 * tab->cap : 64;
        tab->t = kd_realloc(tab->t, (size_t)tab->cap * sizeof *tab->t);
    }
    struct bert_tensor *t = &tab->t[tab->n++];
    memset(t, 0, sizeof *t);
    KD_ASSERT(strlen(name) < BERT_NAME_MAX, "tensor name too long: %s", name);
    strcpy(t->name, name);
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->numel = ndim == 1 ? d0 : d0 * d1;
    t->head = head;
    /* AdamW convention: no decay on biases and LayerNorm parameters */
    size_t len = strlen(name);
    int is_bias = len >= 5 && strcmp(name + len - 5, ".bias") == 0;
    t->decay = !is_bias && strstr(name, "LayerNorm") == NULL;
    size_t start = packed ? tab->floats
                          : (tab->floats + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
    t->offset = start;
    tab->floats = start + (size_t)t->numel;
}

/* name = prefix + suffix, for the per-layer names */
static const char *cat(char *buf, const char *prefix, const char *suffix)
{
    int n = snprintf(buf, BERT_NAME_MAX, "%s%s", prefix, suffix);
    KD_ASSERT(n >= 0 && n < BERT_NAME_MAX, "tensor name too long: %s%s", prefix, suffix);
    return buf;
}

void bert_param_table(struct bert_table *tab, const struct bert_config *cfg, unsigned heads)
{
    bert_param_table_slice(tab, cfg, heads, 0, cfg->num_hidden_layers);
}

void bert_param_table_slice(struct bert_table *tab, const struct bert_config *cfg,
                            unsigned heads, int64_t begin, int64_t end)
{
    memset(tab, 0, sizeof *tab);
    if (heads & BERT_HEAD_CLASSIFIER)
        heads |= BERT_HEAD_POOLER;
    KD_ASSERT(0 <= begin && begin < end && end <= cfg->num_hidden_layers,
              "slice [%lld, %lld) of %lld layers", (long long)begin, (long long)end,
              (long long)cfg->num_hidden_layers);
    KD_ASSERT(heads == 0 || end == cfg->num_hidden_layers,
              "heads 0x%x on a slice ending at layer %lld of %lld", heads, (long long)end,
              (long long)cfg->num_hidden_layers);
    const int64_t C = cfg->hidden_size, V = cfg->vocab_size;
    const int64_t HS = C / cfg->num_attention_heads;
    if (begin == 0) {
        tab_add(tab, "embeddings.word_embeddings.weight", 2, V, C, 0, 0);
        tab_add(tab, "embeddings.position_embeddings.weight", 2, cfg->max_position_embeddings,
                C, 0, 0);
        tab_add(tab, "embeddings.token_type_embeddings.weight", 2, cfg->type_vocab_size, C, 0,
                0);
        tab_add(tab, "embeddings.LayerNorm.weight", 1, C, 0, 0, 0);
        tab_add(tab, "embeddings.LayerNorm.bias", 1, C, 0, 0, 0);
    } else if (heads & BERT_HEAD_MLM) {
        /* the tied decoder's copy (bert.h: slices); not a head tensor, so
         * checkpoints load it by its name like the first slice's */
        tab_add(tab, "embeddings.word_embeddings.weight", 2, V, C, 0, 0);
    }
    char pre[64], nm[BERT_NAME_MAX];
    for (int64_t l = begin; l < end; l++) {
        const int64_t CH = cfg->layer_heads[l] * HS, F = cfg->layer_intermediate[l];
        snprintf(pre, sizeof pre, "encoder.layer.%lld.", (long long)l);
        /* q, k, v back to back: the packed (3*CH, C) matrix and (3*CH) bias */
        tab_add(tab, cat(nm, pre, "attention.self.query.weight"), 2, CH, C, 0, 0);
        tab_add(tab, cat(nm, pre, "attention.self.key.weight"), 2, CH, C, 0, 1);
        tab_add(tab, cat(nm, pre, "attention.self.value.weight"), 2, CH, C, 0, 1);
        tab_add(tab, cat(nm, pre, "attention.self.query.bias"), 1, CH, 0, 0, 0);
        tab_add(tab, cat(nm, pre, "attention.self.key.bias"), 1, CH, 0, 0, 1);
        tab_add(tab, cat(nm, pre, "attention.self.value.bias"), 1, CH, 0, 0, 1);
        tab_add(tab, cat(nm, pre, "attention.output.dense.weight"), 2, C, CH, 0, 0);
        tab_add(tab, cat(nm, pre, "attention.output.dense.bias"), 1, C, 0, 0, 0);
        tab_add(tab, cat(nm, pre, "attention.output.LayerNorm.weight"), 1, C, 0, 0, 0);
        tab_add(tab, cat(nm, pre, "attention.output.LayerNorm.bias"), 1, C, 0, 0, 0);
        tab_add(tab, cat(nm, pre, "intermediate.dense.weight"), 2, F, C, 0, 0);
        tab_add(tab, cat(nm, pre, "intermediate.dense.bias"), 1, F, 0, 0, 0);
        tab_add(tab, cat(nm, pre, "output.dense.weight"), 2, C, F, 0, 0);
        tab_add(tab, cat(nm, pre, "output.dense.bias"), 1, C, 0, 0, 0);
        tab_add(tab, cat(nm, pre, "output.LayerNorm.weight"), 1, C, 0, 0, 0);
        tab_add(tab, cat(nm, pre, "output.LayerNorm.bias"), 1, C, 0, 0, 0);
    }
    if (heads & BERT_HEAD_POOLER) {
        tab_add(tab, "pooler.dense.weight", 2, C, C, BERT_HEAD_POOLER, 0);
        tab_add(tab, "pooler.dense.bias", 1, C, 0, BERT_HEAD_POOLER, 0);
    }
    if (heads & BERT_HEAD_CLASSIFIER) {
        tab_add(tab, "classifier.weight", 2, cfg->num_labels, C, BERT_HEAD_CLASSIFIER, 0);
        tab_add(tab, "classifier.bias", 1, cfg->num_labels, 0, BERT_HEAD_CLASSIFIER, 0);
    }
    if (heads & BERT_HEAD_MLM) {
        tab_add(tab, "cls.predictions.transform.dense.weight", 2, C, C, BERT_HEAD_MLM, 0);
        tab_add(tab, "cls.predictions.transform.dense.bias", 1, C, 0, BERT_HEAD_MLM, 0);
        tab_add(tab, "cls.predictions.transform.LayerNorm.weight", 1, C, 0, BERT_HEAD_MLM, 0);
        tab_add(tab, "cls.predictions.transform.LayerNorm.bias", 1, C, 0, BERT_HEAD_MLM, 0);
        tab_add(tab, "cls.predictions.bias", 1, V, 0, BERT_HEAD_MLM, 0);
    }
    /* the block ends on an alignment boundary too */
    tab->floats = (tab->floats + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
}

/* Pointer of a named tensor in base, or NULL when the table lacks it. */
static float *at(float *base, const struct bert_table *tab, const char *name)
{
    int i = bert_table_find(tab, name);
    return i < 0 || !base ? NULL : base + tab->t[i].offset;
}

void bert_params_bind(struct bert_params *p, float *base, const struct bert_table *tab,
                      int64_t L)
{
    struct bert_layer_params *layers = p->layer;
    memset(p, 0, sizeof *p);
    p->layer = layers;
    p->word_emb = at(base, tab, "embeddings.word_embeddings.weight");
    p->pos_emb = at(base, tab, "embeddings.position_embeddings.weight");
    p->type_emb = at(base, tab, "embeddings.token_type_embeddings.weight");
    p->emb_ln_w = at(base, tab, "embeddings.LayerNorm.weight");
    p->emb_ln_b = at(base, tab, "embeddings.LayerNorm.bias");
    char pre[64], nm[BERT_NAME_MAX];
    for (int64_t l = 0; l < L; l++) {
        struct bert_layer_params *q = &p->layer[l];
        snprintf(pre, sizeof pre, "encoder.layer.%lld.", (long long)l);
        q->qkv_w = at(base, tab, cat(nm, pre, "attention.self.query.weight"));
        q->qkv_b = at(base, tab, cat(nm, pre, "attention.self.query.bias"));
        q->attn_out_w = at(base, tab, cat(nm, pre, "attention.output.dense.weight"));
        q->attn_out_b = at(base, tab, cat(nm, pre, "attention.output.dense.bias"));
        q->attn_ln_w = at(base, tab, cat(nm, pre, "attention.output.LayerNorm.weight"));
        q->attn_ln_b = at(base, tab, cat(nm, pre, "attention.output.LayerNorm.bias"));
        q->ffn_in_w = at(base, tab, cat(nm, pre, "intermediate.dense.weight"));
        q->ffn_in_b = at(base, tab, cat(nm, pre, "intermediate.dense.bias"));
        q->ffn_out_w = at(base, tab, cat(nm, pre, "output.dense.weight"));
        q->ffn_out_b = at(base, tab, cat(nm, pre, "output.dense.bias"));
        q->ffn_ln_w = at(base, tab, cat(nm, pre, "output.LayerNorm.weight"));
        q->ffn_ln_b = at(base, tab, cat(nm, pre, "output.LayerNorm.bias"));
    }
    p->pool_w = at(base, tab, "pooler.dense.weight");
    p->pool_b = at(base, tab, "pooler.dense.bias");
    p->cls_w = at(base, tab, "classifier.weight");
    p->cls_b = at(base, tab, "classifier.bias");
    p->mlm_w = at(base, tab, "cls.predictions.transform.dense.weight");
    p->mlm_b = at(base, tab, "cls.predictions.transform.dense.bias");
    p->mlm_ln_w = at(base, tab, "cls.predictions.transform.LayerNorm.weight");
    p->mlm_ln_b = at(base, tab, "cls.predictions.transform.LayerNorm.bias");
    p->mlm_bias = at(base, tab, "cls.predictions.bias");
}

/* FNV-1a of the name: the RNG stream of a tensor's initial values. */
static uint64_t name_stream(const char *name)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        h = (h ^ *c) * 1099511628211ull;
    return h;
}

void bert_tensor_init(float *data, const struct bert_tensor *t, const struct bert_config *cfg,
                      uint64_t seed, float std)
{
    if (t->numel == 0)
        return;
    size_t len = strlen(t->name);
    int is_bias = len >= 5 && strcmp(t->name + len - 5, ".bias") == 0;
    if (strstr(t->name, "LayerNorm")) { /* nn.LayerNorm: weight 1, bias 0 */
        float v = is_bias ? 0.0f : 1.0f;
        for (int64_t i = 0; i < t->numel; i++)
            data[i] = v;
        return;
    }
    if (is_bias) { /* nn.Linear biases and cls.predictions.bias: 0 */
        memset(data, 0, (size_t)t->numel * sizeof(float));
        return;
    }
    /* nn.Linear / nn.Embedding weights: N(0, initializer_range) */
    rng_normal(data, 0.0f, std, seed, name_stream(t->name), 0, t->numel);
    /* nn.Embedding(padding_idx): the padding row starts at 0 */
    if (strcmp(t->name, "embeddings.word_embeddings.weight") == 0 && cfg->pad_token_id >= 0 &&
        cfg->pad_token_id < t->shape[0])
        memset(data + cfg->pad_token_id * t->shape[1], 0, (size_t)t->shape[1] * sizeof(float));
}

/* ---- activation layouts ------------------------------------------------ */

/* Measures (ar == NULL) or carves (ar != NULL) one slot of n floats; the
 * measured size follows arena_alloc's own rule. */
struct lay {
    struct arena *ar;
    size_t bytes;
};

static float *take(struct lay *ly, int64_t n)
{
    size_t b = (size_t)n * sizeof(float);
    if (ly->ar)
        return arena_alloc(ly->ar, b);
    ly->bytes = arena_round(ly->bytes) + b;
    return NULL;
}

/* The widest layer of the slice o holds: the shared working buffers are
 * sized by it. */
static int64_t max_heads(const struct bert_config *cfg, const struct bert_opts *o)
{
    int64_t m = 0;
    for (int64_t l = o->layer_begin; l < o->layer_end; l++)
        m = cfg->layer_heads[l] > m ? cfg->layer_heads[l] : m;
    return m;
}

static int64_t max_ffn(const struct bert_config *cfg, const struct bert_opts *o)
{
    int64_t m = 0;
    for (int64_t l = o->layer_begin; l < o->layer_end; l++)
        m = cfg->layer_intermediate[l] > m ? cfg->layer_intermediate[l] : m;
    return m;
}

/* The options with their defaults spelled out: a classifier brings the
 * pooler along (it reads the pooled output), layer_end 0 is L, act_sets 0
 * is 1. Every sizing below takes normalised options. */
static struct bert_opts norm_opts(const struct bert_config *cfg, const struct bert_opts *o)
{
    struct bert_opts n = *o;
    if (n.heads & BERT_HEAD_CLASSIFIER)
        n.heads |= BERT_HEAD_POOLER;
    if (n.layer_end <= 0)
        n.layer_end = cfg->num_hidden_layers;
    if (n.act_sets <= 0)
        n.act_sets = 1;
    return n;
}

/* One layer's caches, sized for NH heads and FFN width F. */
static void take_layer(struct lay *ly, struct bert_layer_acts *la, int64_t BT, int64_t C,
                       int64_t CH, int64_t F)
{
    la->qkv = take(ly, BT * 3 * CH); /* (B,T,3CH) input of the attention core, and of d W_qkv */
    la->ctx = take(ly, BT * CH);     /* (B,T,CH) input of attention.output.dense */
    la->attn_res = take(ly, BT * C); /* (B,T,C) LayerNorm input: LN backward needs it */
    la->attn_mean = take(ly, BT);    /* (B*T) LN caches */
    la->attn_rstd = take(ly, BT);
    la->attn_ln = take(ly, BT * C);  /* (B,T,C) y: FFN input and residual */
    la->ffn_pre = take(ly, BT * F);  /* (B,T,F) GELU input: gelu_backward needs it */
    la->ffn_act = take(ly, BT * F);  /* (B,T,F) input of output.dense, for d W_2 */
    la->ffn_res = take(ly, BT * C);  /* (B,T,C) LayerNorm input */
    la->ffn_mean = take(ly, BT);     /* (B*T) LN caches */
    la->ffn_rstd = take(ly, BT);
    /* the layer output is hidden[l+1], a tap slot of its own */
}

/* One activation set. With o->backward every layer keeps its own caches;
 * without, one set sized by the widest layer serves all layers (inference).
 * Hidden states and attention probabilities are per layer in both cases:
 * they are the taps. Only the slice's layers [begin, end) and hidden states
 * begin..end get slots (the others stay NULL); the embeddings' caches exist
 * when begin == 0. a->layer and a->hidden must have L and L+1 entries when
 * binding; with ly->ar == NULL a may be NULL. o is normalised. */
static void layout_acts(struct lay *ly_, struct bert_acts *a, const struct bert_config *cfg,
                        const struct bert_opts *o)
{
    struct lay ly = *ly_; /* a local copy keeps the code below as it reads */
    struct bert_layer_acts tmp;
    const int64_t B = o->B, T = o->T, BT = B * T, C = cfg->hidden_size;
    const int64_t lb = o->layer_begin, le = o->layer_end;
    const int64_t HS = C / cfg->num_attention_heads;
    const unsigned heads = o->heads;
    float *f;
    if (lb == 0) { /* embeddings: the LayerNorm input and its caches */
        f = take(&ly, BT * C); /* (B,T,C) word + position + type */
        if (a) a->emb_sum = f;
        f = take(&ly, BT); /* (B*T) */
        if (a) a->emb_mean = f;
        f = take(&ly, BT); /* (B*T) */
        if (a) a->emb_rstd = f;
    }
    for (int64_t l = lb; l <= le; l++) {
        f = take(&ly, BT * C); /* h_l (B,T,C) */
        if (a) a->hidden[l] = f;
    }
    for (int64_t l = lb; l < le; l++) {
        f = take(&ly, B * cfg->layer_heads[l] * T * T); /* probs (B,NH,T,T) */
        if (a) a->layer[l].probs = f;
    }
    if (o->backward) {
        for (int64_t l = lb; l < le; l++) {
            take_layer(&ly, &tmp, BT, C, cfg->layer_heads[l] * HS, cfg->layer_intermediate[l]);
            if (a) {
                tmp.probs = a->layer[l].probs;
                a->layer[l] = tmp;
            }
        }
    } else {
        take_layer(&ly, &tmp, BT, C, max_heads(cfg, o) * HS, max_ffn(cfg, o));
        for (int64_t l = lb; a && l < le; l++) {
            tmp.probs = a->layer[l].probs;
            a->layer[l] = tmp;
        }
    }
    /* the attention kernel's workspace (2T^2 + T): dropout in the forward,
     * dP / replayed A in the backward; one for all layers */
    f = take(&ly, attention_scratch_floats(T));
    if (a) a->attn_scratch = f;
    /* heads: small except the MLM logits (B,P,V) */
    if (heads & BERT_HEAD_POOLER) {
        float *cls_in = take(&ly, B * C), *pooled = take(&ly, B * C); /* (B,C) each */
        if (a) a->cls_in = cls_in, a->pooled = pooled;
    }
    if (heads & BERT_HEAD_CLASSIFIER) { /* (B,C) dropout(pooled), (B,K) logits */
        float *drop = take(&ly, B * C), *logits = take(&ly, B * cfg->num_labels);
        if (a) a->cls_drop = drop, a->logits = logits;
    }
    if ((heads & BERT_HEAD_MLM) && o->P > 0) {
        const int64_t BP = B * o->P;
        float *in = take(&ly, BP * C), *pre = take(&ly, BP * C), *act = take(&ly, BP * C);
        float *ln = take(&ly, BP * C), *mean = take(&ly, BP), *rstd = take(&ly, BP);
        float *logits = take(&ly, BP * cfg->vocab_size);
        if (a) {
            a->mlm_in = in, a->mlm_pre = pre, a->mlm_act = act, a->mlm_ln = ln;
            a->mlm_mean = mean, a->mlm_rstd = rstd, a->mlm_logits = logits;
        }
    }
    *ly_ = ly;
}

/* The activation block: o->act_sets sets back to back, measured (ar ==
 * NULL, sets may be NULL) or carved in one pass, so that the alignment
 * padding between sets is counted exactly. Returns the bytes. */
static size_t layout_act_sets(struct bert_acts *sets, const struct bert_config *cfg,
                              const struct bert_opts *o, struct arena *ar)
{
    struct lay ly = {ar, 0};
    for (int k = 0; k < o->act_sets; k++)
        layout_acts(&ly, sets ? &sets[k] : NULL, cfg, o);
    return ly.bytes;
}

/* The activation-gradient block (only with o->backward): one set of
 * buffers for all layers, sized by the widest. Returns the bytes. */
static size_t layout_grad_acts(struct bert_grad_acts *g, const struct bert_config *cfg,
                               const struct bert_opts *o, struct arena *ar)
{
    if (!o->backward)
        return 0;
    struct lay ly = {ar, 0};
    struct bert_grad_acts t;
    memset(&t, 0, sizeof t);
    const int64_t B = o->B, BT = B * o->T, C = cfg->hidden_size;
    const int64_t CH = max_heads(cfg, o) * (C / cfg->num_attention_heads);
    const int64_t Fmax = max_ffn(cfg, o);
    const unsigned heads = o->heads;
    /* d h flows layer to layer in two (B,T,C) buffers that swap roles; the
     * rest is one layer's working set, reused by every layer: the backward
     * never holds two layers' gradients at once */
    t.dh[0] = take(&ly, BT * C);
    t.dh[1] = take(&ly, BT * C);
    t.dy = take(&ly, BT * C);              /* (B,T,C) d y, d LN inputs */
    t.dproj = take(&ly, BT * C);           /* (B,T,C) before a dropout (training) */
    t.dact = take(&ly, BT * Fmax);         /* (B,T,Fmax) d gelu output */
    t.dpre = take(&ly, BT * Fmax);         /* (B,T,Fmax) d gelu input */
    t.dctx = take(&ly, BT * CH);           /* (B,T,CHmax) */
    t.dqkv = take(&ly, BT * 3 * CH);       /* (B,T,3CHmax) */
    if (heads & BERT_HEAD_POOLER) {
        t.dpool = take(&ly, B * C);
        t.dpool_pre = take(&ly, B * C);
        t.dcls_in = take(&ly, B * C);
    }
    if (heads & BERT_HEAD_CLASSIFIER) {
        t.dcls = take(&ly, B * C);
        t.dlogits = take(&ly, B * cfg->num_labels);
    }
    if ((heads & BERT_HEAD_MLM) && o->P > 0) { /* (B,P,C) each, (B,P,V) */
        const int64_t BP = B * o->P;
        t.dmlm_ln = take(&ly, BP * C);
        t.dmlm_act = take(&ly, BP * C);
        t.dmlm_pre = take(&ly, BP * C);
        t.dmlm_in = take(&ly, BP * C);
        t.dmlm_logits = take(&ly, BP * cfg->vocab_size);
    }
    if (g)
        *g = t;
    return ly.bytes;
}

struct bert_memory bert_memory_bound(const struct bert_config *cfg,
                                     const struct bert_opts *opts_in)
{
    struct bert_memory mem;
    memset(&mem, 0, sizeof mem);
    const struct bert_opts o = norm_opts(cfg, opts_in), *opts = &o;
    struct bert_table tab;
    bert_param_table_slice(&tab, cfg, opts->heads, opts->layer_begin, opts->layer_end);
    const size_t pbytes = tab.floats * sizeof(float);
    bert_table_free(&tab);
    mem.params = pbytes;
    mem.grads = opts->param_grads ? pbytes : 0;
    mem.optimizer = opts->optimizer ? 2 * pbytes : 0;
    mem.activations = layout_act_sets(NULL, cfg, opts, NULL);
    mem.grad_activations = layout_grad_acts(NULL, cfg, opts, NULL);
    mem.total = mem.params + mem.grads + mem.optimizer + mem.activations + mem.grad_activations;
    return mem;
}

/* ---- model lifetime ---------------------------------------------------- */

/* The options bert_init accepts; each refusal says what was expected. */
static int check_opts(const struct bert_config *cfg, const struct bert_opts *o,
                      struct kd_err *err)
{
    if (o->B <= 0 || o->T <= 0)
        return kd_errf(err, "BERT model: batch size and sequence length must be positive, "
                            "got B = %lld, T = %lld", (long long)o->B, (long long)o->T);
    if (o->T > cfg->max_position_embeddings)
        return kd_errf(err, "BERT model: sequence length %lld exceeds "
                            "max_position_embeddings = %lld",
                       (long long)o->T, (long long)cfg->max_position_embeddings);
    if (o->P < 0 || o->P > o->T)
        return kd_errf(err, "BERT model: MLM positions per sequence must be in [0, T = %lld], "
                            "got %lld", (long long)o->T, (long long)o->P);
    if (o->heads & ~(unsigned)(BERT_HEAD_POOLER | BERT_HEAD_CLASSIFIER | BERT_HEAD_MLM))
        return kd_errf(err, "BERT model: unknown head bits 0x%x", o->heads);
    if (o->param_grads && !o->backward)
        return kd_errf(err, "BERT model: parameter gradients need the backward caches "
                            "(set backward = 1)");
    if ((o->heads & BERT_HEAD_CLASSIFIER) && cfg->num_labels <= 0)
        return kd_errf(err, "BERT model: classifier head with num_labels = %lld",
                       (long long)cfg->num_labels);
    const int64_t L = cfg->num_hidden_layers;
    if (o->layer_begin < 0 || o->layer_begin >= o->layer_end || o->layer_end > L)
        return kd_errf(err, "BERT model: layer slice [%lld, %lld) expected inside [0, %lld) "
                            "with at least one layer",
                       (long long)o->layer_begin, (long long)o->layer_end, (long long)L);
    if (o->heads && o->layer_end != L)
        return kd_errf(err, "BERT model: heads (0x%x) on a slice ending at layer %lld; only "
                            "the slice ending at layer L = %lld holds heads",
                       o->heads, (long long)o->layer_end, (long long)L);
    if (o->act_sets > 64)
        return kd_errf(err, "BERT model: %d activation sets requested, at most 64",
                       o->act_sets);
    return 0;
}

int bert_init(struct bert_model *m, const struct bert_config *cfg, const struct bert_opts *opts,
              struct kd_err *err)
{
    memset(m, 0, sizeof *m);
    if (hf_config_validate(cfg, "BERT config", err) != 0)
        return -1;
    const struct bert_opts no = norm_opts(cfg, opts);
    if (check_opts(cfg, &no, err) != 0)
        return -1;
    m->cfg = *cfg;
    m->opts = no;
    const int64_t L = cfg->num_hidden_layers;
    m->layer_begin = no.layer_begin;
    m->layer_end = no.layer_end;
    m->HS = cfg->hidden_size / cfg->num_attention_heads;
    m->max_heads = max_heads(cfg, &no);
    m->max_ffn = max_ffn(cfg, &no);
    /* one size table for four parameter-shaped blocks */
    bert_param_table_slice(&m->ptab, cfg, m->opts.heads, no.layer_begin, no.layer_end);
    const size_t pbytes = m->ptab.floats * sizeof(float);

    /* parameters, gradients, optimizer state: one block each */
    arena_init(&m->params_arena, "parameters", pbytes);
    m->p.layer = kd_calloc((size_t)L + 1, sizeof *m->p.layer);
    bert_params_bind(&m->p, arena_alloc(&m->params_arena, pbytes), &m->ptab, L);
    m->g.layer = kd_calloc((size_t)L + 1, sizeof *m->g.layer);
    arena_init(&m->grads_arena, "gradients", m->opts.param_grads ? pbytes : 0);
    if (m->opts.param_grads)
        bert_params_bind(&m->g, arena_alloc(&m->grads_arena, pbytes), &m->ptab, L);
    arena_init(&m->optim_arena, "optimizer", m->opts.optimizer ? 2 * pbytes : 0);
    if (m->opts.optimizer) {
        m->adam_m = arena_alloc(&m->optim_arena, pbytes);
        m->adam_v = arena_alloc(&m->optim_arena, pbytes);
    }

    /* activations and activation gradients: measure, map, carve. The
     * pointer tables (hidden states, layers) are the only heap allocations
     * besides the blocks: L+1 entries each, once per model */
    const int nset = m->opts.act_sets;
    m->n_act_sets = nset;
    m->act_set = kd_calloc((size_t)nset, sizeof *m->act_set);
    m->act_batch = kd_calloc((size_t)nset, sizeof *m->act_batch);
    m->act_forward = kd_calloc((size_t)nset, sizeof *m->act_forward);
    for (int k = 0; k < nset; k++) {
        m->act_set[k].hidden = kd_calloc((size_t)L + 1, sizeof *m->act_set[k].hidden);
        m->act_set[k].layer = kd_calloc((size_t)L + 1, sizeof *m->act_set[k].layer);
    }
    arena_init(&m->acts_arena, "activations", layout_act_sets(NULL, cfg, &m->opts, NULL));
    layout_act_sets(m->act_set, cfg, &m->opts, &m->acts_arena);
    m->a = m->act_set[0];
    arena_init(&m->gacts_arena, "activation gradients",
               layout_grad_acts(NULL, cfg, &m->opts, NULL));
    layout_grad_acts(&m->ga, cfg, &m->opts, &m->gacts_arena);
    KD_ASSERT(m->acts_arena.used == m->acts_arena.size &&
                  m->gacts_arena.used == m->gacts_arena.size,
              "activation layout measured %zu + %zu bytes, carved %zu + %zu",
              m->acts_arena.size, m->gacts_arena.size, m->acts_arena.used,
              m->gacts_arena.used);
    return 0;
}

void bert_free(struct bert_model *m)
{
    arena_free(&m->params_arena);
    arena_free(&m->grads_arena);
    arena_free(&m->optim_arena);
    arena_free(&m->acts_arena);
    arena_free(&m->gacts_arena);
    free(m->p.layer);
    free(m->g.layer);
    for (int k = 0; k < m->n_act_sets; k++) {
        free(m->act_set[k].hidden);
        free(m->act_set[k].layer);
    }
    free(m->act_set);
    free(m->act_batch);
    free(m->act_forward);
    bert_table_free(&m->ptab);
    memset(m, 0, sizeof *m);
}

void bert_use_acts(struct bert_model *m, int k)
{
    KD_ASSERT(k >= 0 && k < m->n_act_sets, "activation set %d of %d", k, m->n_act_sets);
    /* park the current set's batch (the pointers of a never change) */
    m->act_batch[m->cur_act_set] = m->batch;
    m->act_forward[m->cur_act_set] = m->have_forward;
    m->cur_act_set = k;
    m->a = m->act_set[k];
    m->batch = m->act_batch[k];
    m->have_forward = m->act_forward[k];
}

/* Tensor by tensor: a tensor's values depend on (seed, name) only, so a
 * pruned or head-less model draws the same values for the tensors it has. */
void bert_init_random(struct bert_model *m, uint64_t seed, float std)
{
    float *base = (float *)(void *)m->params_arena.base;
    for (int i = 0; i < m->ptab.n; i++)
        bert_tensor_init(base + m->ptab.t[i].offset, &m->ptab.t[i], &m->cfg, seed, std);
}

/* The whole gradient block, padding included (it stays 0 either way). */
void bert_zero_grads(struct bert_model *m)
{
    /* arena_zero's range, cleared by the thread team (the block holds
     * floats only; any odd bytes at the end are cleared too) */
    struct arena *a = &m->grads_arena;
    if (!a->base || !a->used)
        return;
    size_t nf = a->used / sizeof(float);
    zero_floats((float *)(void *)a->base, (int64_t)nf);
    memset(a->base + nf * sizeof(float), 0, a->used - nf * sizeof(float));
}
