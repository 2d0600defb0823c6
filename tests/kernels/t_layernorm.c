/* t_layernorm.c: LayerNorm over the last dimension.
 *   forward vs a double two-pass reference (mean, rstd and output): max rel
 *     err 1e-5, abs floor 0.1 (outputs are O(1)) for eps 1e-5; for BERT's
 *     1e-12 with a row of mean 1000 (cancellation check; 1e-4 absolute, the
 *     fp32 limit, see below) and a constant row (variance 0: output = bias);
 *   FD gradients of inp, weight, bias: eps 1e-2, rel 2e-3, abs 2e-4 (fp32
 *     rounding of a row's C outputs over 2 eps is ~2e-5);
 *   NULL parameter gradients and in-place forward. */
#include "kd/kernels/layernorm.h"
#include "../gradcheck.h"
#include "../tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { BT = 5, C = 37 };

struct ctx {
    float inp[BT * C], w[C], b[C], out[BT * C], mean[BT], rstd[BT];
    float dinp[BT * C], dw[C], db[C], dout[BT * C];
    float eps;
};

static void fwd(void *p)
{
    struct ctx *c = p;
    layernorm_forward(c->out, c->mean, c->rstd, c->inp, c->w, c->b, BT, C, c->eps);
}

static void bwd(void *p)
{
    struct ctx *c = p;
    layernorm_backward(c->dinp, c->dw, c->db, c->dout, c->inp, c->mean, c->rstd, c->w, BT, C);
}

static void check_reference(struct ctx *c, const char *what, double tol, double floor)
{
    double want[BT * C], wm[BT], wr[BT];
    for (int r = 0; r < BT; r++) {
        const float *x = c->inp + r * C;
        double m = 0, v = 0;
        for (int i = 0; i < C; i++)
            m += x[i];
        m /= C;
        for (int i = 0; i < C; i++)
            v += (x[i] - m) * (x[i] - m);
        v /= C;
        wm[r] = m;
        wr[r] = 1.0 / sqrt(v + c->eps);
        for (int i = 0; i < C; i++)
            want[r * C + i] = (x[i] - m) * wr[r] * c->w[i] + c->b[i];
    }
    fwd(c);
    char buf[128];
    snprintf(buf, sizeof buf, "layernorm forward, %s", what);
    gc_check_close(buf, c->out, want, BT * C, tol, floor);
    snprintf(buf, sizeof buf, "layernorm mean cache, %s", what);
    gc_check_close(buf, c->mean, wm, BT, 1e-6, 1e-3);
    /* rstd of the constant row is 1/sqrt(eps): compare relatively */
    snprintf(buf, sizeof buf, "layernorm rstd cache, %s", what);
    gc_check_close(buf, c->rstd, wr, BT, 1e-5, 1e-3);
}

int main(void)
{
    struct ctx *c = calloc(1, sizeof *c);
    gc_rand(c->inp, BT * C, -2, 2, 1);
    gc_rand(c->w, C, 0.5f, 1.5f, 2);
    gc_rand(c->b, C, -0.5f, 0.5f, 3);
    c->eps = 1e-5f;
    check_reference(c, "eps 1e-5", 1e-5, 0.1);

    /* hard rows: large mean (cancellation) and constant (zero variance) */
    struct ctx *h = malloc(sizeof *h);
    memcpy(h, c, sizeof *h);
    for (int i = 0; i < C; i++) {
        h->inp[1 * C + i] = 1000.0f + h->inp[1 * C + i];
        h->inp[3 * C + i] = 0.25f;
    }
    h->eps = 1e-12f;
    /* fp32 limit for the mean-1000 row: the mean itself is rounded to
     * half an ulp of 1000 (3e-5), which shifts the whole normalised row by
     * up to 3e-5 * rstd, an absolute error: hence 1e-4 with an abs floor of
     * 1 (outputs are O(1)). A one-pass variance would be off by ~6%. */
    check_reference(h, "eps 1e-12, mean-1000 row and constant row", 1e-4, 1.0);
    ok(gc_all_finite(h->out, BT * C), "constant row gives finite output");
    int is_bias = 1;
    for (int i = 0; i < C; i++)
        is_bias &= h->out[3 * C + i] == h->b[i];
    ok(is_bias, "constant row normalises to the bias exactly");

    /* in place: out == inp */
    float buf[BT * C];
    memcpy(buf, c->inp, sizeof buf);
    fwd(c);
    layernorm_forward(buf, c->mean, c->rstd, buf, c->w, c->b, BT, C, c->eps);
    ok(memcmp(buf, c->out, sizeof buf) == 0, "in-place forward gives identical output");

    struct gc_output outs[] = {{"out", c->out, NULL, c->dout, BT * C}};
    struct gc_param prm[] = {{"inp", c->inp, c->dinp, BT * C},
                             {"weight", c->w, c->dw, C},
                             {"bias", c->b, c->db, C}};
    struct gc_problem p = {"layernorm", c, fwd, bwd, outs, 1, prm, 3};
    struct gc_opts o = {.eps = 1e-2, .rel_tol = 2e-3, .abs_tol = 2e-4,
                        .max_entries = 0, .check_accumulate = 1, .seed = 9};
    gradcheck(&p, &o);

    /* only dinp, and only the parameter gradients, match the full call */
    float di[BT * C] = {0}, dw[C] = {0}, db[C] = {0};
    fwd(c);
    memset(c->dinp, 0, sizeof c->dinp);
    memset(c->dw, 0, sizeof c->dw);
    memset(c->db, 0, sizeof c->db);
    bwd(c);
    layernorm_backward(di, NULL, NULL, c->dout, c->inp, c->mean, c->rstd, c->w, BT, C);
    layernorm_backward(NULL, dw, db, c->dout, c->inp, c->mean, c->rstd, c->w, BT, C);
    ok(memcmp(di, c->dinp, sizeof di) == 0 && memcmp(dw, c->dw, sizeof dw) == 0 &&
           memcmp(db, c->db, sizeof db) == 0,
       "partial backward calls (NULL gradients) give the same values");
    free(h);
    free(c);
    return done_testing();
}
