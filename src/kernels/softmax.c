/* softmax.c: masked, numerically stable softmax (kernels layer).
 * Each row is done in place in three vectorised passes: (1) add the bias
 * and find the max over attendable keys, (2) exponentiate relative to the
 * max (so no term exceeds 1 and the sum cannot overflow) and sum, (3) scale
 * by 1/sum.
 *
 * Backward: with p = softmax(x), dp/dx = diag(p) - p p^T, so
 *     dx = p * (dp - <p, dp>)
 * one dot product and one pass per row; the Jacobian is never formed.
 *
 * Threads (threads.h): rows are independent and are split over the team.
 * Attention calls softmax_row_forward from its own (b,h) loop instead. */
#include "kd/kernels/softmax.h"
#include "kd/core/error.h"
#include "kd/kernels/threads.h"
#include "kd/kernels/vecmath.h"

#include <math.h>
#include <string.h>

/* Elements per thread below which the work stays on one thread. */
#define SOFTMAX_GRAIN 16384

/* Passes 1-3 for one row; the mask flags are constants at every call site
 * so each of the four instances vectorises without per-element branches. */
static inline __attribute__((always_inline)) void
row_softmax(float *restrict x, const int32_t *restrict keep,
            const float *restrict bias, int64_t N, const int has_keep,
            const int has_bias)
{
    /* pass 1: biased logits and their max over kept keys */
    float macc[KD_VL];
    for (int k = 0; k < KD_VL; k++)
        macc[k] = -INFINITY;
    int64_t i = 0;
    for (; i + KD_VL <= N; i += KD_VL)
        for (int k = 0; k < KD_VL; k++) {
            float v = has_bias ? x[i + k] + bias[i + k] : x[i + k];
            if (has_bias)
                x[i + k] = v;
            int use = has_keep ? keep[i + k] != 0 && v > macc[k] : v > macc[k];
            macc[k] = use ? v : macc[k];
        }
    float m = -INFINITY;
    for (int k = 0; k < KD_VL; k++)
        m = macc[k] > m ? macc[k] : m;
    for (; i < N; i++) {
        float v = has_bias ? x[i] + bias[i] : x[i];
        if (has_bias)
            x[i] = v;
        if ((!has_keep || keep[i] != 0) && v > m)
            m = v;
    }
    if (m == -INFINITY) {
        /* nothing to attend to: a zero row instead of 0/0 */
        memset(x, 0, (size_t)N * sizeof(float));
        return;
    }
    /* pass 2: e = exp(v - m) on kept keys, exactly 0 on padded ones. exp is
     * evaluated on padded keys too (branch-free) and then discarded, so
     * garbage there (NaN, inf) cannot reach the output. */
    float sacc[KD_VL] = {0};
    i = 0;
    for (; i + KD_VL <= N; i += KD_VL)
        for (int k = 0; k < KD_VL; k++) {
            float e = kd_expf(x[i + k] - m);
            if (has_keep)
                e = keep[i + k] != 0 ? e : 0.0f;
            x[i + k] = e;
            sacc[k] += e;
        }
    float sum = 0.0f;
    for (int k = 0; k < KD_VL; k++)
        sum += sacc[k];
    for (; i < N; i++) {
        float e = kd_expf(x[i] - m);
        if (has_keep)
            e = keep[i] != 0 ? e : 0.0f;
        x[i] = e;
        sum += e;
    }
    /* pass 3: normalise; sum >= 1 because the max term is exp(0) */
    const float inv = 1.0f / sum;
    i = 0;
    for (; i + KD_VL <= N; i += KD_VL)
        for (int k = 0; k < KD_VL; k++)
            x[i + k] *= inv;
    for (; i < N; i++)
        x[i] *= inv;
}

void softmax_row_forward(float *x, const int32_t *keep, const float *bias, int64_t N)
{
    if (keep && bias)
        row_softmax(x, keep, bias, N, 1, 1);
    else if (keep)
        row_softmax(x, keep, NULL, N, 1, 0);
    else if (bias)
        row_softmax(x, NULL, bias, N, 0, 1);
    else
        row_softmax(x, NULL, NULL, N, 0, 0);
}

void softmax_forward(float *probs, const float *inp, const int32_t *key_keep,
                     const float *key_bias, int64_t R, int64_t N,
                     int64_t rows_per_mask)
{
    if (R <= 0 || N <= 0)
        return;
    KD_ASSERT(!(key_keep || key_bias) || rows_per_mask >= 1,
              "rows_per_mask %lld with a mask", (long long)rows_per_mask);
    /* one in-place row routine serves both forms; the copy is cheap next to
     * the exponentials */
    const int nt = threads_team(R * N, SOFTMAX_GRAIN);
    KD_OMP_TEAM(nt, parallel for schedule(static))
    for (int64_t r = 0; r < R; r++) {
        if (probs != inp)
            memcpy(probs + r * N, inp + r * N, (size_t)N * sizeof(float));
        int64_t mr = (key_keep || key_bias) ? r / rows_per_mask : 0;
        softmax_row_forward(probs + r * N, key_keep ? key_keep + mr * N : NULL,
                            key_bias ? key_bias + mr * N : NULL, N);
    }
}

/* dx += p * (dp - <p, dp>) for one row */
static void row_backward(float *restrict dx, const float *restrict dp,
                         const float *restrict p, int64_t N)
{
    const float dot = kd_dot(p, dp, N);
    int64_t i = 0;
    for (; i + KD_VL <= N; i += KD_VL)
        for (int k = 0; k < KD_VL; k++)
            dx[i + k] += p[i + k] * (dp[i + k] - dot);
    for (; i < N; i++)
        dx[i] += p[i] * (dp[i] - dot);
}

void softmax_backward(float *dinp, const float *dprobs, const float *probs,
                      int64_t R, int64_t N)
{
    const int nt = threads_team(R * N, SOFTMAX_GRAIN);
    KD_OMP_TEAM(nt, parallel for schedule(static))
    for (int64_t r = 0; r < R; r++)
        row_backward(dinp + r * N, dprobs + r * N, probs + r * N, N);
}
