/* gelu.h: fused bias + GELU, the BERT FFN activation (kernels layer; knows
 * nothing of models).
 *
 * GELU is the exact erf form used by BERT ("hidden_act": "gelu"):
 *     gelu(x) = x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2)))
 * (Hendrycks and Gimpel 2016; torch.nn.functional.gelu, approximate='none').
 * Phi is evaluated by a vectorisable erfc (see vecmath.h) with about 1e-7
 * relative error, more accurate than the 1 + erf form for x < -3.
 *
 * The bias of the preceding linear layer is fused in: the FFN runs
 * linear_forward(pre, x, W1, NULL, ...) and then
 * gelu_forward(out, pre, pre, b1, ...), saving one pass over (BT,F).
 */
#ifndef KD_KERNELS_GELU_H
#define KD_KERNELS_GELU_H

#include <stdint.h>

/* pre = inp + bias (the cache backward needs); out = gelu(pre).
 *   out  (BT,F)  written; must not overlap pre or inp
 *   pre  (BT,F)  written; may be the same buffer as inp (in-place bias add)
 *   inp  (BT,F)
 *   bias (F) or NULL */
void gelu_forward(float *out, float *pre, const float *inp, const float *bias,
                  int64_t BT, int64_t F);

/* Accumulates the gradients of gelu_forward:
 *   dinp  (BT,F) += dout * gelu'(pre)   (this is also the gradient of pre)
 *   dbias (F)    += sum over rows of dout * gelu'(pre)   (NULL: skipped)
 *   dout  (BT,F)
 *   pre   (BT,F) the cached pre-activation
 * gelu'(x) = Phi(x) + x * phi(x), phi(x) = exp(-x^2/2) / sqrt(2*pi). */
void gelu_backward(float *dinp, float *dbias, const float *dout, const float *pre,
                   int64_t BT, int64_t F);

#endif
