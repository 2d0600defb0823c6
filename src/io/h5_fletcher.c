/* h5_fletcher.c: HDF5's Fletcher32 checksum, computed fast (io layer).
 *
 * Why: every chunk of the teacher store carries a Fletcher32 word, and
 * HDF5 1.10's byte-pair loop (about 5 GB/s) cost as much as the rest of the
 * write path and most of the read path. The public API cannot replace the
 * built-in filter (H5Zregister refuses predefined filter ids), so this file
 * also defines the library's own checksum entry point,
 * H5_checksum_fletcher32, as a weak symbol: with a shared libhdf5 whose
 * filter calls it through the PLT (Debian's does), the dynamic linker binds
 * that call to this faster version; with a static or differently built
 * HDF5 the library keeps its own. The value is the same either way - it is
 * part of the file format, so files stay readable by any HDF5 and the
 * checksums written by one are accepted by the other (t_store_h5 compares
 * against a plain transcription of the definition; schema.sh and
 * store_mpi.sh read our files with h5dump/h5diff, i.e. HDF5's own code).
 *
 * The checksum HDF5 defines: the data are read as big-endian 16-bit words
 * w_0..w_{m-1} (an odd last byte b is the word b << 8), sum1 = sum of w_i
 * and sum2 = sum of (m - i) w_i, both reduced modulo 65535 by folding
 * (x & 0xffff) + (x >> 16) after every 360 words and once more at the end;
 * the result is (sum2 << 16) | sum1, stored after the chunk little-endian.
 * Folding keeps a positive value positive and ends in [1, 0xffff], so each
 * half is 0 when all data are zero and otherwise the representative of its
 * residue in [1, 65535] (a multiple of 65535 gives 0xffff, not 0). Below,
 * exact sums are formed in wide lanes and reduced with %, then mapped to
 * that representative. */
#include "kd/io/h5.h"

#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define KD_H5_X86 1
#endif

/* Running state: a = sum1, b = sum2, both < 65535 between blocks; any is
 * nonzero once a nonzero byte was seen. */
struct fl_state {
    uint64_t a, b;
    uint32_t any;
};

static const uint8_t *words_scalar(struct fl_state *s, const uint8_t *p, size_t words)
{
    while (words) {
        /* a stays below 2^32 and b below 2^45 within a block of 4096 */
        size_t n = words < 4096 ? words : 4096;
        uint64_t a = s->a, b = s->b;
        uint32_t any = 0;
        for (size_t j = 0; j < n; j++, p += 2) {
            uint32_t w = ((uint32_t)p[0] << 8) | p[1];
            any |= w;
            a += w;
            b += a;
        }
        s->a = a % 65535;
        s->b = b % 65535;
        s->any |= any;
        words -= n;
    }
    return p;
}

#ifdef KD_H5_X86
/* 16 words per step in two sets of 8 u32 lanes: lane k of set h sums the
 * words j = 16t + 8h + k of a block of T steps (L = 16T words):
 *   a_hk = sum_t w_j,  b_hk = sum_t (T - t) w_j   (b += a after each add)
 * and since L - j = 16(T - t) - 8h - k:
 *   sum_j w_j         = sum a_hk
 *   sum_j (L - j) w_j = 16 sum b_hk - sum (8h + k) a_hk.
 * T <= 256 keeps b_hk < 65535 * 256 * 257 / 2 < 2^32. */
__attribute__((target("avx2"))) static const uint8_t *
words_avx2(struct fl_state *s, const uint8_t *p, size_t words)
{
    const __m256i swap = _mm256_setr_epi8(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15,
                                          14, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12,
                                          15, 14);
    __m256i any = _mm256_setzero_si256();
    while (words >= 16) {
        size_t T = words / 16 < 256 ? words / 16 : 256;
        __m256i a0 = _mm256_setzero_si256(), b0 = a0, a1 = a0, b1 = a0;
        for (size_t t = 0; t < T; t++, p += 32) {
            __m256i v = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)p), swap);
            __m256i w0 = _mm256_cvtepu16_epi32(_mm256_castsi256_si128(v));
            __m256i w1 = _mm256_cvtepu16_epi32(_mm256_extracti128_si256(v, 1));
            any = _mm256_or_si256(any, v);
            a0 = _mm256_add_epi32(a0, w0);
            a1 = _mm256_add_epi32(a1, w1);
            b0 = _mm256_add_epi32(b0, a0);
            b1 = _mm256_add_epi32(b1, a1);
        }
        uint32_t va0[8], va1[8], vb0[8], vb1[8];
        _mm256_storeu_si256((__m256i *)va0, a0);
        _mm256_storeu_si256((__m256i *)va1, a1);
        _mm256_storeu_si256((__m256i *)vb0, b0);
        _mm256_storeu_si256((__m256i *)vb1, b1);
        uint64_t sa = 0, sb = 0, ska = 0;
        for (int k = 0; k < 8; k++) {
            sa += (uint64_t)va0[k] + va1[k];
            sb += (uint64_t)vb0[k] + vb1[k];
            ska += (uint64_t)k * va0[k] + (uint64_t)(8 + k) * va1[k];
        }
        uint64_t L = 16 * (uint64_t)T;
        s->b = (s->b + L * s->a + 16 * sb - ska) % 65535;
        s->a = (s->a + sa) % 65535;
        words -= 16 * T;
    }
    s->any |= !_mm256_testz_si256(any, any);
    return words_scalar(s, p, words);
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

static uint32_t fold_result(uint64_t x, uint32_t any)
{
    if (!any)
        return 0;
    uint32_t r = (uint32_t)(x % 65535);
    return r ? r : 0xffff;
}

uint32_t h5_fletcher32(const void *data, size_t len)
{
    struct fl_state s = {0, 0, 0};
    const uint8_t *p = data;
#ifdef KD_H5_X86
    if (have_avx2())
        p = words_avx2(&s, p, len / 2);
    else
#endif
        p = words_scalar(&s, p, len / 2);
    if (len % 2) {
        uint32_t w = (uint32_t)p[0] << 8;
        s.any |= w;
        s.a = (s.a + w) % 65535;
        s.b = (s.b + s.a) % 65535;
    }
    return (fold_result(s.b, s.any) << 16) | fold_result(s.a, s.any);
}

/* HDF5's internal entry point (see the top of this file). Declared here
 * because no public header does. */
uint32_t H5_checksum_fletcher32(const void *data, size_t len);

__attribute__((weak)) uint32_t H5_checksum_fletcher32(const void *data, size_t len)
{
    return h5_fletcher32(data, len);
}

int h5_fletcher32_selftest(void)
{
    /* Known answers of HDF5 1.10's own H5_checksum_fletcher32: an odd
     * length, a length that runs the vector loop and its tail, and data
     * whose sums are multiples of 65535 (the 0xffff representative). */
    unsigned char pattern[999], ones[720];
    for (int i = 0; i < 999; i++)
        pattern[i] = (unsigned char)(i * 7 + 3);
    memset(ones, 0xff, sizeof ones);
    return h5_fletcher32("abcde", 5) == 0x4ff029c7u &&
                   h5_fletcher32(pattern, sizeof pattern) == 0x1d7d1671u &&
                   h5_fletcher32(ones, sizeof ones) == 0xffffffffu &&
                   h5_fletcher32(ones, 1) == 0xff00ff00u
               ? 0
               : -1;
}
