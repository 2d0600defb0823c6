/* embedding.h: BERT input embeddings, word + position + token type
 * (kernels layer; knows nothing of models).
 *
 *     out[b,t,:] = wte[ids[b,t]] + wpe[t] + wtt[type_ids[b,t]]
 * Positions are 0..T-1 (absolute position embeddings, as Hugging Face with
 * default position_ids). The LayerNorm and dropout that follow in BERT are
 * separate kernels, so the raw sum (and the LayerNorm output, the
 * "embedding output" attribution methods perturb) stay visible to the model.
 * Out-of-range ids are an internal error (the tokenizer and dataset reader
 * validate ids), reported with the offending position.
 */
#ifndef KD_KERNELS_EMBEDDING_H
#define KD_KERNELS_EMBEDDING_H

#include <stdint.h>

/*   out      (B,T,C) written
 *   ids      (B,T)   token ids in [0, V)
 *   type_ids (B,T)   token type ids in [0, TV), or NULL (all type 0)
 *   wte      (V,C)   word embeddings
 *   wpe      (>=T,C) position embeddings
 *   wtt      (TV,C)  token type embeddings, or NULL (no type embedding) */
void embedding_forward(float *out, const int32_t *ids, const int32_t *type_ids,
                       const float *wte, const float *wpe, const float *wtt,
                       int64_t B, int64_t T, int64_t C, int64_t V, int64_t TV);

/* Accumulates (scatter-add) dout (B,T,C) into the tables:
 *   dwte (V,C)  += at rows ids     (NULL: frozen)
 *   dwpe (>=T,C)+= at rows 0..T-1  (NULL: frozen)
 *   dwtt (TV,C) += at rows type_ids (NULL: frozen or absent)
 * Tokens repeated in a batch add up, in the order of the batch, so the
 * result is deterministic. */
void embedding_backward(float *dwte, float *dwpe, float *dwtt, const float *dout,
                        const int32_t *ids, const int32_t *type_ids, int64_t B,
                        int64_t T, int64_t C, int64_t V, int64_t TV);

#endif
