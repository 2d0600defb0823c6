/* t_attention.c: multi-head self-attention core.
 *   forward vs a naive double reference (scores, masked softmax, dropout
 *     factors from the documented index, context), with and without
 *     dropout, on a small case and one with T = 37 (vector tails, key
 *     extent): context max rel err 1e-5 with abs floor 0.1 (values O(1)),
 *     probabilities 1e-5 with abs floor 1e-6;
 *   invariants: rows of real sequences sum to 1 within 1e-6, padded keys
 *     exactly 0, an all-padding sequence gives zero probs and context, p = 0
 *     is independent of the seed (no RNG), splitting the batch as two ranks
 *     would (first = e0*NH*T*T) reproduces the one-rank result bit for bit,
 *     NH = 0 touches nothing;
 *   FD gradients of the packed QKV: without dropout, with dropout p = 0.3
 *     (mask replayed in backward), and with injected gradients on probs and
 *     on scores (the loss then also weights probs and the test's own double
 *     QK^T/sqrt(HS)); at T = 5 (all entries) and T = 18 (rows longer than
 *     a vector block; 300 sampled entries); eps 1e-2, rel 2e-3, abs 2e-4;
 *     a second backward doubles (accumulates). */
#include "kd/kernels/attention.h"
#include "kd/kernels/dropout.h"
#include "../gradcheck.h"
#include "../tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct ctx {
    int64_t B, T, NH, HS;
    float *qkv, *ctx, *probs, *scratch, *dqkv, *dctx, *dprobs, *dscores;
    double *scores; /* test-side S = QK^T/sqrt(HS), for the dscores check */
    const int32_t *mask;
    struct dropout_spec drop;
    int inject; /* backward passes dprobs and dscores */
};

static int64_t n_qkv(const struct ctx *c) { return c->B * c->T * 3 * c->NH * c->HS; }
static int64_t n_ctx(const struct ctx *c) { return c->B * c->T * c->NH * c->HS; }
static int64_t n_att(const struct ctx *c) { return c->B * c->NH * c->T * c->T; }

static struct ctx *ctx_new(int64_t B, int64_t T, int64_t NH, int64_t HS, const int32_t *mask,
                           uint64_t seed)
{
    struct ctx *c = calloc(1, sizeof *c);
    c->B = B, c->T = T, c->NH = NH, c->HS = HS, c->mask = mask;
    c->qkv = malloc(n_qkv(c) * sizeof(float));
    c->dqkv = malloc(n_qkv(c) * sizeof(float));
    c->ctx = malloc(n_ctx(c) * sizeof(float));
    c->dctx = malloc(n_ctx(c) * sizeof(float));
    c->probs = malloc(n_att(c) * sizeof(float));
    c->dprobs = malloc(n_att(c) * sizeof(float));
    c->dscores = malloc(n_att(c) * sizeof(float));
    c->scores = malloc(n_att(c) * sizeof(double));
    c->scratch = malloc(attention_scratch_floats(T) * sizeof(float));
    gc_rand(c->qkv, n_qkv(c), -1, 1, seed);
    return c;
}

static void ctx_free(struct ctx *c)
{
    free(c->qkv), free(c->dqkv), free(c->ctx), free(c->dctx), free(c->probs);
    free(c->dprobs), free(c->dscores), free(c->scores), free(c->scratch), free(c);
}

static void fwd(void *p)
{
    struct ctx *c = p;
    attention_forward(c->ctx, c->probs, c->qkv, c->mask, c->drop, c->scratch, c->B, c->T,
                      c->NH, c->HS);
    /* the scores S (all keys, padded included) as a double output */
    const int64_t CH = c->NH * c->HS, C3 = 3 * CH;
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t h = 0; h < c->NH; h++)
            for (int64_t i = 0; i < c->T; i++)
                for (int64_t j = 0; j < c->T; j++) {
                    double s = 0;
                    for (int64_t d = 0; d < c->HS; d++)
                        s += (double)c->qkv[(b * c->T + i) * C3 + h * c->HS + d] *
                             c->qkv[(b * c->T + j) * C3 + CH + h * c->HS + d];
                    c->scores[((b * c->NH + h) * c->T + i) * c->T + j] = s / sqrt(c->HS);
                }
}

static void bwd(void *p)
{
    struct ctx *c = p;
    attention_backward(c->dqkv, c->dctx, c->inject ? c->dprobs : NULL,
                       c->inject ? c->dscores : NULL, c->probs, c->qkv, c->mask, c->drop,
                       c->scratch, c->B, c->T, c->NH, c->HS);
}

