/* layernorm.c: LayerNorm forward and backward (kernels layer).
 *
 * Forward uses two passes per row (mean, then the centred sum of squares):
 * with eps = 1e-12 the one-pass E[x^2] - E[x]^2 form would lose the
 * variance of rows with a large mean to cancellation (see row_moments).
 * Backward follows the standard closed form (see layernorm.h), one row at a
 * time so the row stays in L1 between its passes.
 *
 * Threads (threads.h): rows are independent, so the forward and the input
 * gradient split the rows. The weight and bias gradients are sums over rows;
 * with more than one thread they are computed in a second pass split by
 * columns, each column summed in row order with the same expressions as
 * the fused serial pass, so the result is the serial one bit for bit. */
#include "kd/kernels/layernorm.h"
#include "kd/kernels/threads.h"
#include "kd/kernels/vecmath.h"

#include <math.h>
#include <stddef.h>

/* Elements per thread below which a pass stays on one thread (~10 us). */
#define LN_GRAIN 16384

/* Normalise one row: out = (x - m) * s * w + b, s = rstd. out may alias
 * inp, hence the in-place variant below (restrict would otherwise be a
 * false promise and -O2 vectorisation needs it). */
static inline __attribute__((always_inline)) void
row_norm(float *restrict out, const float *restrict inp, const float *restrict w,
         const float *restrict b, float m, float s, int64_t C)
{
    int64_t i = 0;
    for (; i + KD_VL <= C; i += KD_VL)
        for (int k = 0; k < KD_VL; k++)
            out[i + k] = (inp[i + k] - m) * s * w[i + k] + b[i + k];
    for (; i < C; i++)
        out[i] = (inp[i] - m) * s * w[i] + b[i];
}

static void row_norm_inplace(float *restrict x, const float *restrict w,
                             const float *restrict b, float m, float s, int64_t C)
{
    int64_t i = 0;
    for (; i + KD_VL <= C; i += KD_VL)
        for (int k = 0; k < KD_VL; k++)
            x[i + k] = (x[i + k] - m) * s * w[i + k] + b[i + k];
    for (; i < C; i++)
        x[i] = (x[i] - m) * s * w[i] + b[i];
}

/* Mean and biased variance of a row, two passes:
 *   1. m = x0 + sum(x - x0)/C: shifting by the first element keeps the
 *      partial sums small, so a row with a large mean does not lose the
 *      digits of its spread to the sum's rounding;
 *   2. var = (sum d^2 - (sum d)^2 / C) / C with d = x - m: the second term
 *      removes the first-order error of the rounded mean. */
static void row_moments(const float *restrict x, int64_t C, float *mean, float *var)
{
    const float x0 = x[0];
    float acc[KD_VL] = {0};
    int64_t i = 0;
    for (; i + KD_VL <= C; i += KD_VL)
        for (int k = 0; k < KD_VL; k++)
            acc[k] += x[i + k] - x0;
    float s = 0.0f;
    for (int k = 0; k < KD_VL; k++)
        s += acc[k];
    for (; i < C; i++)
        s += x[i] - x0;
    const float m = x0 + s / (float)C;

    float a1[KD_VL] = {0}, a2[KD_VL] = {0};
    i = 0;
    for (; i + KD_VL <= C; i += KD_VL)
        for (int k = 0; k < KD_VL; k++) {
            float d = x[i + k] - m;
            a1[k] += d;
            a2[k] += d * d;
        }
    float s1 = 0.0f, s2 = 0.0f;
    for (int k = 0; k < KD_VL; k++) {
        s1 += a1[k];
        s2 += a2[k];
    }
    for (; i < C; i++) {
        float d = x[i] - m;
        s1 += d;
        s2 += d * d;
    }
    float v = (s2 - s1 * s1 / (float)C) / (float)C;
    *mean = m;
    *var = v > 0.0f ? v : 0.0f;
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int64_t BT,
                       int64_t C, float eps)
{
    if (C <= 0)
        return;
    const int nt = threads_team(BT * C, LN_GRAIN);
    KD_OMP_TEAM(nt, parallel for schedule(static))
    for (int64_t r = 0; r < BT; r++) {
        const float *x = inp + r * C;
        float m, var;
        row_moments(x, C, &m, &var); /* biased variance, as PyTorch */
        float s = 1.0f / sqrtf(var + eps);
        if (out + r * C == x)
            row_norm_inplace(out + r * C, weight, bias, m, s, C);
        else
            row_norm(out + r * C, x, weight, bias, m, s, C);
        mean[r] = m;
        rstd[r] = s;
    }
}

/* Row-wise backward. With xhat = (x - m) * s and g = dy * w, the input
 * gradient of y = w * xhat + b is
 *     dx = s * (g - mean(g) - xhat * mean(g * xhat))
 * (the two mean terms are the gradients through m and through s). The two
 * row means come from one fused pass, in which dweight += dy * xhat and
 * dbias += dy accumulate too; a second pass writes dx. */
