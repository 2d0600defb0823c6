/* h5_float.c: the fp16 and bf16 HDF5 float types and our conversions to
 * and from fp32, round to nearest even (io layer). HDF5 1.10 has no native
 * half type and a parallel write through filters must not convert, so the
 * store converts here and hands HDF5 the file type as the memory type
 * (DESIGN 4). F16C and AVX2 are used when the CPU has them (checked at run
 * time, so a build without -march=native still uses them); the scalar code
 * gives the same bits and handles the tails. */
#include "kd/io/h5.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define KD_H5_X86 1
#endif

/* ---- reduced-precision float types ---------------------------------------- */

const char *h5_prec_name(enum h5_prec p)
{
    switch (p) {
    case H5_PREC_F32: return "fp32";
    case H5_PREC_F16: return "fp16";
    case H5_PREC_BF16: return "bf16";
    }
    return "?";
}

int h5_prec_parse(const char *name, enum h5_prec *p, struct kd_err *err)
{
    static const enum h5_prec all[] = {H5_PREC_F32, H5_PREC_F16, H5_PREC_BF16};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(name, h5_prec_name(all[i])) == 0) {
            *p = all[i];
            return 0;
        }
    return kd_errf(err, "precision: expected fp32, fp16 or bf16, got \"%s\"", name);
}

size_t h5_prec_size(enum h5_prec p) { return p == H5_PREC_F32 ? 4 : 2; }

hid_t h5_prec_type(enum h5_prec p, struct kd_err *err)
{
    hid_t t = H5I_INVALID_HID, out = H5I_INVALID_HID;
    H5_CHECK(err, t = H5Tcopy(H5T_IEEE_F32LE), "%s type", h5_prec_name(p));
    if (p == H5_PREC_F16 || p == H5_PREC_BF16) {
        /* Fields first (they must fit the current 32-bit size), then shrink
         * to 2 bytes, then the exponent bias. */
        size_t ebits = p == H5_PREC_F16 ? 5 : 8, mbits = p == H5_PREC_F16 ? 10 : 7;
        H5_CHECK(err, H5Tset_fields(t, 15, mbits, ebits, 0, mbits), "%s fields",
                 h5_prec_name(p));
        H5_CHECK(err, H5Tset_size(t, 2), "%s size", h5_prec_name(p));
        H5_CHECK(err, H5Tset_ebias(t, p == H5_PREC_F16 ? 15 : 127), "%s bias",
                 h5_prec_name(p));
    }
    out = t;
    t = H5I_INVALID_HID;
done:
    h5_close_any(&t);
    return out;
}

int h5_prec_of_type(hid_t type, enum h5_prec *p, struct kd_err *err)
{
    if (H5Tget_class(type) != H5T_FLOAT)
        return kd_errf(err, "expected a float type (fp32, fp16 or bf16), got another class");
    size_t size = H5Tget_size(type), spos, epos, esize, mpos, msize;
    if (H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0)
        return h5_fail(err, "H5Tget_fields()", "float type");
    size_t ebias = H5Tget_ebias(type);
    H5T_order_t order = H5Tget_order(type);
    if (order == H5T_ORDER_LE) {
        if (size == 4 && esize == 8 && msize == 23 && ebias == 127) {
            *p = H5_PREC_F32;
            return 0;
        }
        if (size == 2 && spos == 15 && esize == 5 && msize == 10 && ebias == 15) {
            *p = H5_PREC_F16;
            return 0;
        }
        if (size == 2 && spos == 15 && esize == 8 && msize == 7 && ebias == 127) {
            *p = H5_PREC_BF16;
            return 0;
        }
    }
    return kd_errf(err, "expected fp32, fp16 or bf16 (little-endian), got a float of %zu "
                   "bytes with %zu exponent and %zu mantissa bits", size, esize, msize);
}

/* ---- conversions ------------------------------------------------------------ */

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* binary32 -> binary16, round to nearest even. */
static inline uint16_t f16_from_f32(float f)
{
    uint32_t x = f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    uint32_t h;
    if (ax > 0x7f800000u) {                 /* NaN: keep it quiet */
        h = 0x7e00u | ((ax >> 13) & 0x3ffu);
    } else if (ax >= 0x477ff000u) {         /* >= 65520 rounds to Inf */
        h = 0x7c00u;
    } else if (ax < 0x38800000u) {          /* below 2^-14: subnormal or 0 */
        /* The subnormal unit is 2^-24; scaling by 2^24 is exact, and lrintf
         * rounds to nearest even in the default rounding mode. A result of
         * 1024 is exactly the smallest normal's encoding. */
        h = (uint32_t)lrintf(bits_f32(ax) * 0x1p24f);
    } else {
        /* Rebias the exponent (127 -> 15) and drop 13 mantissa bits with
         * round-half-even; a carry into the exponent is the correct result. */
        uint32_t r = ax + 0x0fffu + ((ax >> 13) & 1u);
        h = (r - (112u << 23)) >> 13;
    }
    return (uint16_t)(sign | h);
}

