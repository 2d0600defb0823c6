/* elementwise.c: tanh and residual add, forward and backward, and a
 * parallel clear (kernels layer). tanh runs on (B,C) pooler inputs only, so libm's tanhf per element
 * is fine and it stays serial; the residual add is on (B,T,C), vectorised
 * and split over the team (threads.h) in KD_VL-aligned pieces. */
#include "kd/kernels/elementwise.h"
#include "kd/kernels/threads.h"
#include "kd/kernels/vecmath.h"

#include <math.h>
#include <string.h>

/* Elements per thread below which an add stays on one thread: an add is
 * memory-bound, ~0.1 ns per element. */
#define ADD_GRAIN 32768

void tanh_forward(float *out, const float *inp, int64_t N)
{
    for (int64_t i = 0; i < N; i++)
        out[i] = tanhf(inp[i]);
}

void tanh_backward(float *dinp, const float *dout, const float *out, int64_t N)
{
    /* d tanh(x)/dx = 1 - tanh(x)^2 */
    for (int64_t i = 0; i < N; i++)
        dinp[i] += dout[i] * (1.0f - out[i] * out[i]);
}

/* out = a + b with no aliasing */
static void add3(float *restrict out, const float *restrict a, const float *restrict b,
                 int64_t N)
{
    int64_t i = 0;
    for (; i + KD_VL <= N; i += KD_VL)
        for (int k = 0; k < KD_VL; k++)
            out[i + k] = a[i + k] + b[i + k];
    for (; i < N; i++)
        out[i] = a[i] + b[i];
}

/* residual_forward on elements [0, N) of its operands */
static void residual_range(float *out, const float *a, const float *b, int64_t N)
{
    /* in-place forms go through the two-operand add so every loop keeps
     * restrict pointers (needed to vectorise at -O2) */
    if (out == a && out == b) {
        for (int64_t i = 0; i < N; i++)
            out[i] += out[i];
    } else if (out == a) {
        kd_add_inplace(out, b, N);
    } else if (out == b) {
        kd_add_inplace(out, a, N);
    } else {
        add3(out, a, b, N);
    }
}

void residual_forward(float *out, const float *a, const float *b, int64_t N)
{
    const int nt = threads_team(N, ADD_GRAIN);
    KD_OMP_TEAM(nt, parallel)
    {
        int64_t lo, hi;
        threads_split(N, threads_count(), threads_id(), KD_VL, &lo, &hi);
        if (hi > lo)
            residual_range(out + lo, a + lo, b + lo, hi - lo);
    }
}

void residual_backward(float *da, float *db, const float *dout, int64_t N)
{
    const int nt = threads_team(N, ADD_GRAIN);
    KD_OMP_TEAM(nt, parallel)
    {
        int64_t lo, hi;
        threads_split(N, threads_count(), threads_id(), KD_VL, &lo, &hi);
        if (da && hi > lo)
            kd_add_inplace(da + lo, dout + lo, hi - lo);
        if (db && hi > lo)
            kd_add_inplace(db + lo, dout + lo, hi - lo);
    }
}

void zero_floats(float *x, int64_t N)
{
    if (N <= 0)
        return;
    const int nt = threads_team(N, ADD_GRAIN * 4);
    KD_OMP_TEAM(nt, parallel)
    {
        int64_t lo, hi;
        threads_split(N, threads_count(), threads_id(), KD_VL, &lo, &hi);
        if (hi > lo)
            memset(x + lo, 0, (size_t)(hi - lo) * sizeof *x);
    }
}
