/* t_kd_bert_grad.c: the distillation terms end to end through a tiny random
 * student BERT (verification ladder rung iii, tests/gradcheck.h): the loss
 * set's total as a function of every student parameter and of the
 * hidden-state projections, with the set's tap gradients injected into
 * bert_backward (dhidden at the hidden states, dscores at the attention
 * scores before the softmax, dlogits at the classifier).
 *
 * Student: L = 2 layers, C = 6 (2 heads of 3), F = 8, V = 20, 10 positions,
 * K = 3 labels, classifier head; pad_token_id null (t_bert_grad.c says why).
 * Batch: B = 2 sequences of T = 5, the second padded after 3 tokens.
 * Teacher (plain arrays): L_t = 4 layers of Ct = 10, 2 heads, K = 3; hidden
 * states U(-1, 1), attention probabilities the masked softmax of random
 * scores, logits U(-2, 2). Maps uniform: student 1 <-> 2, 2 <-> 4.
 *   1. hidden (mse, every token, projected 6 -> 10) + attention (real rows),
 *      eval;
 *   2. hidden (cosine, [CLS], projected) + attention (all rows) + soft
 *      (T = 2) + hard, in training mode with every dropout at 0.1 (masks
 *      are functions of (seed, step, index), so every perturbed forward
 *      sees the network the backward replays);
 *   3. the student's internal terms of layer 2 only (a PID phase), eval:
 *      nothing may flow from layer 1's pairs.
 * Each: NaN check, accumulate check, every parameter tensor (12 sampled
 * entries each) and every projection tensor, except the attention key
 * biases, whose true gradient is 0 (key_bias_zero checks that instead).
 * Tolerances as t_bert_grad.c: eps 1e-2, |a - n| <= 1e-4 + 1e-2 max(|a|,|n|),
 * with a tighter absolute floor because the scalar here is one loss of
 * size ~1 (not a weighted sum of 2600 outputs): its fp32 rounding noise is
 * ~1e-7 / 2e-2 = 5e-6. */
#include "kd/kd/loss_set.h"
#include "kd/kernels/softmax.h"
#include "../gradcheck.h"
#include "../model/bert_testutil.h"
#include "../tap.h"
#include "kd/core/log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { B = 2, T = 5, LT = 4, CT = 10, NH = 2, K = 3 };

static const int32_t ids[B * T] = {2, 7, 1, 13, 19, 5, 3, 11, 0, 0};
static const int32_t types[B * T] = {0, 0, 1, 1, 1, 0, 1, 1, 0, 0};
static const int32_t mask[B * T] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
static const int32_t labels[B] = {2, 0};

struct fx {
    struct bert_model m;
    struct bert_batch batch;
    struct kd_loss_set set;
    struct kd_student_view sv;
    struct kd_teacher_view tv;
    struct kd_step st;
    struct kd_active act;
    struct bert_grad_in gin;
    float th[LT + 1][B * T * CT], tp[LT][B * NH * T * T], tl[B * K];
    float *scaled;      /* copies of the tap gradients times dy */
    float *gp;          /* projection gradients seen by the checker */
    float dy[1];
    double loss;
};

static void fwd(void *p)
{
    struct fx *f = p;
    bert_forward(&f->m, &f->batch);
    kd_student_view_from_bert(&f->sv, &f->m);
    kd_loss_set_zero_param_grads(&f->set);
    memset(&f->gin, 0, sizeof f->gin);
    f->loss = kd_loss_set_compute(&f->set, &f->sv, &f->tv, &f->st, NULL, &f->gin);
}

/* dst = dy * src for one tap, returning dst (NULL stays NULL) */
static const float *scale(float **cursor, const float *src, size_t n, float dy)
{
    if (!src)
        return NULL;
    float *d = *cursor;
    for (size_t i = 0; i < n; i++)
        d[i] = dy * src[i];
    *cursor += n;
    return d;
}

static void bwd(void *p)
{
    struct fx *f = p;
    const float dy = f->dy[0];
    const int64_t L = f->m.cfg.num_hidden_layers, C = f->m.cfg.hidden_size;
    struct bert_grad_in g;
    memset(&g, 0, sizeof g);
    float *cur = f->scaled;
    g.dlogits = scale(&cur, f->gin.dlogits, B * K, dy);
    for (int64_t l = 0; l <= L; l++)
        g.dhidden[l] = scale(&cur, f->gin.dhidden[l], B * T * C, dy);
    for (int64_t l = 0; l < L; l++)
        g.dscores[l] = scale(&cur, f->gin.dscores[l], B * NH * T * T, dy);
    bert_backward(&f->m, &g);
    for (size_t i = 0; i < f->set.n_params; i++)
        f->gp[i] += dy * f->set.grads[i];
}

