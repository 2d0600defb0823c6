/* losses.h: task losses on logits and regression outputs (kernels layer;
 * knows nothing of models; distillation losses live in kd/).
 *
 * Both losses are means, as PyTorch's default reduction="mean", and return
 * the loss as double (summed in double). Their backward takes the upstream
 * gradient dloss (1 for a plain loss, a weight for a term in a sum) and
 * accumulates into the gradient buffer.
 */
#ifndef KD_KERNELS_LOSSES_H
#define KD_KERNELS_LOSSES_H

#include <stdint.h>

/* Targets equal to this are skipped, as torch.nn.CrossEntropyLoss's default
 * ignore_index. */
#define LOSS_IGNORE_INDEX (-100)

/* Cross-entropy of softmax(logits) against class targets:
 *     loss = mean over rows n with targets[n] != -100 of
 *            logsumexp(logits[n,:]) - logits[n, targets[n]]
 * computed stably (max-shifted log-sum-exp).
 *   lse     (N)   written: log-sum-exp per row, cached for backward; may be
 *                 NULL (backward then recomputes it)
 *   logits  (N,K)
 *   targets (N)   in [0,K) or LOSS_IGNORE_INDEX
 * Returns 0 when every row is ignored (PyTorch returns NaN there). */
double crossentropy_forward(float *lse, const float *logits, const int32_t *targets,
                            int64_t N, int64_t K);

/* dlogits (N,K) += dloss / n_valid * (softmax(logits) - onehot(target)),
 * zero for ignored rows. lse (N) from the forward or NULL. */
void crossentropy_backward(float *dlogits, float dloss, const float *logits,
                           const float *lse, const int32_t *targets, int64_t N,
                           int64_t K);

/* Mean squared error: loss = mean over N elements of (pred - target)^2.
 *   pred (N), target (N). Returns 0 for N == 0. */
double mse_forward(const float *pred, const float *target, int64_t N);

/* dpred   (N) += dloss * 2 * (pred - target) / N
 * dtarget (N) -= the same, or NULL when the target is a constant (teacher) */
void mse_backward(float *dpred, float *dtarget, float dloss, const float *pred,
                  const float *target, int64_t N);

#endif
