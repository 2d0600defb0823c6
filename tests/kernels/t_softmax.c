/* t_softmax.c: masked softmax and the vectorised exp it is built on.
 *   kd_expf vs exp in double on [-87, 88]: max rel err 3e-7 (~2.5 ulp);
 *     exactly 0 below -87.33, exp(0) == 1;
 *   forward vs a double reference with key masks: max rel err 1e-5, abs
 *     floor 1e-6 (each probability carries only exp's relative error);
 *   invariants: rows sum to 1 within 1e-6, padded keys exactly 0, an
 *     all-masked row gives zeros (no NaN), BERT's -10000 additive mask gives
 *     bit-identical results to the boolean mask, logits near 1e4 do not
 *     overflow, in-place equals out-of-place;
 *   FD gradient of the logits: eps 1e-2, rel 1e-3, abs 1e-4 (truncation
 *     eps^2/6 * |p'''| ~ 2e-5), and exact zeros on padded keys. */
#include "kd/kernels/softmax.h"
#include "kd/kernels/vecmath.h"
#include "../gradcheck.h"
#include "../tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { R = 6, N = 21, RPM = 3 }; /* 2 mask rows, each shared by 3 rows */

static const int32_t keep[2 * N] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0};

struct ctx {
    float inp[R * N], probs[R * N], dinp[R * N], dprobs[R * N];
};

static void fwd(void *p)
{
    struct ctx *c = p;
    softmax_forward(c->probs, c->inp, keep, NULL, R, N, RPM);
}

static void bwd(void *p)
{
    struct ctx *c = p;
    softmax_backward(c->dinp, c->dprobs, c->probs, R, N);
}

static void ref_softmax(double *out, const float *x, const int32_t *k, int n)
{
    double m = -INFINITY, s = 0;
    for (int j = 0; j < n; j++)
        if (k[j] && x[j] > m)
            m = x[j];
    for (int j = 0; j < n; j++)
        s += k[j] ? exp((double)x[j] - m) : 0.0;
    for (int j = 0; j < n; j++)
        out[j] = k[j] ? exp((double)x[j] - m) / s : 0.0;
}

static void test_expf(void)
{
    double worst = 0, at = 0;
    for (double x = -87.0; x <= 88.0; x += 1.0 / 1024 + 1e-7) {
        float xf = (float)x;
        double e = fabs(kd_expf(xf) - exp((double)xf)) / exp((double)xf);
        if (e > worst)
            worst = e, at = xf;
    }
    ok(worst <= 3e-7, "kd_expf max rel err %.3g at %g (<= 3e-7)", worst, at);
    ok(kd_expf(0.0f) == 1.0f, "kd_expf(0) == 1 exactly");
    ok(kd_expf(-87.5f) == 0.0f && kd_expf(-1e4f) == 0.0f && kd_expf(-INFINITY) == 0.0f,
       "kd_expf underflows to exactly 0 (incl. -inf)");
    ok(isfinite(kd_expf(1e4f)), "kd_expf saturates finitely for large x");
}

static void test_forward(struct ctx *c)
{
    double want[R * N];
    for (int r = 0; r < R; r++)
        ref_softmax(want + r * N, c->inp + r * N, keep + (r / RPM) * N, N);
    fwd(c);
    gc_check_close("softmax forward with key mask", c->probs, want, R * N, 1e-5, 1e-6);
    double worst_sum = 0;
    int zeros = 1;
    for (int r = 0; r < R; r++) {
        double s = 0;
        for (int j = 0; j < N; j++) {
            s += c->probs[r * N + j];
            if (!keep[(r / RPM) * N + j])
                zeros &= c->probs[r * N + j] == 0.0f;
        }
        worst_sum = fmax(worst_sum, fabs(s - 1.0));
    }
    ok(worst_sum <= 1e-6, "rows sum to 1 (max |sum - 1| = %.2g)", worst_sum);
    ok(zeros, "padded keys get probability exactly 0");

    /* BERT's additive mask: 0 on real keys, -10000 on padding */
    float bias[2 * N], pb[R * N];
    for (int j = 0; j < 2 * N; j++)
        bias[j] = keep[j] ? 0.0f : -10000.0f;
    softmax_forward(pb, c->inp, NULL, bias, R, N, RPM);
    ok(memcmp(pb, c->probs, sizeof pb) == 0,
       "additive -10000 mask gives bit-identical probabilities to the boolean mask");

    /* in place */
    float buf[R * N];
    memcpy(buf, c->inp, sizeof buf);
    softmax_forward(buf, buf, keep, NULL, R, N, RPM);
    ok(memcmp(buf, c->probs, sizeof buf) == 0, "in-place forward is identical");

    /* no mask at all */
    int32_t ones[N];
    for (int j = 0; j < N; j++)
        ones[j] = 1;
    float pn[N], pk[N];
    softmax_forward(pn, c->inp, NULL, NULL, 1, N, 1);
    softmax_forward(pk, c->inp, ones, NULL, 1, N, 1);
    ok(memcmp(pn, pk, sizeof pn) == 0, "no mask equals an all-ones mask");
}

