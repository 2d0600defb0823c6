/* t_rng.c: Philox4x32-10 against the Random123 known-answer vectors, the
 * batched generator against the single-element one, determinism, and
 * statistical sanity of the derived uniforms, normals and bits. */
#include "kd/core/rng.h"
#include "../tap.h"

#include <math.h>
#include <stdlib.h>

/* Known-answer vectors of Philox4x32-10 as published with Random123
 * (kat_vectors): counter (4 words), key (2 words) -> output (4 words). */
static const struct {
    uint32_t ctr[4], key[2], out[4];
} kat[] = {
    {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
    {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
     {0xffffffff, 0xffffffff},
     {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
    {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
     {0xa4093822, 0x299f31d0},
     {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};

static void test_kat(void)
{
    for (size_t v = 0; v < sizeof kat / sizeof kat[0]; v++) {
        uint32_t out[4];
        philox4x32_10(out, kat[v].ctr, kat[v].key);
        int same = 1;
        for (int i = 0; i < 4; i++)
            same &= out[i] == kat[v].out[i];
        if (!ok(same, "Philox4x32-10 known-answer vector %zu", v))
            diag("got %08x %08x %08x %08x", out[0], out[1], out[2], out[3]);
    }
    /* the (seed, stream, index) mapping of rng.h: key = seed, counter words
     * 0..1 = index / 4, words 2..3 = stream, output word = index % 4 */
    const uint64_t seed = 0x299f31d0a4093822ull, stream = 0x0370734413198a2eull;
    const uint64_t blk = 0x05a308d3243f6a88ull; /* < 2^62, so 4*blk fits */
    const uint32_t ctr[4] = {0x243f6a88, 0x05a308d3, 0x13198a2e, 0x03707344};
    uint32_t want[4];
    philox4x32_10(want, ctr, kat[2].key);
    int same = 1;
    for (int l = 0; l < 4; l++)
        same &= rng_bits_at(seed, stream, blk * 4 + (uint64_t)l) == want[l];
    ok(same, "rng_bits_at maps (seed, stream, index) onto key and counter as documented");
}

/* The vectorised batch path must equal the per-element definition for
 * every alignment of first and length (head, bulk and tail). */
static void test_batch_matches_scalar(void)
{
    const int64_t n = 300;
    uint32_t *buf = malloc(n * sizeof *buf);
    int bad = 0;
    /* the last start makes block indices cross 2^32 (carry into counter word 1) */
    const uint64_t firsts[] = {0, 1, 3, 4, 62, 64, 1000003, (1ull << 34) - 130};
    const int64_t lens[] = {0, 1, 3, 4, 5, 63, 64, 65, 200, 300};
    for (size_t a = 0; a < sizeof firsts / sizeof firsts[0]; a++)
        for (size_t b = 0; b < sizeof lens / sizeof lens[0]; b++) {
            rng_bits(buf, 42, 7, firsts[a], lens[b]);
            for (int64_t i = 0; i < lens[b]; i++)
                bad += buf[i] != rng_bits_at(42, 7, firsts[a] + (uint64_t)i);
        }
    ok(bad == 0, "rng_bits equals rng_bits_at for all head/bulk/tail alignments (%d mismatches)",
       bad);
    free(buf);
}

static void test_determinism(void)
{
    enum { N = 4096 };
    static uint32_t a[N], b[N], c[N], d[N];
    rng_bits(a, 1234, 5, 0, N);
    rng_bits(b, 1234, 5, 0, N);
    rng_bits(c, 1234, 6, 0, N);
    rng_bits(d, 1235, 5, 0, N);
    int same_ab = 1, same_ac = 0, same_ad = 0;
    for (int i = 0; i < N; i++) {
        same_ab &= a[i] == b[i];
        same_ac += a[i] == c[i];
        same_ad += a[i] == d[i];
    }
    ok(same_ab, "same (seed, stream, first) gives the same bits");
    ok(same_ac < 3, "another stream gives other bits (%d equal words of %d)", same_ac, N);
    ok(same_ad < 3, "another seed gives other bits (%d equal words of %d)", same_ad, N);
}

static void test_statistics(void)
{
    enum { N = 1 << 20 };
    float *u = malloc(N * sizeof *u);
    uint32_t *bits = malloc(N * sizeof *bits);
    rng_uniform(u, 0.0f, 1.0f, 99, 3, 0, N);
    double s = 0, s2 = 0;
    int in_range = 1;
    for (int i = 0; i < N; i++) {
        in_range &= u[i] >= 0.0f && u[i] < 1.0f;
        s += u[i];
        s2 += (double)u[i] * u[i];
    }
    double mean = s / N, var = s2 / N - mean * mean;
    ok(in_range, "uniforms lie in [0, 1)");
    /* 6 sigma bounds: sd of the mean sqrt(1/12/N), of the variance ~ sqrt(1/180/N) */
    ok_near(mean, 0.5, 0.0, 6.0 * sqrt(1.0 / 12.0 / N), "uniform mean is 1/2");
    ok_near(var, 1.0 / 12.0, 0.0, 6.0 * sqrt(1.0 / 180.0 / N), "uniform variance is 1/12");

    /* chi-square of the top byte over 256 bins: 255 dof, mean 255, sd 22.6;
     * accept below mean + 6 sd */
    rng_bits(bits, 99, 4, 0, N);
    double cnt[256] = {0};
    long ones = 0;
    for (int i = 0; i < N; i++) {
        cnt[bits[i] >> 24] += 1;
        ones += __builtin_popcount(bits[i]);
    }
    double chi2 = 0, e = N / 256.0;
    for (int k = 0; k < 256; k++)
        chi2 += (cnt[k] - e) * (cnt[k] - e) / e;
    ok(chi2 < 255.0 + 6.0 * sqrt(510.0), "top byte uniform: chi2 %.1f with 255 dof", chi2);
    double frac = (double)ones / (32.0 * N);
    ok_near(frac, 0.5, 0.0, 6.0 * 0.5 / sqrt(32.0 * N), "half of all bits are set (%.6f)",
            frac);

    /* normals: mean 0, variance 1, about 4.55% beyond 2 sd */
    enum { M = 200000 };
    float *z = malloc(M * sizeof *z);
    rng_normal(z, 0.0f, 1.0f, 7, 8, 0, M);
    double zs = 0, zs2 = 0, tail = 0;
    int finite = 1;
    for (int i = 0; i < M; i++) {
        finite &= isfinite(z[i]);
        zs += z[i];
        zs2 += (double)z[i] * z[i];
        tail += fabs(z[i]) > 2.0f;
    }
    ok(finite, "normals are finite");
    ok_near(zs / M, 0.0, 0.0, 6.0 / sqrt((double)M), "normal mean is 0");
    ok_near(zs2 / M, 1.0, 0.0, 6.0 * sqrt(2.0 / M), "normal variance is 1");
    ok_near(tail / M, 0.0455003, 0.0, 6.0 * sqrt(0.0455 * 0.9545 / M),
            "P(|z| > 2) is 4.55%%");
    float zz[3];
    rng_normal(zz, 10.0f, 0.0f, 7, 8, 5, 3);
    ok(zz[0] == 10.0f && zz[2] == 10.0f, "normal with std 0 returns the mean");
    float one;
    rng_normal(&one, 0.0f, 1.0f, 7, 8, 17, 1);
    ok(one == z[17], "normal element i depends only on its own index");
    free(z);
    free(u);
    free(bits);
}

int main(void)
{
    test_kat();
    test_batch_matches_scalar();
    test_determinism();
    test_statistics();
    return done_testing();
}
