/* softmax.h: masked softmax over the last dimension (kernels layer; knows
 * nothing of models).
 *
 * Two kinds of key mask, usable together:
 *   key_keep  int32, nonzero = attend, 0 = padding. A padded key gets
 *             probability exactly 0 and takes no part in the max or the sum.
 *             This is the attention_mask of a Hugging Face batch.
 *   key_bias  float, added to the logits first (the "extended attention
 *             mask" form: 0 or -10000 as in BERT, or -INFINITY).
 * Row r of an (R,N) input uses mask row r / rows_per_mask, so one (B,T)
 * padding mask serves all (B,NH,T) query rows of attention scores with
 * rows_per_mask = NH*T.
 *
 * A row with no attendable key (all keep == 0, or every biased logit
 * -INFINITY) produces all zeros rather than NaN: there is no distribution to
 * return and zeros let nothing flow to later layers. Note the difference
 * from PyTorch with BERT's -10000 bias, which returns a uniform row there;
 * with at least one kept key both give exact zeros on the padded keys.
 */
#ifndef KD_KERNELS_SOFTMAX_H
#define KD_KERNELS_SOFTMAX_H

#include <stdint.h>

/*   probs    (R,N) written; may be the same buffer as inp
 *   inp      (R,N) logits
 *   key_keep (R/rows_per_mask, N) or NULL
 *   key_bias (R/rows_per_mask, N) or NULL
 *   rows_per_mask  >= 1 when a mask is given (ignored otherwise) */
void softmax_forward(float *probs, const float *inp, const int32_t *key_keep,
                     const float *key_bias, int64_t R, int64_t N,
                     int64_t rows_per_mask);

/* Accumulates dinp (R,N) += probs * (dprobs - sum_j probs_j * dprobs_j).
 * Masked keys have probs == 0 and so get zero gradient, which is also the
 * exact gradient of the additive form once exp underflows.
 *   dprobs (R,N), probs (R,N) the forward output. */
void softmax_backward(float *dinp, const float *dprobs, const float *probs,
                      int64_t R, int64_t N);

/* One row in place, the building block of softmax_forward and attention:
 * x (N) holds logits on entry and probabilities on return. keep (N) and bias
 * (N) may be NULL. */
void softmax_row_forward(float *x, const int32_t *keep, const float *bias, int64_t N);

#endif