static void test_edge_rows(void)
{
    /* all keys masked: zeros, not NaN; backward gives zero gradient */
    float x[N], p[N], dp[N], dx[N] = {0};
    int32_t none[N] = {0};
    gc_rand(x, N, -3, 3, 4);
    gc_rand(dp, N, -1, 1, 5);
    softmax_forward(p, x, none, NULL, 1, N, 1);
    int zero = 1;
    for (int j = 0; j < N; j++)
        zero &= p[j] == 0.0f;
    ok(zero, "all-masked row gives all zeros (finite)");
    softmax_backward(dx, dp, p, 1, N);
    int dzero = 1;
    for (int j = 0; j < N; j++)
        dzero &= dx[j] == 0.0f;
    ok(dzero, "all-masked row has zero gradient");
    float ninf[N];
    for (int j = 0; j < N; j++)
        ninf[j] = -INFINITY;
    softmax_forward(p, x, NULL, ninf, 1, N, 1);
    zero = 1;
    for (int j = 0; j < N; j++)
        zero &= p[j] == 0.0f;
    ok(zero, "all -inf additive mask gives zeros (finite)");

    /* large logits: no overflow, still exact relative to the reference */
    float big[N];
    double want[N];
    int32_t ones[N];
    for (int j = 0; j < N; j++) {
        big[j] = 1.0e4f + (float)j * 0.5f;
        ones[j] = 1;
    }
    ref_softmax(want, big, ones, N);
    softmax_forward(p, big, NULL, NULL, 1, N, 1);
    gc_check_close("softmax of logits near 1e4 (stability)", p, want, N, 1e-5, 1e-6);
    /* masked garbage (NaN, +inf) on padded keys does not leak */
    float bad[N];
    memcpy(bad, x, sizeof bad);
    int32_t k2[N];
    for (int j = 0; j < N; j++)
        k2[j] = j % 3 != 0;
    for (int j = 0; j < N; j += 3)
        bad[j] = j % 2 ? NAN : INFINITY;
    softmax_forward(p, bad, k2, NULL, 1, N, 1);
    ok(gc_all_finite(p, N), "NaN/inf logits on padded keys do not reach the output");
}

static void test_gradients(struct ctx *c)
{
    struct gc_output outs[] = {{"probs", c->probs, NULL, c->dprobs, R * N}};
    struct gc_param prm[] = {{"inp", c->inp, c->dinp, R * N}};
    struct gc_problem p = {"softmax", c, fwd, bwd, outs, 1, prm, 1};
    struct gc_opts o = {.eps = 1e-2, .rel_tol = 1e-3, .abs_tol = 1e-4,
                        .max_entries = 0, .check_accumulate = 1, .seed = 21};
    gradcheck(&p, &o);
    int zeros = 1;
    for (int r = 0; r < R; r++)
        for (int j = 0; j < N; j++)
            if (!keep[(r / RPM) * N + j])
                zeros &= c->dinp[r * N + j] == 0.0f;
    ok(zeros, "padded keys get exactly zero gradient");
}

int main(void)
{
    struct ctx *c = calloc(1, sizeof *c);
    gc_rand(c->inp, R * N, -2, 2, 1);
    test_expf();
    test_forward(c);
    test_edge_rows();
    test_gradients(c);
    free(c);
    return done_testing();
}
