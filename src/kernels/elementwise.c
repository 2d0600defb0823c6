/* elementwise.c: tanh and residual add, forward and backward (kernels
 * layer). tanh runs on (B,C) pooler inputs only, so libm's tanhf per element
 * is fine; the residual add is on (B,T,C) and is vectorised. */
#include "kd/kernels/elementwise.h"
#include "kd/kernels/vecmath.h"

#include <math.h>

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

void residual_forward(float *out, const float *a, const float *b, int64_t N)
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

void residual_backward(float *da, float *db, const float *dout, int64_t N)
{
    if (da)
        kd_add_inplace(da, dout, N);
    if (db)
        kd_add_inplace(db, dout, N);
}