static inline float f32_from_f16(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) /* zero or subnormal: m * 2^-24, exact in binary32 */
        return bits_f32(sign | f32_bits((float)m * 0x1p-24f));
    if (e == 31)
        return bits_f32(sign | 0x7f800000u | (m << 13));
    return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

#ifdef KD_H5_X86
__attribute__((target("avx,f16c"))) static size_t f32_to_f16_f16c(uint16_t *dst,
                                                                  const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(src + i);
        __m128i h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(dst + i), h);
    }
    return i;
}

__attribute__((target("avx,f16c"))) static size_t f16_to_f32_f16c(float *dst,
                                                                  const uint16_t *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(src + i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
    return i;
}

static int have_f16c(void)
{
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
    }
    return known;
}
#endif

void h5_f32_to_f16(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
#ifdef KD_H5_X86
    /* The hardware conversion rounds to nearest even and handles
     * subnormals and overflow exactly like the scalar code below. */
    if (have_f16c())
        i = f32_to_f16_f16c(dst, src, n);
#endif
    for (; i < n; i++)
        dst[i] = f16_from_f32(src[i]);
}

void h5_f16_to_f32(float *dst, const uint16_t *src, size_t n)
{
    size_t i = 0;
#ifdef KD_H5_X86
    if (have_f16c())
        i = f16_to_f32_f16c(dst, src, n);
#endif
    for (; i < n; i++)
        dst[i] = f32_from_f16(src[i]);
}

#ifdef KD_H5_X86
/* 16 values per step; the same bits as the scalar loop below. */
__attribute__((target("avx2"))) static size_t f32_to_bf16_avx2(uint16_t *dst,
                                                              const float *src, size_t n)
{
    const __m256i one = _mm256_set1_epi32(1), half = _mm256_set1_epi32(0x7fff);
    const __m256i abs = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    const __m256i quiet = _mm256_set1_epi32(0x00400000);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i v[2];
        for (int k = 0; k < 2; k++) {
            __m256i x = _mm256_castps_si256(_mm256_loadu_ps(src + i + 8 * k));
            __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), one);
            __m256i r = _mm256_add_epi32(_mm256_add_epi32(x, half), lsb);
            __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(x, abs), inf);
            __m256i q = _mm256_or_si256(x, quiet);
            v[k] = _mm256_srli_epi32(_mm256_blendv_epi8(r, q, nan), 16);
        }
        /* packus interleaves 128-bit halves; restore the order */
        __m256i h = _mm256_permute4x64_epi64(_mm256_packus_epi32(v[0], v[1]), 0xd8);
        _mm256_storeu_si256((__m256i *)(dst + i), h);
    }
    return i;
}

__attribute__((target("avx2"))) static size_t bf16_to_f32_avx2(float *dst,
                                                              const uint16_t *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_slli_epi32(w, 16));
    }
    return i;
}

static int have_avx2(void)
{
    static int known = -1;
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2");
    }
    return known;
}
#endif

void h5_f32_to_bf16(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
#ifdef KD_H5_X86
    if (have_avx2())
        i = f32_to_bf16_avx2(dst, src, n);
#endif
    /* Keep the top 16 bits after adding 0x7fff plus the lowest kept bit
     * (round half to even); overflow of the largest finite values carries
     * into Inf as it should. NaN keeps its top bits with the quiet bit set. */
    for (; i < n; i++) {
        uint32_t x = f32_bits(src[i]);
        uint32_t r = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
        uint32_t q = (x >> 16) | 0x40u;
        dst[i] = (uint16_t)((x & 0x7fffffffu) > 0x7f800000u ? q : r);
    }
}

void h5_bf16_to_f32(float *dst, const uint16_t *src, size_t n)
{
    size_t i = 0;
#ifdef KD_H5_X86
    if (have_avx2())
        i = bf16_to_f32_avx2(dst, src, n);
#endif
    for (; i < n; i++)
        dst[i] = bits_f32((uint32_t)src[i] << 16);
}

void h5_f32_to_prec(enum h5_prec p, void *dst, const float *src, size_t n)
{
    switch (p) {
    case H5_PREC_F32: memcpy(dst, src, n * sizeof(float)); break;
    case H5_PREC_F16: h5_f32_to_f16(dst, src, n); break;
    case H5_PREC_BF16: h5_f32_to_bf16(dst, src, n); break;
    }
}

void h5_prec_to_f32(enum h5_prec p, float *dst, const void *src, size_t n)
{
    switch (p) {
    case H5_PREC_F32: memcpy(dst, src, n * sizeof(float)); break;
    case H5_PREC_F16: h5_f16_to_f32(dst, src, n); break;
    case H5_PREC_BF16: h5_bf16_to_f32(dst, src, n); break;
    }
}
