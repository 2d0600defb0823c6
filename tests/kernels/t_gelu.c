/* t_gelu.c: fused bias + GELU.
 *   forward vs 0.5*x*erfc(-x/sqrt2) in double on x in [-12, 12]: max rel
 *     err 1e-5, abs floor 1e-6 (the kernel's erfc is ~1e-7 relative);
 *   backward vs the analytic derivative Phi(x) + x*phi(x) in double: max
 *     rel err 1e-5, abs floor 1e-2 (near x = -0.75 the derivative is a
 *     difference of two ~0.25 terms, so its fp32 error is ~1 ulp of 0.25);
 *   FD gradients of inp and bias: eps 1e-2, rel 1e-3, abs 1e-4 (truncation
 *     eps^2/6 * |gelu'''| < 2e-5);
 *   in-place (pre == inp) and no-bias paths agree with the general one. */
#include "kd/kernels/gelu.h"
#include "../gradcheck.h"
#include "../tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { BT = 6, F = 37 };

struct ctx {
    float inp[BT * F], bias[F], pre[BT * F], out[BT * F];
    float dinp[BT * F], dbias[F], dout[BT * F];
};

static void fwd(void *p)
{
    struct ctx *c = p;
    gelu_forward(c->out, c->pre, c->inp, c->bias, BT, F);
}

static void bwd(void *p)
{
    struct ctx *c = p;
    gelu_backward(c->dinp, c->dbias, c->dout, c->pre, BT, F);
}

static double ref_gelu(double x) { return 0.5 * x * erfc(-x / sqrt(2.0)); }
static double ref_dgelu(double x)
{
    return 0.5 * erfc(-x / sqrt(2.0)) + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
}

static void test_reference(void)
{
    /* a dense grid through the whole range, both tails included */
    enum { N = 24001 };
    float *x = malloc(N * sizeof *x), *pre = malloc(N * sizeof *pre);
    float *out = malloc(N * sizeof *out), *dx = calloc(N, sizeof *dx);
    float *ones = malloc(N * sizeof *ones);
    double *want = malloc(N * sizeof *want), *dwant = malloc(N * sizeof *dwant);
    for (int i = 0; i < N; i++) {
        x[i] = -12.0f + 24.0f * (float)i / (N - 1);
        ones[i] = 1.0f;
        want[i] = ref_gelu(x[i]);
        dwant[i] = ref_dgelu(x[i]);
    }
    gelu_forward(out, pre, x, NULL, 1, N);
    gc_check_close("gelu forward vs double erfc form on [-12,12]", out, want, N, 1e-5, 1e-6);
    /* the textbook form agrees where it is accurate (x > -3) */
    double worst = 0;
    for (int i = 0; i < N; i++)
        if (x[i] > -3.0f)
            worst = fmax(worst, fabs(out[i] - 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)))) /
                                    fmax(fabs(want[i]), 1e-6));
    ok(worst < 1e-5, "gelu matches 0.5*x*(1+erf(x/sqrt2)) for x > -3 (max rel err %.2g)",
       worst);
    gelu_backward(dx, NULL, ones, pre, 1, N);
    gc_check_close("gelu backward vs analytic derivative", dx, dwant, N, 1e-5, 1e-2);
    ok(out[0] == 0.0f || fabsf(out[0]) < 1e-30f, "gelu(-12) underflows cleanly (%g)",
       (double)out[0]);
    ok(out[N - 1] == 12.0f, "gelu(12) = 12");
    free(x), free(pre), free(out), free(dx), free(ones), free(want), free(dwant);
}

static void test_paths(struct ctx *c)
{
    fwd(c);
    int pre_ok = 1;
    for (int r = 0; r < BT; r++)
        for (int i = 0; i < F; i++)
            pre_ok &= c->pre[r * F + i] == c->inp[r * F + i] + c->bias[i];
    ok(pre_ok, "pre caches inp + bias");
    /* in place: pre == inp */
    float buf[BT * F], out2[BT * F];
    memcpy(buf, c->inp, sizeof buf);
    gelu_forward(out2, buf, buf, c->bias, BT, F);
    ok(memcmp(out2, c->out, sizeof out2) == 0 && memcmp(buf, c->pre, sizeof buf) == 0,
       "in-place bias add (pre == inp) gives identical results");
    /* no bias: same as a zero bias */
    float zero[F] = {0}, out3[BT * F], out4[BT * F], pre3[BT * F];
    gelu_forward(out3, pre3, c->inp, NULL, BT, F);
    gelu_forward(out4, pre3, c->inp, zero, BT, F);
    ok(memcmp(out3, out4, sizeof out3) == 0, "NULL bias equals a zero bias");
}

static void test_gradients(struct ctx *c)
{
    struct gc_output outs[] = {{"out", c->out, NULL, c->dout, BT * F}};
    struct gc_param prm[] = {{"inp", c->inp, c->dinp, BT * F}, {"bias", c->bias, c->dbias, F}};
    struct gc_problem p = {"gelu", c, fwd, bwd, outs, 1, prm, 2};
    struct gc_opts o = {.eps = 1e-2, .rel_tol = 1e-3, .abs_tol = 1e-4,
                        .max_entries = 0, .check_accumulate = 1, .seed = 5};
    gradcheck(&p, &o);
}

int main(void)
{
    struct ctx *c = calloc(1, sizeof *c);
    gc_rand(c->inp, BT * F, -4, 4, 1);
    gc_rand(c->bias, F, -1, 1, 2);
    test_reference();
    test_paths(c);
    test_gradients(c);
    free(c);
    return done_testing();
}