/* Random values for every parameter, by kind (as t_bert_grad.c). */
static void randomise(struct bert_model *m, uint64_t seed)
{
    float *base = (float *)(void *)m->params_arena.base;
    for (int i = 0; i < m->ptab.n; i++) {
        const struct bert_tensor *t = &m->ptab.t[i];
        size_t len = strlen(t->name);
        int bias = len > 5 && strcmp(t->name + len - 5, ".bias") == 0;
        float lo = -0.3f, hi = 0.3f;
        if (strstr(t->name, "LayerNorm") && !bias)
            lo = 0.8f, hi = 1.2f;
        else if (bias)
            lo = -0.1f, hi = 0.1f;
        gc_rand(base + t->offset, t->numel, lo, hi, seed + (uint64_t)i);
    }
}

/* The key bias adds q . b_k to every key of a query row, which the softmax
 * does not see: its true gradient is 0 and what backward leaves there is
 * rounding (~1e-9), which neither the accumulate check (relative to the
 * tensor's own maximum) nor central differences can judge. Checked
 * instead: every entry below 1e-6 of the largest parameter gradient. */
static void key_bias_zero(const char *what, const struct fx *f, const float *const *g, int n,
                          int64_t numel)
{
    const float *gb = (const float *)(const void *)f->m.grads_arena.base;
    double big = 0, kb = 0;
    for (size_t i = 0; i < f->m.ptab.floats; i++)
        big = fmax(big, fabs(gb[i]));
    for (int k = 0; k < n; k++)
        for (int64_t i = 0; i < numel; i++)
            kb = fmax(kb, fabs(g[k][i]));
    ok(n > 0 && kb <= 1e-6 * big, "%s: key-bias gradients %.1e <= 1e-6 x %.2g (softmax shift "
       "invariance)", what, kb, big);
}

static struct loss_cfg term(int kind, int metric, int tokens)
{
    struct loss_cfg c;
    memset(&c, 0, sizeof c);
    c.kind = kind;
    c.line = 1;
    c.weight = kind == LOSS_KIND_ATTENTION ? 2.0 : 1.0;
    c.temperature = c.temperature_end = 2.0;
    c.metric = metric;
    c.tokens = tokens;
    c.map = LAYER_MAP_UNIFORM;
    return c;
}

