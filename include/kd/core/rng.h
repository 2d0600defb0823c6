/* rng.h: counter-based random numbers, Philox4x32-10 (core layer; knows
 * nothing of kernels, models or MPI).
 *
 * Why counter-based: a random number is a pure function of
 * (seed, stream, index), with no generator state to carry around. Dropout
 * masks, initialisers and data shuffles can therefore be recomputed exactly
 * in a later pass (backward replays the forward mask without storing it),
 * and they do not depend on how examples are split over ranks, as long as
 * the caller derives `index` from global positions.
 *
 * Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as
 * easy as 1, 2, 3", SC'11): a 128-bit counter and a 64-bit key go through 10
 * rounds of two 32x32->64 multiplies; the output is 4 x 32 random bits.
 *
 * Mapping used by every function below, for element `index` of a stream:
 *   key     = (seed & 0xffffffff, seed >> 32)
 *   counter = (blk & 0xffffffff, blk >> 32, stream & 0xffffffff, stream >> 32)
 *             with blk = index / 4
 *   bits    = word (index % 4) of philox4x32_10(counter, key)
 * so four consecutive elements share one Philox block.
 */
#ifndef KD_CORE_RNG_H
#define KD_CORE_RNG_H

#include <stdint.h>

/* One Philox4x32-10 block: out = philox(ctr, key). out may alias ctr. */
void philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]);

/* 32 random bits for elements first .. first+n-1 of stream (seed, stream).
 * out: (n). Vectorised over blocks; n may be 0. */
void rng_bits(uint32_t *out, uint64_t seed, uint64_t stream, uint64_t first,
              int64_t n);

/* Bits of a single element (slow path for tests and rare draws). */
uint32_t rng_bits_at(uint64_t seed, uint64_t stream, uint64_t index);

/* Uniform floats in [lo, hi): u = (bits >> 8) * 2^-24, out = lo + (hi-lo)*u.
 * out: (n). */
void rng_uniform(float *out, float lo, float hi, uint64_t seed, uint64_t stream,
                 uint64_t first, int64_t n);

/* Normal(mean, std) floats by Box-Muller. Element i uses the whole Philox
 * block of counter index (first + i), so each element stays a function of its
 * own index. out: (n). */
void rng_normal(float *out, float mean, float std, uint64_t seed, uint64_t stream,
                uint64_t first, int64_t n);

#endif
