/* dropout.c: counter-based inverted dropout (kernels layer). Random bits
 * are drawn in chunks of DROPOUT_CHUNK into a stack buffer (vectorised
 * Philox, see core/rng.c) and applied with a branch-free compare-select.
 *
 * Inverted dropout (Srivastava et al. 2014, as torch.nn.Dropout): kept
 * elements are scaled by 1/(1-p) at training time so that the expectation
 * of every element is unchanged and inference needs no rescaling. The
 * comparison is on the raw 32-bit word, so P(keep) = 1 - p up to 2^-32.
 *
 * Threads (threads.h): the mask of element i depends only on first + i, so
 * the elements are split over the team in whole chunks, each thread drawing
 * the bits of its own range. */
#include "kd/kernels/dropout.h"
#include "kd/core/error.h"
#include "kd/core/rng.h"
#include "kd/kernels/threads.h"
#include "kd/kernels/vecmath.h"

#include <string.h>

/* Elements per RNG chunk: 4 KiB of bits, stays in L1 with its data. */
#define DROPOUT_CHUNK 1024

/* Elements per thread below which the work stays on one thread (Philox
 * costs about a nanosecond per element). */
#define DROPOUT_GRAIN 16384

/* Keep iff bits >= threshold; P(keep) = 1 - threshold / 2^32. Rounded to
 * the nearest integer and clamped so that p close to 1 cannot wrap to 0
 * (which would keep everything). */
static uint32_t keep_threshold(float p)
{
    double t = (double)p * 4294967296.0;
    return t >= 4294967295.0 ? 4294967295u : (uint32_t)(t + 0.5);
}

/* Factor of one element: 1/(1-p) if kept, 0 if dropped. */
static inline __attribute__((always_inline)) float
factor(uint32_t bits, uint32_t thr, float scale)
{
    return bits >= thr ? scale : 0.0f;
}

/* The three operations differ only in how the factor is combined; mode is
 * a constant at each call site. 0: out = x*f (forward), 1: out += x*f
 * (backward), 2: out = f (mask). An in-place forward (out == x) goes through
 * apply_chunk_inplace instead, so both functions keep restrict pointers. */
static inline __attribute__((always_inline)) void
apply_chunk(float *restrict out, const float *restrict x,
            const uint32_t *restrict bits, uint32_t thr, float scale, int64_t n,
            const int mode)
{
    /* KD_VL blocks with a constant trip count, then a scalar tail: the form
     * GCC vectorises at -O2 (vecmath.h) */
    int64_t i = 0;
    for (; i + KD_VL <= n; i += KD_VL)
        for (int k = 0; k < KD_VL; k++) {
            float f = factor(bits[i + k], thr, scale);
            if (mode == 0)
                out[i + k] = x[i + k] * f;
            else if (mode == 1)
                out[i + k] += x[i + k] * f;
            else
                out[i + k] = f;
        }
    for (; i < n; i++) {
        float f = factor(bits[i], thr, scale);
        if (mode == 0)
            out[i] = x[i] * f;
        else if (mode == 1)
            out[i] += x[i] * f;
        else
            out[i] = f;
    }
}

static void apply_chunk_inplace(float *restrict x, const uint32_t *restrict bits,
                                uint32_t thr, float scale, int64_t n)
{
    int64_t i = 0;
    for (; i + KD_VL <= n; i += KD_VL)
        for (int k = 0; k < KD_VL; k++)
            x[i + k] *= factor(bits[i + k], thr, scale);
    for (; i < n; i++)
        x[i] *= factor(bits[i], thr, scale);
}

/* Runs `mode` over N elements in chunks, drawing the mask bits for each. */
static void run_range(float *out, const float *x, struct dropout_spec d, int64_t N, int mode)
{
    const uint32_t thr = keep_threshold(d.p);
    const float scale = 1.0f / (1.0f - d.p);
    uint32_t bits[DROPOUT_CHUNK];
    /* element i of this call is element first + i of the stream, whatever
     * the chunking, so the mask does not depend on how callers split work */
    for (int64_t i = 0; i < N; i += DROPOUT_CHUNK) {
        int64_t n = N - i < DROPOUT_CHUNK ? N - i : DROPOUT_CHUNK;
        rng_bits(bits, d.seed, d.offset, d.first + (uint64_t)i, n);
        if (mode == 0 && out == x)
            apply_chunk_inplace(out + i, bits, thr, scale, n);
        else if (mode == 0)
            apply_chunk(out + i, x + i, bits, thr, scale, n, 0);
        else if (mode == 1)
            apply_chunk(out + i, x + i, bits, thr, scale, n, 1);
        else
            apply_chunk(out + i, NULL, bits, thr, scale, n, 2);
    }
}

/* run_range over the team: thread pieces are whole DROPOUT_CHUNKs, so the
 * chunks (and their KD_VL blocks) are those of the serial loop. */
static void run(float *out, const float *x, struct dropout_spec d, int64_t N, int mode)
{
    const int nt = threads_team(N, DROPOUT_GRAIN);
    KD_OMP_TEAM(nt, parallel)
    {
        int64_t lo, hi;
        threads_split(N, threads_count(), threads_id(), DROPOUT_CHUNK, &lo, &hi);
        if (hi > lo) {
            struct dropout_spec dl = d;
            dl.first += (uint64_t)lo;
            run_range(out + lo, x ? x + lo : NULL, dl, hi - lo, mode);
        }
    }
}

void dropout_forward(float *out, const float *inp, struct dropout_spec d, int64_t N)
{
    KD_ASSERT(d.p >= 0.0f && d.p <= 1.0f, "dropout p = %g", (double)d.p);
    if (N <= 0)
        return;
    if (d.p == 0.0f) { /* identity, no RNG */
        if (out != inp)
            memcpy(out, inp, (size_t)N * sizeof(float));
        return;
    }
    if (d.p >= 1.0f) { /* drop everything; 1/(1-p) would be infinite */
        memset(out, 0, (size_t)N * sizeof(float));
        return;
    }
    run(out, inp, d, N, 0);
}

void dropout_backward(float *dinp, const float *dout, struct dropout_spec d,
                      int64_t N)
{
    KD_ASSERT(d.p >= 0.0f && d.p <= 1.0f, "dropout p = %g", (double)d.p);
    if (N <= 0 || d.p >= 1.0f)
        return; /* nothing was kept, nothing flows back */
    if (d.p == 0.0f) {
        kd_add_inplace(dinp, dout, N);
        return;
    }
    run(dinp, dout, d, N, 1);
}

void dropout_mask(float *mask, struct dropout_spec d, int64_t N)
{
    KD_ASSERT(d.p >= 0.0f && d.p <= 1.0f, "dropout p = %g", (double)d.p);
    if (N <= 0)
        return;
    if (d.p == 0.0f || d.p >= 1.0f) {
        float v = d.p == 0.0f ? 1.0f : 0.0f;
        for (int64_t i = 0; i < N; i++)
            mask[i] = v;
        return;
    }
    run(mask, NULL, d, N, 2);
}
