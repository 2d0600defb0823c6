/* t_linear.c: linear layer forward against a double reference (max rel err
 * 1e-5, abs floor 0.1), finite-difference gradients of input, weight and
 * bias, and the IC = 0 / NULL-gradient cases.
 * FD: the op is linear, so central differences are exact up to fp32
 * rounding of the outputs; eps 5e-2, rel 1e-3, abs 1e-4. */
#include "kd/kernels/linear.h"
#include "../gradcheck.h"
#include "../tap.h"

#include <stdlib.h>
#include <string.h>

enum { BT = 7, IC = 21, OC = 18 };

struct ctx {
    float inp[BT * IC], w[OC * IC], b[OC], out[BT * OC];
    float dinp[BT * IC], dw[OC * IC], db[OC], dout[BT * OC];
    int use_bias;
};

static void fwd(void *p)
{
    struct ctx *c = p;
    linear_forward(c->out, c->inp, c->w, c->use_bias ? c->b : NULL, BT, IC, OC);
}

static void bwd(void *p)
{
    struct ctx *c = p;
    linear_backward(c->dinp, c->dw, c->use_bias ? c->db : NULL, c->dout, c->inp, c->w, BT,
                    IC, OC);
}

static void test_forward(struct ctx *c)
{
    double want[BT * OC];
    for (int use_bias = 0; use_bias <= 1; use_bias++) {
        c->use_bias = use_bias;
        for (int r = 0; r < BT; r++)
            for (int o = 0; o < OC; o++) {
                double s = use_bias ? c->b[o] : 0.0;
                for (int i = 0; i < IC; i++)
                    s += (double)c->inp[r * IC + i] * c->w[o * IC + i];
                want[r * OC + o] = s;
            }
        fwd(c);
        gc_check_close(use_bias ? "linear forward with bias" : "linear forward without bias",
                       c->out, want, BT * OC, 1e-5, 0.1);
    }
}

static void test_gradients(struct ctx *c)
{
    struct gc_output outs[] = {{"out", c->out, NULL, c->dout, BT * OC}};
    struct gc_param prm[] = {{"inp", c->inp, c->dinp, BT * IC},
                             {"weight", c->w, c->dw, OC * IC},
                             {"bias", c->b, c->db, OC}};
    struct gc_problem p = {"linear", c, fwd, bwd, outs, 1, prm, 3};
    struct gc_opts o = {.eps = 5e-2, .rel_tol = 1e-3, .abs_tol = 1e-4,
                        .max_entries = 200, .check_accumulate = 1, .seed = 17};
    c->use_bias = 1;
    gradcheck(&p, &o);
}

static void test_edges(void)
{
    /* IC = 0: out = bias (a fully pruned input) */
    float b[3] = {1, 2, 3}, out[6];
    memset(out, 0xff, sizeof out); /* NaN garbage */
    linear_forward(out, NULL, NULL, b, 2, 0, 3);
    ok(out[0] == 1 && out[2] == 3 && out[3] == 1 && out[5] == 3, "IC = 0 gives out = bias");
    linear_forward(out, NULL, NULL, NULL, 2, 0, 3);
    ok(out[0] == 0 && out[5] == 0, "IC = 0 without bias gives zeros");
    /* NULL gradients are skipped, the others still accumulate */
    float inp[2] = {1, 2}, w[2] = {3, 4}, dout[1] = {1}, dw[2] = {0, 0};
    linear_backward(NULL, dw, NULL, dout, inp, w, 1, 2, 1);
    ok(dw[0] == 1 && dw[1] == 2, "backward with NULL dinp and dbias fills dweight");
    float db[1] = {5};
    linear_backward(NULL, dw, db, dout, inp, w, 0, 2, 1);
    ok(dw[0] == 1 && dw[1] == 2 && db[0] == 5, "BT = 0 leaves the gradients unchanged");
}

int main(void)
{
    struct ctx *c = calloc(1, sizeof *c);
    gc_rand(c->inp, BT * IC, -1, 1, 1);
    gc_rand(c->w, OC * IC, -1, 1, 2);
    gc_rand(c->b, OC, -1, 1, 3);
    test_forward(c);
    test_gradients(c);
    test_edges();
    free(c);
    return done_testing();
}
