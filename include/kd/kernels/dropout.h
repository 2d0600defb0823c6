/* dropout.h: inverted dropout with replayable masks (kernels layer; knows
 * nothing of models).
 *
 * The mask is never stored: element i of a call is kept iff
 *     rng_bits_at(seed, offset, first + i) >= p * 2^32
 * (core/rng.h, Philox4x32-10), and kept elements are scaled by 1/(1-p).
 * Backward regenerates the same bits from the same struct dropout_spec, so
 * forward and backward agree bit for bit, and two ranks that hold different
 * slices of a batch agree with one rank holding all of it as long as
 * `first` is derived from global positions (e.g. the global example index
 * times the elements per example).
 *
 * Choosing the fields (the model layer's job): seed is the job's seed;
 * offset names the dropout site and step (layer, site, optimizer step,
 * micro-step), unique per call site and step; first is the element index
 * of the tensor's first element in that site's global index space.
 * p == 0 is the identity and makes no RNG calls; p >= 1 zeroes everything.
 */
#ifndef KD_KERNELS_DROPOUT_H
#define KD_KERNELS_DROPOUT_H

#include <stdint.h>

struct dropout_spec {
    float p;         /* drop probability in [0, 1] */
    uint64_t seed;   /* Philox key */
    uint64_t offset; /* Philox stream: which site and step */
    uint64_t first;  /* index of element 0 within the stream */
};

/* out = inp * mask / (1 - p).  out (N) may be the same buffer as inp (N). */
void dropout_forward(float *out, const float *inp, struct dropout_spec d, int64_t N);

/* dinp (N) += dout (N) * mask / (1 - p), with the mask replayed from d. */
void dropout_backward(float *dinp, const float *dout, struct dropout_spec d,
                      int64_t N);

/* The mask itself, for tests and diagnostics: mask (N) = 1/(1-p) where kept,
 * 0 where dropped (exactly the factor forward applies). */
void dropout_mask(float *mask, struct dropout_spec d, int64_t N);

#endif
