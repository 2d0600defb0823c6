/* attention.h: the core of BERT multi-head self-attention (kernels layer;
 * knows nothing of models). The Q/K/V and output projections are ordinary
 * linear layers around it.
 *
 * Packed QKV layout (one linear with W_qkv = [W_q; W_k; W_v], (3*NH*HS, C)):
 *     qkv (B,T,3*NH*HS): row (b,t) = [ q_0 .. q_{NH-1} | k_0 .. | v_0 .. ]
 * each head a contiguous run of HS floats. Head h of sequence b is a (T,HS)
 * sub-matrix with row stride 3*NH*HS, which gemm addresses in place; no head
 * is ever copied out. The context comes back as (B,T,NH*HS) with the heads
 * side by side (Hugging Face's layout before the output dense), so the
 * per-head context of a head-mask gradient is a strided slice of it.
 *
 * Per (b,h), with S = scores, P = probabilities, A = attention weights:
 *     S = Q K^T / sqrt(HS)                                   (T,T)
 *     P = masked_softmax(S) over keys, padding mask (B,T)    (T,T)  -> probs
 *     A = dropout(P) with the replayable counter RNG          (T,T)
 *     ctx = A V                                               (T,HS)
 * probs keeps P, before dropout: it is the tensor distillation losses
 * compare (Aguilar et al.) and what backward needs.
 *
 * Padding: keys with mask 0 get probability exactly 0; keys after the last
 * unmasked one are not even computed (right-padded batches skip the padded
 * columns of both products). A sequence with no unmasked key gives zero
 * probabilities and a zero context. Every query row is computed, padded or
 * not, as in PyTorch.
 *
 * Dropout on P: element (b,h,i,j) uses index
 *     drop.first + ((b*NH + h)*T + i)*T + j
 * of stream (drop.seed, drop.offset) (see dropout.h), so a rank holding
 * global examples e0.. passes first = e0*NH*T*T to match one rank.
 * drop.p == 0 turns it off (no RNG calls).
 *
 * NH == 0 (a fully pruned layer) is valid: nothing to compute, ctx has no
 * columns.
 */
#ifndef KD_KERNELS_ATTENTION_H
#define KD_KERNELS_ATTENTION_H

#include <stdint.h>

#include "kd/kernels/dropout.h"

/* Floats of the scratch buffer attention_forward/backward need: 2*T*T + T
 * for each thread of the kernels' budget, threads_max() (threads.h), since
 * the (b,h) pairs run in parallel and each thread works in its own slice. */
int64_t attention_scratch_floats(int64_t T);

/*   ctx     (B,T,NH*HS)   written
 *   probs   (B,NH,T,T)    written: pre-dropout probabilities (cache + tap)
 *   qkv     (B,T,3*NH*HS) packed as above
 *   mask    (B,T) nonzero = real token, 0 = padding; NULL = no padding
 *   drop    attention-probability dropout
 *   scratch (attention_scratch_floats(T)) workspace, contents undefined;
 *           may be NULL when drop.p == 0 (the forward then needs none) */
void attention_forward(float *ctx, float *probs, const float *qkv, const int32_t *mask,
                       struct dropout_spec drop, float *scratch, int64_t B,
                       int64_t T, int64_t NH, int64_t HS);

/* Accumulates dqkv (B,T,3*NH*HS) += the gradient w.r.t. Q, K and V, packed
 * like qkv, given
 *   dctx    (B,T,NH*HS)  gradient of the context
 *   dprobs  (B,NH,T,T)   extra gradient w.r.t. probs (P, before dropout),
 *                        e.g. from an attention-distribution loss; or NULL
 *   dscores (B,NH,T,T)   extra gradient w.r.t. the scores S (before the
 *                        mask and softmax), e.g. p_S - p_T of an attention
 *                        KL; or NULL. It is used as given, including on
 *                        padded keys (S exists there): zero those entries to
 *                        leave padded keys out.
 *   probs, qkv, mask, drop: exactly as in the forward (the mask is replayed)
 *   scratch (attention_scratch_floats(T)) workspace */
void attention_backward(float *dqkv, const float *dctx, const float *dprobs,
                        const float *dscores, const float *probs, const float *qkv,
                        const int32_t *mask, struct dropout_spec drop,
                        float *scratch, int64_t B, int64_t T, int64_t NH,
                        int64_t HS);

#endif
