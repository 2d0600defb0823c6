/* gelu.c: fused bias + exact GELU and its backward (kernels layer).
 * Rows are processed in KD_VL blocks so GCC vectorises them at -O2 (see
 * vecmath.h). The optional bias is a compile-time flag of an inlined row
 * function rather than a per-element test: a conditional load would stop
 * the vectoriser.
 *
 * Threads (threads.h): the forward and the backward without a bias split
 * the rows. The backward with the fused bias splits the columns instead,
 * so that each bias element is summed over rows by one thread in row
 * order, as the serial loop sums it. */
#include "kd/kernels/gelu.h"
#include "kd/kernels/threads.h"
#include "kd/kernels/vecmath.h"

#include <stddef.h>

/* Elements per thread below which the work stays on one thread (GELU costs
 * a few ns per element, so this is ~10 us). */
#define GELU_GRAIN 8192

/* 1 / sqrt(2*pi) */
#define INV_SQRT_2PI 0.398942280401432678f

/* d/dx [x Phi(x)] = Phi(x) + x phi(x). Computed from the cached
 * pre-activation, so the backward needs no output cache. */
static inline float gelu_grad(float x)
{
    /* phi(x) = exp(-x^2/2) / sqrt(2 pi) */
    float pdf = INV_SQRT_2PI * kd_expf(-0.5f * x * x);
    return kd_normal_cdf(x) + x * pdf;
}

/* One row with pre separate from inp; has_bias is a constant at every call
 * site, so each instance is specialised and vectorised. */
static inline __attribute__((always_inline)) void
row_forward(float *restrict out, float *restrict pre, const float *restrict inp,
            const float *restrict bias, int64_t F, const int has_bias)
{
    int64_t i = 0;
    for (; i + KD_VL <= F; i += KD_VL)
        for (int k = 0; k < KD_VL; k++) {
            float x = has_bias ? inp[i + k] + bias[i + k] : inp[i + k];
            pre[i + k] = x;
            out[i + k] = x * kd_normal_cdf(x);
        }
    for (; i < F; i++) {
        float x = has_bias ? inp[i] + bias[i] : inp[i];
        pre[i] = x;
        out[i] = x * kd_normal_cdf(x);
    }
}

/* One row with pre == inp (bias added in place). Separate so that every
 * pointer stays restrict-qualified, which -O2 vectorisation needs. */
static inline __attribute__((always_inline)) void
row_forward_inplace(float *restrict out, float *restrict pre,
                    const float *restrict bias, int64_t F, const int has_bias)
{
    int64_t i = 0;
    for (; i + KD_VL <= F; i += KD_VL)
        for (int k = 0; k < KD_VL; k++) {
            float x = has_bias ? pre[i + k] + bias[i + k] : pre[i + k];
            pre[i + k] = x;
            out[i + k] = x * kd_normal_cdf(x);
        }
    for (; i < F; i++) {
        float x = has_bias ? pre[i] + bias[i] : pre[i];
        pre[i] = x;
        out[i] = x * kd_normal_cdf(x);
    }
}

void gelu_forward(float *out, float *pre, const float *inp, const float *bias,
                  int64_t BT, int64_t F)
{
    /* row by row: the bias row stays in L1, and the four specialisations
     * below are chosen once per row rather than per element */
    const int nt = threads_team(BT * F, GELU_GRAIN);
    KD_OMP_TEAM(nt, parallel for schedule(static))
    for (int64_t r = 0; r < BT; r++) {
        float *o = out + r * F, *p = pre + r * F;
        const float *x = inp + r * F;
        if (p == x && bias)
            row_forward_inplace(o, p, bias, F, 1);
        else if (p == x)
            row_forward_inplace(o, p, bias, F, 0);
        else if (bias)
            row_forward(o, p, x, bias, F, 1);
        else
            row_forward(o, p, x, bias, F, 0);
    }
}

/* One row of the backward: g = dout * gelu'(pre) goes to dinp and, when
 * the bias was fused, to dbias (the bias gradient is the same g summed over
 * rows, since pre = inp + bias). */
static inline __attribute__((always_inline)) void
row_backward(float *restrict dinp, float *restrict dbias, const float *restrict dout,
             const float *restrict pre, int64_t F, const int has_bias)
{
    int64_t i = 0;
    for (; i + KD_VL <= F; i += KD_VL)
        for (int k = 0; k < KD_VL; k++) {
            float g = dout[i + k] * gelu_grad(pre[i + k]);
            dinp[i + k] += g;
            if (has_bias)
                dbias[i + k] += g;
        }
    for (; i < F; i++) {
        float g = dout[i] * gelu_grad(pre[i]);
        dinp[i] += g;
        if (has_bias)
            dbias[i] += g;
    }
}

void gelu_backward(float *dinp, float *dbias, const float *dout, const float *pre,
                   int64_t BT, int64_t F)
{
    const int nt = threads_team(BT * F, GELU_GRAIN);
    if (!dbias) {
        KD_OMP_TEAM(nt, parallel for schedule(static))
        for (int64_t r = 0; r < BT; r++)
            row_backward(dinp + r * F, NULL, dout + r * F, pre + r * F, F, 0);
        return;
    }
    /* columns [j0, j1) of every row, rows in order: the bias sum of each
     * column is the serial one; j0 is a multiple of KD_VL, so the blocks
     * and the tail are those of the whole row */
    KD_OMP_TEAM(nt, parallel)
    {
        int64_t j0, j1;
        threads_split(F, threads_count(), threads_id(), KD_VL, &j0, &j1);
        if (j1 > j0)
            for (int64_t r = 0; r < BT; r++)
                row_backward(dinp + r * F + j0, dbias + j0, dout + r * F + j0,
                             pre + r * F + j0, j1 - j0, 1);
    }
}
