/* linear.h: fully connected layer, the PyTorch/Hugging Face nn.Linear
 * (kernels layer; knows nothing of models).
 *
 * The weight is stored (OC,IC) exactly as in a Hugging Face checkpoint, so
 * safetensors tensors are used in place: out = inp @ weight^T + bias.
 * Rows may be any flattened leading dimensions (BT = B*T, or B for a head on
 * [CLS]). IC == 0 (a fully pruned input) gives out = bias; OC == 0 or
 * BT == 0 does nothing.
 */
#ifndef KD_KERNELS_LINEAR_H
#define KD_KERNELS_LINEAR_H

#include <stdint.h>

/* out = inp @ weight^T + bias
 *   out    (BT,OC)  written
 *   inp    (BT,IC)
 *   weight (OC,IC)
 *   bias   (OC) or NULL for no bias */
void linear_forward(float *out, const float *inp, const float *weight,
                    const float *bias, int64_t BT, int64_t IC, int64_t OC);

/* Accumulates the gradients of linear_forward:
 *   dinp    (BT,IC) += dout @ weight        (NULL: not needed)
 *   dweight (OC,IC) += dout^T @ inp         (NULL: frozen weight)
 *   dbias   (OC)    += sum over rows of dout (NULL: no bias or frozen)
 *   dout    (BT,OC)
 *   inp     (BT,IC)  the forward input
 *   weight  (OC,IC) */
void linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                     const float *inp, const float *weight, int64_t BT, int64_t IC,
                     int64_t OC);

#endif
