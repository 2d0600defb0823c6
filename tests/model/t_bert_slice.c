/* t_bert_slice.c: a chain of model slices computes what the whole model
 * computes (bert.h "Slices"), the ground the pipeline stands on.
 *
 * Model: L = 4 layers, C = 12 (3 heads of 4), F = 16, V = 20, 10 positions,
 * K = 3 labels, with the pooler, the classifier and the MLM head (so the
 * last slice keeps its copy of the word embeddings for the tied decoder),
 * pruned: heads {3, 0, 2, 3}, FFN widths {16, 5, 0, 16} (a layer without
 * attention and one without FFN). Batch B = 2, T = 6 (the second sequence
 * padded), P = 2 MLM positions (one slot unused). Initialisation:
 * bert_init_random (seed 11, std 0.3) in every model, which also checks that
 * a slice draws exactly the whole model's values for the tensors it holds.
 *
 * For every split of the 4 layers into 2 parts (3 splits) and into 3 parts
 * (3 splits), eval and training (every dropout at p = 0.1), the slices run
 * forward in order, each taking the previous one's h_end as its input, and
 * backward in reverse, each taking the next one's d h_begin as the gradient
 * at its h_end. Injected gradients at every tap (logits, pooled, MLM
 * logits, every hidden state, every layer's probabilities) come in at the
 * same place as in the whole model (a boundary state's on the slice that
 * starts there). Checked against the whole model:
 *   - every hidden state, attention probabilities, pooled, logits and MLM
 *     logits: bitwise (max rel err 0): the same kernels run on the same
 *     operands;
 *   - every parameter gradient of every slice against the whole model's
 *     tensor of the same name: bitwise, except the word embeddings, whose
 *     gradient is split between the first slice (lookup) and the last
 *     (tied decoder): their sum is compared at max rel err <= 1e-6 (floor
 *     1e-2 * max|want|, bt_compare) since the summation order differs;
 *   - d loss / d h_0 of the first slice: bitwise;
 *   - the grads_ready sequence of each slice (L if last, its layers from
 *     the top, -1 if first);
 *   - bert_memory_bound of each slice equals the arenas bert_init mapped.
 * Activation sets: a whole model with act_sets = 2 runs forward A (set 0),
 * forward B (set 1), backward A, backward B, and must give bitwise the
 * gradients of two models run one after the other. Refusals: heads on a
 * slice that does not end at L, an empty or out-of-range slice, saving a
 * slice as a model directory. */
#include "../gradcheck.h"
#include "../tap.h"
#include "bert_testutil.h"
#include "kd/core/log.h"
#include "kd/model/bert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B_ 2
#define T_ 6
#define P_ 2
#define L_ 4
#define HEADS (BERT_HEAD_CLASSIFIER | BERT_HEAD_MLM)
#define WORD "embeddings.word_embeddings.weight"

static const int32_t ids[B_ * T_] = {2, 7, 0, 13, 7, 5, 3, 0, 11, 4, 0, 0};
static const int32_t types[B_ * T_] = {0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0};
static const int32_t mask[B_ * T_] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0};
static const int32_t pos[B_ * P_] = {1, 4, 2, -1};

/* Injected gradients, one per tap of the whole model. */
struct inject {
    float *dlogits, *dpooled, *dmlm;
    float *dhidden[L_ + 1];
    float *dprobs[L_];
};

/* grads_ready calls of one backward */
struct ready_log {
    int64_t seen[L_ + 4];
    int n;
};

static void on_ready(void *ctx, int64_t layer)
{
    struct ready_log *r = ctx;
    if (r->n < L_ + 4)
        r->seen[r->n] = layer;
    r->n++;
}

static struct bert_config make_config(int train)
{
    struct bert_config cfg;
    bt_tiny_config(&cfg, L_, 3, 4, 16, 20, 10, 3);
    static const int64_t nh[L_] = {3, 0, 2, 3}, ff[L_] = {16, 5, 0, 16};
    for (int l = 0; l < L_; l++) {
        cfg.layer_heads[l] = nh[l];
        cfg.layer_intermediate[l] = ff[l];
        cfg.layer_head_mask[l] = (1u << nh[l]) - 1;
    }
    double p = train ? 0.1 : 0.0;
    cfg.hidden_dropout_prob = p;
    cfg.attention_probs_dropout_prob = p;
    cfg.classifier_dropout = -1.0;
    return cfg;
}

