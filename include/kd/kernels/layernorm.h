/* layernorm.h: LayerNorm over the last dimension (kernels layer; knows
 * nothing of models).
 *
 *     y = weight * (x - mean) * rstd + bias,   rstd = 1 / sqrt(var + eps)
 * with the biased (population) variance, as torch.nn.LayerNorm and every
 * BERT LayerNorm (eps = 1e-12 in BERT's config.json, layer_norm_eps).
 * Ba, Kiros, Hinton, "Layer Normalization", 2016.
 */
#ifndef KD_KERNELS_LAYERNORM_H
#define KD_KERNELS_LAYERNORM_H

#include <stdint.h>

/*   out    (BT,C) written; may be the same buffer as inp
 *   mean   (BT)   written: per-row mean, cached for backward
 *   rstd   (BT)   written: per-row 1/sqrt(var + eps), cached for backward
 *   inp    (BT,C)
 *   weight (C)    gamma
 *   bias   (C)    beta
 *   eps           added to the variance */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *weight, const float *bias, int64_t BT,
                       int64_t C, float eps);

/* Accumulates the gradients of layernorm_forward:
 *   dinp    (BT,C) += rstd * (g - mean(g) - xhat * mean(g * xhat)),
 *                     with g = dout * weight, xhat = (inp - mean) * rstd
 *   dweight (C)    += sum over rows of dout * xhat   (NULL: frozen)
 *   dbias   (C)    += sum over rows of dout          (NULL: frozen)
 *   dout    (BT,C)
 *   inp     (BT,C) the forward input; mean, rstd (BT) its caches
 *   weight  (C)
 * dinp may be NULL when only the parameter gradients are wanted. */
void layernorm_backward(float *dinp, float *dweight, float *dbias,
                        const float *dout, const float *inp, const float *mean,
                        const float *rstd, const float *weight, int64_t BT,
                        int64_t C);

#endif