static void run(const char *what, const struct loss_cfg *l, int n, const struct kd_term_opts *o,
                int train, int only_layer)
{
    struct fx *f = calloc(1, sizeof *f);
    struct bert_config cfg;
    bt_tiny_config(&cfg, 2, NH, 3, 8, 20, 10, K);
    cfg.pad_token_id = -1;
    if (train)
        cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = cfg.classifier_dropout = 0.1;
    struct bert_opts bo = {.B = B, .T = T, .heads = BERT_HEAD_CLASSIFIER, .backward = 1,
                           .param_grads = 1, .seed = 99};
    struct kd_err err;
    if (bert_init(&f->m, &cfg, &bo, &err))
        bail_out("%s", err.msg);
    randomise(&f->m, 7);
    struct kd_teacher_dims td = {.layers = LT, .hidden = CT, .heads = NH, .num_labels = K};
    if (kd_loss_set_init(&f->set, l, n, o, &cfg, &td, B, T, 5, &err))
        bail_out("%s", err.msg);
    f->batch = (struct bert_batch){.B = B, .T = T, .input_ids = ids, .token_type_ids = types,
                                   .attention_mask = mask, .train = train, .first_example = 3,
                                   .step = 2};
    /* the teacher */
    float s[B * NH * T * T];
    for (int t = 0; t <= LT; t++) {
        gc_rand(f->th[t], B * T * CT, -1, 1, 100 + (uint64_t)t);
        f->tv.hidden[t] = f->th[t];
    }
    for (int t = 0; t < LT; t++) {
        gc_rand(s, B * NH * T * T, -2, 2, 200 + (uint64_t)t);
        softmax_forward(f->tp[t], s, mask, NULL, B * NH * T, T, NH * T);
        f->tv.probs[t] = f->tp[t];
    }
    gc_rand(f->tl, B * K, -2, 2, 300);
    f->tv.B = B, f->tv.T = T;
    f->tv.attention_mask = mask;
    f->tv.labels = labels;
    f->tv.logits = f->tl;
    f->tv.hidden_tokens = TOKEN_SEL_ALL;
    f->st.total_steps = 1;
    if (only_layer) {
        memset(&f->act, 0, sizeof f->act);
        f->act.internal = 1;
        f->act.layer[only_layer] = 1;
        f->st.active = &f->act;
    }
    f->scaled = calloc(f->set.tap_floats, sizeof(float));
    f->gp = calloc(f->set.n_params + 1, sizeof(float));

    /* the checker's parameters: the student's tensors, then the projections */
    struct gc_param *prm = calloc((size_t)f->m.ptab.n + f->set.nseg, sizeof *prm);
    int np = 0;
    float *pb = (float *)(void *)f->m.params_arena.base;
    float *gb = (float *)(void *)f->m.grads_arena.base;
    int nkb = 0;
    const float *kbias[BERT_MAX_LAYERS];
    int64_t kbias_n = 0;
    for (int i = 0; i < f->m.ptab.n; i++) {
        const struct bert_tensor *t = &f->m.ptab.t[i];
        if (strstr(t->name, "attention.self.key.bias")) { /* see key_bias_zero */
            kbias[nkb++] = gb + t->offset;
            kbias_n = t->numel;
        } else if (t->numel > 0) {
            prm[np++] = (struct gc_param){t->name, pb + t->offset, gb + t->offset, t->numel};
        }
    }
    for (size_t i = 0; i < f->set.nseg; i++)
        prm[np++] = (struct gc_param){f->set.segs[i].name, f->set.params + f->set.segs[i].offset,
                                      f->gp + f->set.segs[i].offset,
                                      (int64_t)f->set.segs[i].count};
    struct gc_output out = {"kd loss", NULL, &f->loss, f->dy, 1};
    struct gc_problem p = {what, f, fwd, bwd, &out, 1, prm, np};
    struct gc_opts go = {.eps = 1e-2, .rel_tol = 1e-2, .abs_tol = 1e-4, .max_entries = 12,
                         .check_accumulate = 1, .seed = 17};
    gradcheck(&p, &go);
    key_bias_zero(what, f, kbias, nkb, kbias_n);
    if (only_layer) {
        fwd(f);
        ok(f->gin.dscores[only_layer - 1] && f->gin.dhidden[only_layer] &&
           !f->gin.dscores[2 - only_layer] && !f->gin.dhidden[3 - only_layer] &&
           !f->gin.dlogits, "%s: only layer %d's taps receive gradients", what, only_layer);
    }
    free(prm);
    free(f->scaled);
    free(f->gp);
    kd_loss_set_free(&f->set);
    bert_free(&f->m);
    free(f);
}

int main(void)
{
    log_set_level(LOG_LEVEL_ERROR);
    struct loss_cfg l[4];
    l[0] = term(LOSS_KIND_HIDDEN, HIDDEN_METRIC_MSE, TOKEN_SEL_ALL);
    l[1] = term(LOSS_KIND_ATTENTION, 0, 0);
    run("kd hidden mse/all projected + attention, eval", l, 2, NULL, 0, 0);

    l[0] = term(LOSS_KIND_HIDDEN, HIDDEN_METRIC_COSINE, TOKEN_SEL_CLS);
    l[1] = term(LOSS_KIND_ATTENTION, 0, 0);
    l[2] = term(LOSS_KIND_SOFT, 0, 0);
    l[3] = term(LOSS_KIND_HARD, 0, 0);
    struct kd_term_opts o[4] = {{0}, {.attention_rows = KD_ATTN_ROWS_ALL}, {0}, {0}};
    run("kd cosine/cls + attention (all rows) + soft + hard, dropout", l, 4, o, 1, 0);

    l[0] = term(LOSS_KIND_HIDDEN, HIDDEN_METRIC_MSE, TOKEN_SEL_ALL);
    l[1] = term(LOSS_KIND_ATTENTION, 0, 0);
    run("kd layer 2 only (PID phase)", l, 2, NULL, 0, 2);
    return done_testing();
}