static void model_init(struct bert_model *m, const struct bert_config *cfg, int64_t begin,
                       int64_t end, int act_sets)
{
    struct bert_opts o = {.B = B_, .T = T_, .P = P_, .heads = end == L_ ? HEADS : 0,
                          .backward = 1, .param_grads = 1, .seed = 99,
                          .layer_begin = begin, .layer_end = end, .act_sets = act_sets};
    struct kd_err err;
    if (bert_init(m, cfg, &o, &err) != 0)
        bail_out("slice [%lld, %lld): %s", (long long)begin, (long long)end, err.msg);
    bert_init_random(m, 11, 0.3f);
    bert_zero_grads(m);
}

static struct bert_batch make_batch(int train, uint64_t first)
{
    return (struct bert_batch){.B = B_, .T = T_, .input_ids = ids, .token_type_ids = types,
                               .attention_mask = mask, .P = P_, .mlm_positions = pos,
                               .train = train, .first_example = first, .step = 3};
}

static float *tensor(const struct bert_model *m, const float *block, const char *name)
{
    int i = bert_table_find(&m->ptab, name);
    return i < 0 ? NULL : (float *)block + m->ptab.t[i].offset;
}

/* Bitwise-equal flag of n floats (reported through bt_compare on failure). */
static int same(const float *a, const float *b, int64_t n)
{
    return n == 0 || memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

/* One split: cuts[0] = 0 < cuts[1] < ... < cuts[parts] = L. */
static void run_split(const struct bert_config *cfg, const struct bert_model *full,
                      const struct inject *inj, const int *cuts, int parts, int train)
{
    char what[160], split[64];
    int n = snprintf(split, sizeof split, "%s [", train ? "train" : "eval");
    for (int k = 0; k <= parts; k++)
        n += snprintf(split + n, sizeof split - (size_t)n, "%s%d", k ? "," : "", cuts[k]);
    snprintf(split + n, sizeof split - (size_t)n, "]");
    const int64_t C = cfg->hidden_size, BTC = B_ * T_ * C;
    struct bert_model sl[L_];
    struct bert_batch batch = make_batch(train, 5);
    int taps_ok = 1, mem_ok = 1;

    /* forward, slice by slice */
    for (int k = 0; k < parts; k++) {
        model_init(&sl[k], cfg, cuts[k], cuts[k + 1], 1);
        struct bert_opts o = sl[k].opts;
        struct bert_memory mem = bert_memory_bound(cfg, &o);
        mem_ok &= mem.params == sl[k].params_arena.size && mem.grads == sl[k].grads_arena.size &&
                  mem.activations == sl[k].acts_arena.size &&
                  mem.grad_activations == sl[k].gacts_arena.size;
        struct bert_batch b = batch;
        if (k > 0) {
            b.input_ids = NULL; /* a later slice never reads the ids */
            b.embedding_output = bert_hidden(&sl[k - 1], cuts[k]);
        }
        bert_forward(&sl[k], &b);
        for (int64_t l = cuts[k] + (k > 0); l <= cuts[k + 1]; l++)
            taps_ok &= same(bert_hidden(&sl[k], l), bert_hidden(full, l), BTC);
        for (int64_t l = cuts[k]; l < cuts[k + 1]; l++)
            taps_ok &= same(bert_probs(&sl[k], l), bert_probs(full, l),
                            B_ * cfg->layer_heads[l] * T_ * T_);
    }
    struct bert_model *last = &sl[parts - 1];
    taps_ok &= same(bert_pooled(last), bert_pooled(full), B_ * C);
    taps_ok &= same(bert_logits(last), bert_logits(full), B_ * cfg->num_labels);
    taps_ok &= same(bert_mlm_logits(last), bert_mlm_logits(full), B_ * P_ * cfg->vocab_size);
    ok(taps_ok, "%s: every hidden state, probability, pooled, logit and MLM logit is bitwise "
                "the whole model's", split);
    ok(mem_ok, "%s: bert_memory_bound of each slice = the arenas bert_init mapped", split);

    /* backward, last slice first; d h_begin travels down */
    const float *dnext = NULL;
    int ready_ok = 1;
    for (int k = parts - 1; k >= 0; k--) {
        struct bert_grad_in in;
        memset(&in, 0, sizeof in);
        struct ready_log rl = {.n = 0};
        in.grads_ready = on_ready;
        in.grads_ready_ctx = &rl;
        if (k == parts - 1) {
            in.dlogits = inj->dlogits;
            in.dpooled = inj->dpooled;
            in.dmlm_logits = inj->dmlm;
        }
        /* the boundary state's injection belongs to the slice starting there */
        for (int64_t l = cuts[k]; l <= cuts[k + 1]; l++)
            in.dhidden[l] = inj->dhidden[l];
        if (k < parts - 1)
            in.dhidden[cuts[k + 1]] = dnext;
        for (int64_t l = cuts[k]; l < cuts[k + 1]; l++)
            in.dprobs[l] = inj->dprobs[l];
        bert_backward(&sl[k], &in);
        dnext = sl[k].d_embedding_output;
        /* expected calls: L if last, layers end-1..begin, -1 if first */
        int64_t want[L_ + 4];
        int nw = 0;
        if (k == parts - 1)
            want[nw++] = L_;
        for (int64_t l = cuts[k + 1] - 1; l >= cuts[k]; l--)
            want[nw++] = l;
        if (k == 0)
            want[nw++] = -1;
        ready_ok &= rl.n == nw && memcmp(rl.seen, want, (size_t)nw * sizeof *want) == 0;
    }
    ok(ready_ok, "%s: grads_ready reports each slice's own parts with global numbers", split);
    snprintf(what, sizeof what, "%s: d loss / d h_0 of the first slice", split);
    ok(same(sl[0].d_embedding_output, full->d_embedding_output, BTC), "%s: bitwise", what);

    /* parameter gradients by name */
    int grads_ok = 1, found = 0;
    const float *fg = (const float *)(const void *)full->grads_arena.base;
    for (int k = 0; k < parts; k++) {
        const float *g = (const float *)(const void *)sl[k].grads_arena.base;
        const float *p = (const float *)(const void *)sl[k].params_arena.base;
        const float *fp = (const float *)(const void *)full->params_arena.base;
        for (int i = 0; i < sl[k].ptab.n; i++) {
            const struct bert_tensor *t = &sl[k].ptab.t[i];
            if (!same(tensor(&sl[k], p, t->name), tensor(full, fp, t->name), t->numel)) {
                grads_ok = 0;
                diag("%s: slice %d: parameter %s differs from the whole model's", split, k,
                     t->name);
            }
            found++;
            if (strcmp(t->name, WORD) == 0)
                continue; /* split between first and last slice: below */
            if (!same(tensor(&sl[k], g, t->name), tensor(full, fg, t->name), t->numel)) {
                grads_ok = 0;
                diag("%s: slice %d: gradient of %s differs", split, k, t->name);
            }
        }
    }
    ok(grads_ok && found == full->ptab.n + (parts > 1),
       "%s: every parameter (%d of the whole model's %d, + the decoder's copy) and its "
       "gradient is bitwise the whole model's", split, found, full->ptab.n);
    const int64_t nw = cfg->vocab_size * C;
    float *sum = malloc((size_t)nw * sizeof(float));
    const float *g0 = tensor(&sl[0], (const float *)(const void *)sl[0].grads_arena.base, WORD);
    const float *gl = tensor(last, (const float *)(const void *)last->grads_arena.base, WORD);
    for (int64_t i = 0; i < nw; i++)
        sum[i] = parts > 1 ? g0[i] + gl[i] : g0[i];
    snprintf(what, sizeof what, "%s: word embeddings, lookup (first) + decoder (last)", split);
    bt_compare(what, sum, tensor(full, fg, WORD), nw, 1e-6);
    free(sum);
    for (int k = 0; k < parts; k++)
        bert_free(&sl[k]);
}

static float *rnd(int64_t n, uint64_t seed)
{
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    gc_rand(x, n, -1.0f, 1.0f, seed);
    return x;
}

static void run_mode(int train)
{
    struct bert_config cfg = make_config(train);
    const int64_t C = cfg.hidden_size, BTC = B_ * T_ * C;
    struct inject inj;
    inj.dlogits = rnd(B_ * cfg.num_labels, 1);
    inj.dpooled = rnd(B_ * C, 2);
    inj.dmlm = rnd(B_ * P_ * cfg.vocab_size, 3);
    for (int l = 0; l <= L_; l++)
        inj.dhidden[l] = rnd(BTC, 10 + (uint64_t)l);
    for (int l = 0; l < L_; l++)
        inj.dprobs[l] = rnd(B_ * cfg.layer_heads[l] * T_ * T_, 20 + (uint64_t)l);

    struct bert_model full;
    model_init(&full, &cfg, 0, L_, 1);
    struct bert_batch batch = make_batch(train, 5);
    bert_forward(&full, &batch);
    struct bert_grad_in in;
    memset(&in, 0, sizeof in);
    in.dlogits = inj.dlogits;
    in.dpooled = inj.dpooled;
    in.dmlm_logits = inj.dmlm;
    for (int l = 0; l <= L_; l++)
        in.dhidden[l] = inj.dhidden[l];
    for (int l = 0; l < L_; l++)
        in.dprobs[l] = inj.dprobs[l];
    bert_backward(&full, &in);

    static const int two[3][3] = {{0, 1, 4}, {0, 2, 4}, {0, 3, 4}};
    static const int three[3][4] = {{0, 1, 2, 4}, {0, 1, 3, 4}, {0, 2, 3, 4}};
    for (int s = 0; s < 3; s++)
        run_split(&cfg, &full, &inj, two[s], 2, train);
    for (int s = 0; s < 3; s++)
        run_split(&cfg, &full, &inj, three[s], 3, train);
    /* a one-part "split" is the whole model through the slice path */
    static const int one[2] = {0, 4};
    run_split(&cfg, &full, &inj, one, 1, train);

    bert_free(&full);
    free(inj.dlogits);
    free(inj.dpooled);
    free(inj.dmlm);
    for (int l = 0; l <= L_; l++)
        free(inj.dhidden[l]);
    for (int l = 0; l < L_; l++)
        free(inj.dprobs[l]);
}

/* Two forwards kept alive in two activation sets, then their backwards,
 * against two models that each run one batch. */
static void run_act_sets(void)
{
    struct bert_config cfg = make_config(1);
    const int64_t K = cfg.num_labels;
    float *dl = rnd(B_ * K, 5);
    struct bert_batch ba = make_batch(1, 0), bb = make_batch(1, 2);
    struct bert_grad_in in;
    memset(&in, 0, sizeof in);
    in.dlogits = dl;

    struct bert_model two, one;
    model_init(&two, &cfg, 0, L_, 2);
    bert_use_acts(&two, 0);
    bert_forward(&two, &ba);
    bert_use_acts(&two, 1);
    bert_forward(&two, &bb);
    float *logits_b = malloc((size_t)(B_ * K) * sizeof(float));
    memcpy(logits_b, bert_logits(&two), (size_t)(B_ * K) * sizeof(float));
    bert_use_acts(&two, 0);
    bert_backward(&two, &in);
    bert_use_acts(&two, 1);
    bert_backward(&two, &in);

    model_init(&one, &cfg, 0, L_, 1);
    bert_forward(&one, &ba);
    bert_backward(&one, &in);
    bert_forward(&one, &bb);
    ok(same(logits_b, bert_logits(&one), B_ * K), "act sets: the second set's logits are bitwise "
                                                  "those of a model that ran it alone");
    bert_backward(&one, &in);
    ok(same((const float *)(const void *)two.grads_arena.base,
            (const float *)(const void *)one.grads_arena.base, (int64_t)two.ptab.floats),
       "act sets: F(A) F(B) B(A) B(B) accumulates bitwise the gradients of F(A) B(A) F(B) B(B)");
    struct bert_memory mem = bert_memory_bound(&cfg, &two.opts);
    ok(mem.activations == two.acts_arena.size && two.acts_arena.size > one.acts_arena.size,
       "act sets: the bound counts both sets (%zu bytes, one set %zu)", mem.activations,
       one.acts_arena.size);
    bert_free(&two);
    bert_free(&one);
    free(logits_b);
    free(dl);
}

static void run_refusals(void)
{
    struct bert_config cfg = make_config(0);
    struct bert_model m;
    struct kd_err err;
    struct bert_opts o = {.B = 2, .T = 6, .heads = BERT_HEAD_CLASSIFIER, .layer_begin = 0,
                          .layer_end = 2};
    ok(bert_init(&m, &cfg, &o, &err) != 0 && strstr(err.msg, "heads") != NULL,
       "heads on a slice ending before L are refused: %s", err.msg);
    o.heads = 0;
    o.layer_begin = 2;
    ok(bert_init(&m, &cfg, &o, &err) != 0 && strstr(err.msg, "[2, 2)") != NULL,
       "an empty slice is refused: %s", err.msg);
    o.layer_begin = 1;
    o.layer_end = 5;
    ok(bert_init(&m, &cfg, &o, &err) != 0 && strstr(err.msg, "[1, 5)") != NULL,
       "a slice past L is refused: %s", err.msg);
    o.layer_end = 3;
    if (bert_init(&m, &cfg, &o, &err) != 0)
        bail_out("%s", err.msg);
    char *dir = bt_tmpdir();
    ok(bert_save_dir(&m, dir, NULL, NULL, &err) != 0 && strstr(err.msg, "slice") != NULL,
       "saving a slice is refused: %s", err.msg);
    ok(m.p.word_emb == NULL && m.p.layer[0].qkv_w == NULL && m.p.layer[3].qkv_w == NULL &&
           m.p.layer[2].qkv_w != NULL && m.a.hidden[0] == NULL && m.a.hidden[1] != NULL &&
           m.a.hidden[3] != NULL && m.a.hidden[4] == NULL,
       "a middle slice holds only its own parameters and hidden states");
    bt_rmtree(dir);
    free(dir);
    bert_free(&m);
}

int main(void)
{
    log_set_level(LOG_LEVEL_ERROR);
    run_mode(0);
    run_mode(1);
    run_act_sets();
    run_refusals();
    return done_testing();
}
