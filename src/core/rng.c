/* rng.c: Philox4x32-10 counter-based generator (core layer, no MPI).
 * See rng.h for the (seed, stream, index) -> bits mapping, which is part of
 * the reproducibility contract: changing it changes every dropout mask. */
#include "kd/core/rng.h"

#include <math.h>
#include <string.h>

/* Round multipliers and Weyl key increments of Philox4x32 (SC'11 paper,
 * Table 2 and section 4). */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u
#define PHILOX_ROUNDS 10

/* Blocks generated together in rng_bits: a fixed trip count lets the
 * compiler vectorise the rounds at -O2 (structure of arrays, one lane per
 * block, 32x32->64 multiplies as vpmuludq). */
#define PHILOX_LANES 16
/* Tails of at least this many blocks use the vector path too: one batch of
 * PHILOX_LANES blocks costs about as much as 8 blocks done one by one. */
#define PHILOX_TAIL_MIN 8

void philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    /* Each round: (hi, lo) = M * x as a 64-bit product for x = c0 and c2;
     * the new counter is (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0), i.e. the
     * S-box is the multiply and the P-box the word permutation. */
    for (int r = 0; r < PHILOX_ROUNDS; r++) {
        /* one round: two multiplies, then swap halves and mix in the key */
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += PHILOX_W0; /* key schedule: bump between rounds */
        k1 += PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* PHILOX_LANES consecutive blocks starting at block index blk, written as
 * 4*PHILOX_LANES words in element order. */
static void philox_lanes(uint32_t *restrict out, uint64_t blk, uint32_t s0,
                         uint32_t s1, uint32_t key0, uint32_t key1)
{
    uint32_t c0[PHILOX_LANES], c1[PHILOX_LANES], c2[PHILOX_LANES], c3[PHILOX_LANES];
    for (int l = 0; l < PHILOX_LANES; l++) {
        uint64_t b = blk + (uint64_t)l;
        c0[l] = (uint32_t)b;
        c1[l] = (uint32_t)(b >> 32);
        c2[l] = s0;
        c3[l] = s1;
    }
    uint32_t k0 = key0, k1 = key1;
    for (int r = 0; r < PHILOX_ROUNDS; r++) {
        for (int l = 0; l < PHILOX_LANES; l++) {
            uint64_t p0 = (uint64_t)PHILOX_M0 * c0[l];
            uint64_t p1 = (uint64_t)PHILOX_M1 * c2[l];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[l] ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[l] ^ k1;
            c1[l] = (uint32_t)p1;
            c3[l] = (uint32_t)p0;
            c0[l] = n0;
            c2[l] = n2;
        }
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    for (int l = 0; l < PHILOX_LANES; l++) {
        out[4 * l + 0] = c0[l];
        out[4 * l + 1] = c1[l];
        out[4 * l + 2] = c2[l];
        out[4 * l + 3] = c3[l];
    }
}

/* One block at counter (blk, stream) under key seed: the scalar reference
 * the vector path must match bit for bit (tested in t_rng). */
static void block_at(uint32_t out[4], uint64_t seed, uint64_t stream, uint64_t blk)
{
    const uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)(blk >> 32), (uint32_t)stream,
                             (uint32_t)(stream >> 32)};
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    philox4x32_10(out, ctr, key);
}

uint32_t rng_bits_at(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint32_t w[4];
    block_at(w, seed, stream, index >> 2);
    return w[index & 3];
}

/* Indices first .. first+n-1 must not wrap around 2^64 (they are element
 * positions; even 2^62 elements are out of reach). */
void rng_bits(uint32_t *out, uint64_t seed, uint64_t stream, uint64_t first, int64_t n)
{
    if (n <= 0)
        return;
    uint64_t idx = first, end = first + (uint64_t)n;
    uint32_t w[4];
    /* head: finish a partly used block so the bulk starts block-aligned */
    if (idx & 3) {
        block_at(w, seed, stream, idx >> 2);
        for (; (idx & 3) && idx < end; idx++)
            *out++ = w[idx & 3];
    }
    /* bulk: PHILOX_LANES whole blocks at a time */
    const uint32_t s0 = (uint32_t)stream, s1 = (uint32_t)(stream >> 32);
    const uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    while (end - idx >= 4u * PHILOX_LANES) {
        philox_lanes(out, idx >> 2, s0, s1, k0, k1);
        out += 4 * PHILOX_LANES;
        idx += 4u * PHILOX_LANES;
    }
    /* tail: a long one still goes through the vector path (into a buffer,
     * keeping what is needed: cheaper than PHILOX_TAIL_MIN scalar blocks),
     * a short one block by block */
    if (end - idx >= 4u * PHILOX_TAIL_MIN) {
        uint32_t buf[4 * PHILOX_LANES];
        philox_lanes(buf, idx >> 2, s0, s1, k0, k1);
        memcpy(out, buf, (size_t)(end - idx) * sizeof(uint32_t));
        return;
    }
    while (idx < end) {
        block_at(w, seed, stream, idx >> 2);
        for (int l = 0; l < 4 && idx < end; l++, idx++)
            *out++ = w[l];
    }
}

void rng_uniform(float *out, float lo, float hi, uint64_t seed, uint64_t stream,
                 uint64_t first, int64_t n)
{
    /* 24 bits per float: every value is exactly representable, the result
     * is < 1 even after rounding, and the grid 2^-24 is uniform. Bits are
     * drawn 256 at a time into a stack buffer. */
    uint32_t bits[256];
    const float span = hi - lo, unit = 1.0f / 16777216.0f; /* 2^-24 */
    for (int64_t i = 0; i < n; i += 256) {
        int64_t m = n - i < 256 ? n - i : 256;
        rng_bits(bits, seed, stream, first + (uint64_t)i, m);
        for (int64_t j = 0; j < m; j++)
            out[i + j] = lo + span * ((float)(bits[j] >> 8) * unit);
    }
}

void rng_normal(float *out, float mean, float std, uint64_t seed, uint64_t stream,
                uint64_t first, int64_t n)
{
    const double unit = 1.0 / 4294967296.0; /* 2^-32 */
    const double two_pi = 6.283185307179586;
    /* Box-Muller: z = sqrt(-2 log u1) cos(2 pi u2) is standard normal for
     * independent uniforms u1 in (0,1], u2 in [0,1); computed in double, as
     * initialisation is not a hot path. */
    for (int64_t i = 0; i < n; i++) {
        uint32_t w[4];
        block_at(w, seed, stream, first + (uint64_t)i);
        /* u1 in (0, 1] keeps the log finite; 64 bits for u1 so the tail of
         * the normal is resolved beyond 2^-32 */
        double u1 = ((double)w[0] + (double)w[1] * unit + 1.0) * unit;
        double u2 = (double)w[2] * unit;
        out[i] = mean + std * (float)(sqrt(-2.0 * log(u1)) * cos(two_pi * u2));
    }
}