/* Naive reference of the forward in double. */
static void reference(const struct ctx *c, double *ctx_ref, double *probs_ref)
{
    const int64_t B = c->B, T = c->T, NH = c->NH, HS = c->HS, CH = NH * HS, C3 = 3 * CH;
    float *fac = malloc(T * sizeof *fac);
    double *a = malloc(T * sizeof *a);
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < NH; h++)
            for (int64_t i = 0; i < T; i++) {
                double *p = probs_ref + ((b * NH + h) * T + i) * T;
                double m = -INFINITY, s = 0;
                for (int64_t j = 0; j < T; j++) {
                    double v = 0;
                    for (int64_t d = 0; d < HS; d++)
                        v += (double)c->qkv[(b * T + i) * C3 + h * HS + d] *
                             c->qkv[(b * T + j) * C3 + CH + h * HS + d];
                    p[j] = v / sqrt((double)HS);
                    if ((!c->mask || c->mask[b * T + j]) && p[j] > m)
                        m = p[j];
                }
                for (int64_t j = 0; j < T; j++) {
                    int real = !c->mask || c->mask[b * T + j];
                    p[j] = real && m > -INFINITY ? exp(p[j] - m) : 0.0;
                    s += p[j];
                }
                for (int64_t j = 0; j < T; j++)
                    p[j] = s > 0 ? p[j] / s : 0.0;
                /* dropout factors at the documented element index */
                struct dropout_spec d = c->drop;
                d.first += (uint64_t)(((b * NH + h) * T + i) * T);
                dropout_mask(fac, d, T);
                for (int64_t j = 0; j < T; j++)
                    a[j] = p[j] * fac[j];
                for (int64_t e = 0; e < HS; e++) {
                    double acc = 0;
                    for (int64_t j = 0; j < T; j++)
                        acc += a[j] * c->qkv[(b * T + j) * C3 + 2 * CH + h * HS + e];
                    ctx_ref[(b * T + i) * CH + h * HS + e] = acc;
                }
            }
    free(fac), free(a);
}

static void check_forward(struct ctx *c, const char *what)
{
    double *cr = malloc(n_ctx(c) * sizeof *cr), *pr = malloc(n_att(c) * sizeof *pr);
    reference(c, cr, pr);
    fwd(c);
    char buf[160];
    snprintf(buf, sizeof buf, "attention context vs reference, %s", what);
    gc_check_close(buf, c->ctx, cr, n_ctx(c), 1e-5, 0.1);
    snprintf(buf, sizeof buf, "attention probs vs reference, %s", what);
    gc_check_close(buf, c->probs, pr, n_att(c), 1e-5, 1e-6);
    free(cr), free(pr);
}

/* Rows sum to 1 for sequences with a real key; padded keys are 0; an
 * all-padding sequence has zero probs and context. */
static void check_invariants(struct ctx *c)
{
    const int64_t T = c->T, NH = c->NH, CH = NH * c->HS;
    double worst = 0;
    int zeros = 1, empty_ok = 1;
    for (int64_t b = 0; b < c->B; b++) {
        int any = 0;
        for (int64_t j = 0; j < T; j++)
            any |= c->mask[b * T + j] != 0;
        for (int64_t h = 0; h < NH; h++)
            for (int64_t i = 0; i < T; i++) {
                const float *p = c->probs + ((b * NH + h) * T + i) * T;
                double s = 0;
                for (int64_t j = 0; j < T; j++) {
                    s += p[j];
                    if (!c->mask[b * T + j])
                        zeros &= p[j] == 0.0f;
                }
                if (any)
                    worst = fmax(worst, fabs(s - 1.0));
                else
                    empty_ok &= s == 0.0;
            }
        if (!any)
            for (int64_t i = 0; i < T * CH; i++)
                empty_ok &= c->ctx[b * T * CH + i] == 0.0f;
    }
    ok(worst <= 1e-6, "probability rows of real sequences sum to 1 (max err %.2g)", worst);
    ok(zeros, "padded keys get probability exactly 0");
    ok(empty_ok, "an all-padding sequence gives zero probs and zero context");
    ok(gc_all_finite(c->ctx, n_ctx(c)) && gc_all_finite(c->probs, n_att(c)),
       "outputs are finite");
}

static void run_gradcheck(struct ctx *c, const char *name, int inject, int64_t max_entries)
{
    c->inject = inject;
    struct gc_output outs[3] = {{"ctx", c->ctx, NULL, c->dctx, n_ctx(c)},
                                {"probs", c->probs, NULL, c->dprobs, n_att(c)},
                                {"scores", NULL, c->scores, c->dscores, n_att(c)}};
    struct gc_param prm[] = {{"qkv", c->qkv, c->dqkv, n_qkv(c)}};
    struct gc_problem p = {name, c, fwd, bwd, outs, inject ? 3 : 1, prm, 1};
    struct gc_opts o = {.eps = 1e-2, .rel_tol = 2e-3, .abs_tol = 2e-4,
                        .max_entries = max_entries, .check_accumulate = 1, .seed = 33};
    gradcheck(&p, &o);
    c->inject = 0;
}