static inline __attribute__((always_inline)) void
row_backward(float *restrict dinp, float *restrict dw, float *restrict db,
             const float *restrict dy, const float *restrict x,
             const float *restrict w, float m, float s, int64_t C,
             const int want_dinp, const int want_dw, const int want_db)
{
    /* pass 1: sums of g = dy*w and g*xhat over the row; parameter grads */
    float acc_g[KD_VL] = {0}, acc_gx[KD_VL] = {0};
    int64_t i = 0;
    for (; i + KD_VL <= C; i += KD_VL)
        for (int k = 0; k < KD_VL; k++) {
            float xhat = (x[i + k] - m) * s;
            float g = dy[i + k] * w[i + k];
            acc_g[k] += g;
            acc_gx[k] += g * xhat;
            if (want_dw)
                dw[i + k] += dy[i + k] * xhat;
            if (want_db)
                db[i + k] += dy[i + k];
        }
    float sum_g = 0.0f, sum_gx = 0.0f;
    for (int k = 0; k < KD_VL; k++) {
        sum_g += acc_g[k];
        sum_gx += acc_gx[k];
    }
    for (; i < C; i++) {
        float xhat = (x[i] - m) * s;
        float g = dy[i] * w[i];
        sum_g += g;
        sum_gx += g * xhat;
        if (want_dw)
            dw[i] += dy[i] * xhat;
        if (want_db)
            db[i] += dy[i];
    }
    if (!want_dinp)
        return;
    /* pass 2: dx = rstd * (g - mean(g) - xhat * mean(g*xhat)) */
    const float mg = sum_g / (float)C, mgx = sum_gx / (float)C;
    i = 0;
    for (; i + KD_VL <= C; i += KD_VL)
        for (int k = 0; k < KD_VL; k++) {
            float xhat = (x[i + k] - m) * s;
            dinp[i + k] += s * (dy[i + k] * w[i + k] - mg - xhat * mgx);
        }
    for (; i < C; i++) {
        float xhat = (x[i] - m) * s;
        dinp[i] += s * (dy[i] * w[i] - mg - xhat * mgx);
    }
}

/* dw (C) += dy * xhat and db (C) += dy over rows [0, BT), columns [j0, j1)
 * only; either may be NULL. Same expressions and the same KD_VL blocks as
 * pass 1 of row_backward when j0 is a multiple of KD_VL. */
static inline __attribute__((always_inline)) void
cols_param_grads(float *restrict dw, float *restrict db, const float *restrict dout,
                 const float *restrict inp, const float *restrict mean,
                 const float *restrict rstd, int64_t BT, int64_t C, int64_t j0, int64_t j1,
                 const int want_dw, const int want_db)
{
    for (int64_t r = 0; r < BT; r++) {
        const float *dy = dout + r * C, *x = inp + r * C;
        const float m = mean[r], s = rstd[r];
        int64_t i = j0;
        for (; i + KD_VL <= j1; i += KD_VL)
            for (int k = 0; k < KD_VL; k++) {
                float xhat = (x[i + k] - m) * s;
                if (want_dw)
                    dw[i + k] += dy[i + k] * xhat;
                if (want_db)
                    db[i + k] += dy[i + k];
            }
        for (; i < j1; i++) {
            float xhat = (x[i] - m) * s;
            if (want_dw)
                dw[i] += dy[i] * xhat;
            if (want_db)
                db[i] += dy[i];
        }
    }
}

/* The serial backward: one fused pass per row. */
static void backward_serial(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *mean, const float *rstd,
                            const float *weight, int64_t BT, int64_t C)
{
    for (int64_t r = 0; r < BT; r++) {
        float *dx = dinp ? dinp + r * C : NULL;
        const float *dy = dout + r * C, *x = inp + r * C;
        /* specialise on which gradients are wanted (the common cases) */
        if (dx && dweight && dbias)
            row_backward(dx, dweight, dbias, dy, x, weight, mean[r], rstd[r], C, 1, 1, 1);
        else if (dx && !dweight && !dbias)
            row_backward(dx, NULL, NULL, dy, x, weight, mean[r], rstd[r], C, 1, 0, 0);
        else
            row_backward(dx, dweight, dbias, dy, x, weight, mean[r], rstd[r], C,
                         dx != NULL, dweight != NULL, dbias != NULL);
    }
}

void layernorm_backward(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp, const float *mean,
                        const float *rstd, const float *weight, int64_t BT,
                        int64_t C)
{
    if (C <= 0)
        return;
    const int nt = threads_team(BT * C, LN_GRAIN);
    if (nt <= 1) {
        backward_serial(dinp, dweight, dbias, dout, inp, mean, rstd, weight, BT, C);
        return;
    }
    /* each thread: its rows' input gradients, then its columns' parameter
     * gradients (the two write different tensors: no barrier needed) */
    KD_OMP_TEAM(nt, parallel)
    {
        const int nth = threads_count(), id = threads_id();
        if (dinp) {
            int64_t r0, r1;
            threads_split(BT, nth, id, 1, &r0, &r1);
            for (int64_t r = r0; r < r1; r++)
                row_backward(dinp + r * C, NULL, NULL, dout + r * C, inp + r * C, weight,
                             mean[r], rstd[r], C, 1, 0, 0);
        }
        int64_t j0, j1;
        threads_split(C, nth, id, KD_VL, &j0, &j1);
        if (dweight && dbias)
            cols_param_grads(dweight, dbias, dout, inp, mean, rstd, BT, C, j0, j1, 1, 1);
        else if (dweight || dbias)
            cols_param_grads(dweight, dbias, dout, inp, mean, rstd, BT, C, j0, j1,
                             dweight != NULL, dbias != NULL);
    }
}
