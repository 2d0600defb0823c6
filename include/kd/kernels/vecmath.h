/* vecmath.h: small inline helpers the kernels use in their inner loops
 * (kernels layer; internal to src/kernels/, not an API for models).
 *
 * Why this exists: the project builds with -O2, where GCC 12 only vectorises
 * a loop whose trip count is a known multiple of the vector width (the
 * "very cheap" cost model), and glibc's expf is an opaque call that blocks
 * vectorisation altogether. So:
 *   - loops over a row run in blocks of KD_VL elements with a constant inner
 *     trip count, followed by a scalar tail;
 *   - reductions keep KD_VL partial sums (no reassociation needed, so the
 *     result is deterministic and identical with or without vectorisation);
 *   - kd_expf is a branch-free exp the compiler can inline and vectorise.
 */
#ifndef KD_KERNELS_VECMATH_H
#define KD_KERNELS_VECMATH_H

#include <math.h>
#include <stdint.h>

/* Block width of vectorised loops: two AVX2 or one AVX-512 register of fp32. */
#define KD_VL 16

/* a*b + c. The build is ISO C (-std=c11), where GCC does not contract
 * a*b + c into FMA instructions, and the polynomials below are latency-bound
 * chains that run about twice as fast fused. fmaf is expanded inline when
 * the target has FMA (x86-64-v3 and -march=native on any recent x86);
 * elsewhere it would be a slow library call, so fall back to mul + add. */
#if defined(__FMA__) || defined(__aarch64__)
#define KD_FMA(a, b, c) fmaf((a), (b), (c))
#else
#define KD_FMA(a, b, c) ((a) * (b) + (c))
#endif

/* exp(x) in fp32, max error about 2 ulp over the normal range, exactly 0 for
 * x < -87.33 (where expf would go subnormal) and finite (about 1.6e38) for
 * x > 88.
 * Method (Cephes expf): x = n*ln2 + r with |r| <= ln2/2 (Cody-Waite split of
 * ln2), exp(r) by a degree-7 polynomial, 2^n assembled in the exponent bits.
 * Rounding to the nearest integer uses the 1.5*2^23 trick instead of
 * rintf, which GCC does not vectorise at -O2. */
static inline float kd_expf(float x)
{
    float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = KD_FMA(n, -0.693359375f, xc);
    r = KD_FMA(n, 2.12194440e-4f, r); /* ln2 = 0.693359375 - 2.12194440e-4 */
    float p = 1.9875691500e-4f;
    p = KD_FMA(p, r, 1.3981999507e-3f);
    p = KD_FMA(p, r, 8.3334519073e-3f);
    p = KD_FMA(p, r, 4.1665795894e-2f);
    p = KD_FMA(p, r, 1.6666665459e-1f);
    p = KD_FMA(p, r, 5.0000001201e-1f);
    p = KD_FMA(p, r * r, r + 1.0f);
    union {
        int32_t i;
        float f;
    } s = {.i = ((int32_t)n + 127) << 23};
    float y = p * s.f;
    return x < -87.33f ? 0.0f : y;
}

/* erfc(a) for a >= 0 in fp32, branch-free so it vectorises (~1.5 ns per
 * element here; glibc's erff costs ~15 ns on random input, which would add
 * half the time of BERT-base's FFN matmuls to the GELU).
 * Form: erfc(a) = t * exp(-a^2 + P(t)), t = 2/(2+a), the classical
 * Chebyshev-style representation in which P is smooth on t in (0,1] and
 * P(0) = -log(2*sqrt(pi)). P is a degree-10 polynomial in s = t - 0.585
 * whose coefficients were fitted for kd_hpc by iteratively reweighted least
 * squares (near-minimax) against double-precision erfc on t in [0.17, 1],
 * i.e. a in [0, 9.8]; beyond that exp underflows to 0 anyway. Max error of
 * P: 3.5e-8 absolute, so erfc has ~1e-7 relative error, plus the rounding
 * of the exponent P - a^2 (grows to 4e-6 relative at a = 8, where erfc is
 * 1e-29). */
static inline float kd_erfc_pos(float a)
{
    float t = 2.0f / (2.0f + a);
    float s = t - 0.585f;
    float p = -1.403939128e-01f;
    p = KD_FMA(p, s, 1.435482651e-01f);
    p = KD_FMA(p, s, 1.431244761e-01f);
    p = KD_FMA(p, s, -2.435249835e-01f);
    p = KD_FMA(p, s, -5.528157949e-02f);
    p = KD_FMA(p, s, 2.947173119e-01f);
    p = KD_FMA(p, s, -3.224982321e-02f);
    p = KD_FMA(p, s, -4.076230824e-01f);
    p = KD_FMA(p, s, 8.865447342e-02f);
    p = KD_FMA(p, s, 1.369035959e+00f);
    p = KD_FMA(p, s, -5.563138723e-01f);
    return t * kd_expf(KD_FMA(-a, a, p)); /* fused: a*a is not rounded */
}

/* Standard normal CDF Phi(x) = 0.5 * erfc(-x / sqrt(2)). For x < 0 it is
 * computed from the tail directly, without the cancellation of
 * 0.5 * (1 + erf(x / sqrt(2))) that costs the textbook form most of its
 * digits below x = -3. */
static inline float kd_normal_cdf(float x)
{
    float q = 0.5f * kd_erfc_pos(fabsf(x) * 0.707106781186547524f);
    return x >= 0.0f ? 1.0f - q : q;
}

/* Dot product of x and y over [0, n): KD_VL partial sums, then a
 * fixed-order combine, so the result does not depend on vectorisation. */
static inline float kd_dot(const float *restrict x, const float *restrict y, int64_t n)
{
    float acc[KD_VL] = {0};
    int64_t i = 0;
    for (; i + KD_VL <= n; i += KD_VL)
        for (int k = 0; k < KD_VL; k++)
            acc[k] += x[i + k] * y[i + k];
    float s = 0.0f;
    for (int k = 0; k < KD_VL; k++)
        s += acc[k];
    for (; i < n; i++)
        s += x[i] * y[i];
    return s;
}

/* Maximum of x[0..n); -INFINITY for n == 0. NaN inputs are skipped, which
 * is fine for the callers (they check for NaN elsewhere, in the tests). */
static inline float kd_max(const float *restrict x, int64_t n)
{
    float acc[KD_VL];
    for (int k = 0; k < KD_VL; k++)
        acc[k] = -INFINITY;
    int64_t i = 0;
    for (; i + KD_VL <= n; i += KD_VL)
        for (int k = 0; k < KD_VL; k++)
            acc[k] = x[i + k] > acc[k] ? x[i + k] : acc[k];
    float m = -INFINITY;
    for (int k = 0; k < KD_VL; k++)
        m = acc[k] > m ? acc[k] : m;
    for (; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return m;
}

/* y[0..n) += x[0..n) */
static inline void kd_add_inplace(float *restrict y, const float *restrict x, int64_t n)
{
    int64_t i = 0;
    for (; i + KD_VL <= n; i += KD_VL)
        for (int k = 0; k < KD_VL; k++)
            y[i + k] += x[i + k];
    for (; i < n; i++)
        y[i] += x[i];
}

#endif
