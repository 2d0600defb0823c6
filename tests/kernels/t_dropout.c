/* t_dropout.c: counter-based dropout.
 *   p = 0 is the identity (bitwise), p = 1 zeroes everything;
 *   the mask replays identically for the same (seed, offset, first) and
 *     changes for another offset or seed (about 2p(1-p) of entries differ);
 *   the kept fraction is 1 - p within 6 sigma over 2^20 elements, and kept
 *     values are scaled by exactly 1/(1-p);
 *   splitting a tensor at an unaligned index with first adjusted (two ranks)
 *     reproduces the whole-tensor mask; in-place equals out-of-place;
 *   backward replays the mask without storing it (exact) and accumulates;
 *   FD gradient (mask fixed by the spec, the op is linear): eps 5e-2, rel
 *     1e-3, abs 1e-4. */
#include "kd/kernels/dropout.h"
#include "../gradcheck.h"
#include "../tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N = 1 << 20, NS = 203 };

struct ctx {
    float inp[NS], out[NS], dinp[NS], dout[NS];
    struct dropout_spec d;
};

static void fwd(void *p)
{
    struct ctx *c = p;
    dropout_forward(c->out, c->inp, c->d, NS);
}

static void bwd(void *p)
{
    struct ctx *c = p;
    dropout_backward(c->dinp, c->dout, c->d, NS);
}

int main(void)
{
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y), *z = malloc(N * sizeof *z);
    gc_rand(x, N, 0.5f, 1.5f, 1); /* nonzero, so zeros in y are drops */

    struct dropout_spec d0 = {0.0f, 1, 2, 3};
    dropout_forward(y, x, d0, N);
    ok(memcmp(x, y, N * sizeof *x) == 0, "p = 0 is the identity");
    struct dropout_spec d1 = {1.0f, 1, 2, 3};
    dropout_forward(y, x, d1, N);
    int zeros = 1;
    for (int i = 0; i < N; i++)
        zeros &= y[i] == 0.0f;
    ok(zeros, "p = 1 drops everything");

    const float p = 0.1f;
    struct dropout_spec d = {p, 1234, 42, 0};
    dropout_forward(y, x, d, N);
    long kept = 0;
    int scaled = 1;
    for (int i = 0; i < N; i++)
        if (y[i] != 0.0f) {
            kept++;
            scaled &= y[i] == x[i] * (1.0f / (1.0f - p));
        }
    double frac = (double)kept / N, sd = sqrt(p * (1 - p) / N);
    ok(fabs(frac - (1 - p)) < 6 * sd, "kept fraction %.5f is 1 - p = %.2f (6 sigma %.1g)", frac,
       1 - p, 6 * sd);
    ok(scaled, "kept values are scaled by exactly 1/(1-p)");

    dropout_forward(z, x, d, N);
    ok(memcmp(y, z, N * sizeof *y) == 0, "same (seed, offset, first) replays the same mask");
    struct dropout_spec d_off = d, d_seed = d;
    d_off.offset = 43;
    d_seed.seed = 1235;
    long diff_off = 0, diff_seed = 0;
    dropout_forward(z, x, d_off, N);
    for (int i = 0; i < N; i++)
        diff_off += (y[i] == 0.0f) != (z[i] == 0.0f);
    dropout_forward(z, x, d_seed, N);
    for (int i = 0; i < N; i++)
        diff_seed += (y[i] == 0.0f) != (z[i] == 0.0f);
    double expect = 2 * p * (1 - p), sd2 = sqrt(expect * (1 - expect) / N);
    ok(fabs((double)diff_off / N - expect) < 6 * sd2,
       "another offset gives an independent mask (%.4f differ, expect %.4f)",
       (double)diff_off / N, expect);
    ok(fabs((double)diff_seed / N - expect) < 6 * sd2,
       "another seed gives an independent mask (%.4f differ, expect %.4f)",
       (double)diff_seed / N, expect);

    /* two ranks: [0, 1001) and [1001, N) with first shifted */
    struct dropout_spec d_hi = d;
    d_hi.first += 1001;
    dropout_forward(z, x, d, 1001);
    dropout_forward(z + 1001, x + 1001, d_hi, N - 1001);
    ok(memcmp(y, z, N * sizeof *y) == 0, "split at an unaligned index with first adjusted "
                                        "reproduces the whole mask");
    memcpy(z, x, N * sizeof *z);
    dropout_forward(z, z, d, N);
    ok(memcmp(y, z, N * sizeof *y) == 0, "in-place forward equals out-of-place");

    /* the mask helper is the factor forward applies */
    dropout_mask(z, d, N);
    int same = 1;
    for (int i = 0; i < N; i++)
        same &= y[i] == x[i] * z[i];
    ok(same, "dropout_mask gives exactly the factors of the forward");

    /* backward: dinp += dout * mask / (1-p), replayed */
    float *dx = calloc(N, sizeof *dx);
    dropout_backward(dx, x, d, N);
    ok(memcmp(dx, y, N * sizeof *dx) == 0, "backward replays the forward mask exactly");
    dropout_backward(dx, x, d, N);
    int twice = 1;
    for (int i = 0; i < N; i++)
        twice &= dx[i] == 2.0f * y[i];
    ok(twice, "backward accumulates");
    memset(dx, 0, N * sizeof *dx);
    dropout_backward(dx, x, d0, N);
    ok(memcmp(dx, x, N * sizeof *dx) == 0, "backward with p = 0 passes the gradient through");

    struct ctx *c = calloc(1, sizeof *c);
    gc_rand(c->inp, NS, -1, 1, 9);
    c->d = (struct dropout_spec){0.4f, 77, 5, 1000003};
    struct gc_output outs[] = {{"out", c->out, NULL, c->dout, NS}};
    struct gc_param prm[] = {{"inp", c->inp, c->dinp, NS}};
    struct gc_problem pr = {"dropout", c, fwd, bwd, outs, 1, prm, 1};
    struct gc_opts o = {.eps = 5e-2, .rel_tol = 1e-3, .abs_tol = 1e-4,
                        .max_entries = 0, .check_accumulate = 1, .seed = 4};
    gradcheck(&pr, &o);
    free(c), free(x), free(y), free(z), free(dx);
    return done_testing();
}
