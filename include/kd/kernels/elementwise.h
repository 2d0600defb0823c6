/* elementwise.h: small pointwise layers: tanh (the BERT pooler
 * activation), the residual add, and clearing a buffer (kernels layer;
 * knows nothing of models). Shapes are flattened: N = number of elements. */
#ifndef KD_KERNELS_ELEMENTWISE_H
#define KD_KERNELS_ELEMENTWISE_H

#include <stdint.h>

/* out (N) = tanh(inp (N)); out may be the same buffer as inp. */
void tanh_forward(float *out, const float *inp, int64_t N);

/* dinp (N) += dout (N) * (1 - out^2), from the forward OUTPUT out (N), so
 * the input need not be kept. */
void tanh_backward(float *dinp, const float *dout, const float *out, int64_t N);

/* out (N) = a (N) + b (N): the skip connection before each post-LN block.
 * out may be the same buffer as a or b. */
void residual_forward(float *out, const float *a, const float *b, int64_t N);

/* da (N) += dout, db (N) += dout; either may be NULL. */
void residual_backward(float *da, float *db, const float *dout, int64_t N);

/* x (N) = 0, split over the thread team: gradient blocks are cleared once
 * per optimizer step and are as large as the parameters. */
void zero_floats(float *x, int64_t N);

#endif
