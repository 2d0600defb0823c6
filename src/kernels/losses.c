/* losses.c: cross-entropy and MSE (kernels layer). Row reductions run in
 * fp32 with blocked accumulators (vecmath.h); the scalar loss is summed in
 * double over rows so a large batch does not lose its last digits.
 *
 * Cross-entropy of row n with target t, z = logits[n,:]:
 *     l_n = -log softmax(z)_t = lse(z) - z_t,   lse(z) = log sum_k exp(z_k)
 *     dl_n/dz_k = softmax(z)_k - [k == t] = exp(z_k - lse(z)) - [k == t]
 * and the mean over the n_valid non-ignored rows scales each by 1/n_valid
 * (PyTorch's reduction="mean" with ignore_index). */
#include "kd/kernels/losses.h"
#include "kd/core/error.h"
#include "kd/kernels/vecmath.h"

#include <math.h>

/* log(sum_k exp(x_k)) = m + log(sum_k exp(x_k - m)), m = max_k x_k: every
 * exponent is <= 0, so nothing overflows and the largest term is exactly 1. */
static float row_lse(const float *restrict x, int64_t K)
{
    const float m = kd_max(x, K);
    float acc[KD_VL] = {0};
    int64_t i = 0;
    for (; i + KD_VL <= K; i += KD_VL)
        for (int k = 0; k < KD_VL; k++)
            acc[k] += kd_expf(x[i + k] - m);
    float s = 0.0f;
    for (int k = 0; k < KD_VL; k++)
        s += acc[k];
    for (; i < K; i++)
        s += kd_expf(x[i] - m);
    return m + logf(s);
}

/* Validated target of row n, or -1 if ignored. A target outside [0,K) is a
 * data error the reader should have caught: fatal, naming the row. */
static int64_t target_at(const int32_t *targets, int64_t n, int64_t K)
{
    int64_t t = targets[n];
    if (t == LOSS_IGNORE_INDEX)
        return -1;
    KD_ASSERT(t >= 0 && t < K, "target %lld of row %lld outside [0,%lld)",
              (long long)t, (long long)n, (long long)K);
    return t;
}

double crossentropy_forward(float *lse, const float *logits, const int32_t *targets,
                            int64_t N, int64_t K)
{
    double sum = 0.0;
    int64_t valid = 0;
    for (int64_t n = 0; n < N; n++) {
        const float *x = logits + n * K;
        const int64_t t = target_at(targets, n, K);
        /* the cache is filled for ignored rows too, so it is never stale */
        const float l = row_lse(x, K);
        if (lse)
            lse[n] = l;
        if (t < 0)
            continue;
        sum += (double)l - (double)x[t];
        valid++;
    }
    return valid ? sum / (double)valid : 0.0;
}

void crossentropy_backward(float *dlogits, float dloss, const float *logits,
                           const float *lse, const int32_t *targets, int64_t N,
                           int64_t K)
{
    /* the forward's denominator, recounted: the backward must not depend on
     * state kept from the forward other than lse */
    int64_t valid = 0;
    for (int64_t n = 0; n < N; n++)
        valid += target_at(targets, n, K) >= 0;
    if (valid == 0)
        return;
    const float g = dloss / (float)valid; /* d(mean)/d(row loss) */
    for (int64_t n = 0; n < N; n++) {
        const int64_t t = target_at(targets, n, K);
        if (t < 0)
            continue;
        const float *restrict x = logits + n * K;
        float *restrict d = dlogits + n * K;
        const float l = lse ? lse[n] : row_lse(x, K);
        /* d/dx_k = softmax_k - [k == t], softmax_k = exp(x_k - lse) */
        int64_t i = 0;
        for (; i + KD_VL <= K; i += KD_VL)
            for (int k = 0; k < KD_VL; k++)
                d[i + k] += g * kd_expf(x[i + k] - l);
        for (; i < K; i++)
            d[i] += g * kd_expf(x[i] - l);
        d[t] -= g;
    }
}

double mse_forward(const float *pred, const float *target, int64_t N)
{
    if (N <= 0)
        return 0.0;
    /* in double: the loss is reported and compared across ranks and steps,
     * and hidden-state MSE sums millions of small squares */
    double sum = 0.0;
    for (int64_t i = 0; i < N; i++) {
        double e = (double)pred[i] - (double)target[i];
        sum += e * e;
    }
    return sum / (double)N;
}

void mse_backward(float *dpred, float *dtarget, float dloss, const float *pred,
                  const float *target, int64_t N)
{
    if (N <= 0)
        return;
    /* d/dp mean((p - t)^2) = 2 (p - t) / N */
    const float g = 2.0f * dloss / (float)N;
    for (int64_t i = 0; i < N; i++) {
        float e = g * (pred[i] - target[i]);
        if (dpred)
            dpred[i] += e;
        if (dtarget)
            dtarget[i] -= e;
    }
}