/* Same batch in one call and in two "rank" slices with global offsets. */
static void check_rank_split(struct ctx *c)
{
    const int64_t T = c->T, NH = c->NH, CH = NH * c->HS, C3 = 3 * CH;
    fwd(c);
    float *ctx2 = malloc(n_ctx(c) * sizeof(float)), *pr2 = malloc(n_att(c) * sizeof(float));
    const int64_t split = 1;
    struct dropout_spec d0 = c->drop, d1 = c->drop;
    d1.first += (uint64_t)(split * NH * T * T);
    attention_forward(ctx2, pr2, c->qkv, c->mask, d0, c->scratch, split, T, NH, c->HS);
    attention_forward(ctx2 + split * T * CH, pr2 + split * NH * T * T, c->qkv + split * T * C3,
                      c->mask + split * T, d1, c->scratch, c->B - split, T, NH, c->HS);
    ok(memcmp(ctx2, c->ctx, n_ctx(c) * sizeof(float)) == 0 &&
           memcmp(pr2, c->probs, n_att(c) * sizeof(float)) == 0,
       "batch split over two ranks (first = e0*NH*T*T) equals one rank bit for bit");
    free(ctx2), free(pr2);
}

static void check_p0_no_rng(struct ctx *c)
{
    struct dropout_spec saved = c->drop;
    c->drop = (struct dropout_spec){0.0f, 1, 2, 0};
    fwd(c);
    float *a = malloc(n_ctx(c) * sizeof(float));
    memcpy(a, c->ctx, n_ctx(c) * sizeof(float));
    c->drop = (struct dropout_spec){0.0f, 999, 77, 12345};
    fwd(c);
    ok(memcmp(a, c->ctx, n_ctx(c) * sizeof(float)) == 0,
       "dropout p = 0 is off: seed, offset and first do not matter");
    free(a);
    c->drop = saved;
}

static void check_nh0(void)
{
    /* a pruned layer: NH = 0, buffers must stay untouched */
    float sentinel[8], scratch[64];
    int32_t mask[4] = {1, 1, 1, 0};
    for (int i = 0; i < 8; i++)
        sentinel[i] = 7.0f;
    struct dropout_spec d = {0.1f, 1, 1, 0};
    attention_forward(sentinel, sentinel + 4, sentinel, mask, d, scratch, 2, 2, 0, 4);
    attention_backward(sentinel, sentinel, NULL, NULL, sentinel, sentinel, mask, d, scratch, 2,
                       2, 0, 4);
    int same = 1;
    for (int i = 0; i < 8; i++)
        same &= sentinel[i] == 7.0f;
    ok(same, "NH = 0 (pruned layer) computes nothing and touches nothing");
}

int main(void)
{
    /* small case: full sequence, hole + trailing pad (key extent 4), all pad */
    static const int32_t mask_small[3 * 5] = {1, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0};
    struct ctx *c = ctx_new(3, 5, 3, 4, mask_small, 1);
    c->drop = (struct dropout_spec){0.0f, 0, 0, 0};
    check_forward(c, "B3 T5 NH3 HS4, no dropout");
    check_invariants(c);
    check_p0_no_rng(c);
    c->drop = (struct dropout_spec){0.3f, 2024, 7, 100};
    check_forward(c, "B3 T5 NH3 HS4, dropout 0.3");
    check_rank_split(c);

    c->drop = (struct dropout_spec){0.0f, 0, 0, 0};
    run_gradcheck(c, "attention", 0, 0);
    c->drop = (struct dropout_spec){0.3f, 2024, 7, 100};
    run_gradcheck(c, "attention+dropout", 0, 0);
    run_gradcheck(c, "attention+dropout+injected dprobs,dscores", 1, 0);
    c->drop = (struct dropout_spec){0.0f, 0, 0, 0};
    run_gradcheck(c, "attention+injected dprobs,dscores", 1, 0);
    ctx_free(c);

    /* rows longer than one vector block (T = 18 > KD_VL), key extents 18
     * and 13 with a hole; 300 sampled entries of 648 */
    static int32_t mask_mid[2 * 18];
    for (int j = 0; j < 18; j++) {
        mask_mid[j] = 1;
        mask_mid[18 + j] = j < 13 && j != 4;
    }
    c = ctx_new(2, 18, 2, 3, mask_mid, 3);
    c->drop = (struct dropout_spec){0.0f, 0, 0, 0};
    run_gradcheck(c, "attention T18", 0, 300);
    c->drop = (struct dropout_spec){0.2f, 11, 12, 13};
    run_gradcheck(c, "attention T18+dropout+injected dprobs,dscores", 1, 300);
    ctx_free(c);

    /* longer rows: vector blocks + tails, key extents 37, 20 and 1 */
    static int32_t mask_long[3 * 37];
    for (int j = 0; j < 37; j++) {
        mask_long[j] = 1;
        mask_long[37 + j] = j < 20 && j != 7;
        mask_long[74 + j] = j == 0;
    }
    c = ctx_new(3, 37, 2, 8, mask_long, 2);
    c->drop = (struct dropout_spec){0.0f, 0, 0, 0};
    check_forward(c, "B3 T37 NH2 HS8, no dropout");
    check_invariants(c);
    c->drop = (struct dropout_spec){0.1f, 5, 6, 0};
    check_forward(c, "B3 T37 NH2 HS8, dropout 0.1");
    check_rank_split(c);
    ctx_free(c);

    check_nh0();
    return done_testing();
}
