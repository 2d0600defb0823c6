/* optim.h: AdamW / Adam over one flat fp32 parameter block, global-norm
 * gradient clipping and the gradient-accumulation helpers of a training step
 * (model layer; knows nothing of MPI: data-parallel reduction enters through
 * the callbacks of struct optim_grad_sync, which parallel/ provides).
 *
 * Memory. Parameters live in one block of N floats, their gradients in a
 * parallel block of N, and Adam's first and second moments m and v in two
 * more blocks of N; all four are allocated by the caller (one arena per
 * lifetime class). A segment table names the tensors inside the blocks:
 *
 *   block  [ seg 0: offset 0, count c0 | seg 1: offset c0, count c1 | ... ]
 *   params (N)   grads (N)   m (N)   v (N)     same offsets in all four
 *
 * Segments must lie inside [0, N) and must not overlap; gaps are allowed and
 * are never touched by the optimizer or counted by the clipping norm (frozen
 * tensors). Zero-sized segments are allowed (pruned layers).
 *
 * One training step (the order that matches PyTorch's loop
 * backward -> clip_grad_norm_ -> optimizer.step()):
 *
 *   optim_grad_zero(grads, N);                       once per optimizer step
 *   for each micro-step: forward, backward (+= into grads)
 *   optim_grad_prepare(grads, N, segs, nseg, scale, max_norm, sync, &gi, err);
 *       1. sync->reduce_grads: data-parallel sum over ranks   <- MPI hook
 *       2. squared norm over the segments, sync->reduce_sumsq <- stage hook
 *       3. gi.norm = |scale| * norm, gi.grad_scale = scale * clip coefficient
 *   if gi.norm is not finite: skip the update (and count it)
 *   optim_step(&opt, params, grads, lr_schedule_at(&sched, opt.step), gi.grad_scale);
 *
 * The gradient multiplier (accumulation scale times clip coefficient) is
 * applied inside the fused update loop instead of in a separate pass over
 * the gradients; the result is bit-identical to scaling the gradients in
 * place first (each gradient is rounded once, g * grad_scale, either way).
 *
 * Accumulation. Backward accumulates. Either scale the loss of every
 * micro-step so that the summed gradient is the mean over the global batch
 * (then scale = 1), or pass scale = 1 / (micro-steps * data-parallel ranks)
 * for per-micro-batch mean losses; the reported norm is that of the scaled
 * gradient, as transformers' Trainer reports it.
 *
 * Resume. The complete optimizer state is `step`, `m[0..N)` and `v[0..N)`
 * of struct optim (plus the parameters themselves); saving them bitwise and
 * restoring them with optim_state_restore continues a run exactly (the
 * learning-rate schedule is a pure function of `step`). The hyperparameters
 * come from the job and are not state.
 *
 * Numerics (torch 1.13, torch.optim.AdamW / Adam, single-tensor path). With
 * k = step after the increment, per element, in fp32, every scalar
 * coefficient computed in double and rounded to fp32 once:
 *
 *   g  = grad * grad_scale
 *   Adam:  g = g + wd * p                 (L2; decay segments only)
 *   AdamW: p = p * (1 - lr * wd)          (decoupled; decay segments only)
 *   m  = beta1 * m + (1 - beta1) * g
 *   v  = beta2 * v + (1 - beta2) * g * g
 *   p  = p + (-lr / (1 - beta1^k)) * m / (sqrt(v) / sqrt(1 - beta2^k) + eps)
 *
 * The operation order is PyTorch's (including where its vectorised kernels
 * use FMA), so on x86 with FMA the tests match torch bit for bit; without
 * FMA results differ by about an ulp of the update. For AdamW the L2 term
 * is computed with wd = 0 (g + 0 * p = g), so one loop serves both. */
#ifndef KD_MODEL_OPTIM_H
#define KD_MODEL_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "kd/core/error.h"

/* One tensor in the flat blocks. The model builds the table (name, offset,
 * count from its size table) and chooses `decay`: 0 for biases and
 * LayerNorm weights, 1 for the rest (optim_segment_decay_default). */
struct optim_segment {
    size_t offset;      /* first element in params/grads/m/v */
    size_t count;       /* elements (may be 0) */
    int decay;          /* 1: weight decay applies; 0: never decayed */
    const char *name;   /* tensor name for messages (borrowed; may be NULL) */
};

/* Spelled "adamw", "adam" in job files. */
enum optim_kind {
    OPTIM_KIND_ADAMW = 0,   /* decoupled weight decay (Loshchilov & Hutter 2019) */
    OPTIM_KIND_ADAM,        /* L2 regularisation added to the gradient */
    OPTIM_KIND_COUNT
};

struct optim_config {
    enum optim_kind kind;
    double beta1;           /* in [0, 1); 0.9 */
    double beta2;           /* in [0, 1); 0.999 (0.98 for RoBERTa-style runs) */
    double eps;             /* > 0 (added outside the square root); 1e-8 */
    double weight_decay;    /* >= 0, on decay segments only */
};

/* The optimizer: hyperparameters, segment table and state. */
struct optim {
    struct optim_config cfg;
    const struct optim_segment *segs;   /* (nseg) borrowed from the model */
    size_t nseg;
    size_t count;           /* N: elements of every block */
    int64_t step;           /* updates made so far (state: save it) */
    float *m;               /* (N) first moment, caller-owned (state: save it) */
    float *v;               /* (N) second moment, caller-owned (state: save it) */
};

/* PyTorch's defaults for `kind`: betas (0.9, 0.999), eps 1e-8, weight decay
 * 0.01 for AdamW and 0 for Adam. */
void optim_config_default(struct optim_config *cfg, enum optim_kind kind);
/* Validates the ranges above; -1 with a message naming the field. */
int optim_config_check(const struct optim_config *cfg, struct kd_err *err);
/* "adamw", "adam"; "?" when out of range. */
const char *optim_kind_name(enum optim_kind kind);

/* Checks that every segment lies inside [0, count) and that no two overlap;
 * -1 with a message naming the segment(s) and their ranges. */
int optim_segments_check(const struct optim_segment *segs, size_t nseg, size_t count,
                         struct kd_err *err);
/* The usual BERT rule: 0 for names ending in ".bias" or containing
 * "LayerNorm" (or "layer_norm"), else 1. */
int optim_segment_decay_default(const char *name);

/* Checks cfg and segs, zeroes m and v, sets step = 0. m and v hold count
 * floats each and must not alias the parameters or gradients. */
int optim_init(struct optim *opt, const struct optim_config *cfg,
               const struct optim_segment *segs, size_t nseg,
               float *m, float *v, size_t count, struct kd_err *err);

/* One update of every segment: step += 1, then the formulas above with
 * lr (from lr_schedule_at(.., opt->step) before the call) and the gradient
 * multiplier grad_scale (1 when the gradients are final; gi.grad_scale from
 * optim_grad_prepare). params (N) are updated in place, grads (N) are read
 * only; one fused, vectorised pass over each segment. */
void optim_step(struct optim *opt, float *params, const float *grads, double lr,
                float grad_scale);

/* Resume: the caller has loaded the saved m and v into opt->m and opt->v
 * (after optim_init on the same config and segments); this sets the step
 * counter and checks the state: step >= 0, every m finite, every v finite
 * and >= 0. -1 with a message naming the first bad element. */
int optim_state_restore(struct optim *opt, int64_t step, struct kd_err *err);

/* ---- gradients: accumulation, reduction hooks, clipping --------------- */

/* grads[0..count) = 0: once per optimizer step, before the first micro-step
 * (every backward accumulates). */
void optim_grad_zero(float *grads, size_t count);
/* grads[0..count) *= scale. */
void optim_grad_scale(float *grads, size_t count, float scale);

/* Sum of squares over the segments, accumulated in double in a fixed order
 * (deterministic; independent of vectorisation). */
double optim_grad_sumsq(const float *grads, const struct optim_segment *segs, size_t nseg);

/* torch.nn.utils.clip_grad_norm_'s coefficient: min(1, max_norm / (norm +
 * 1e-6)). 1 when max_norm <= 0 (clipping off) or norm is not finite (the
 * caller skips such a step). */
double optim_grad_clip_coef(double norm, double max_norm);

/* In-place global-norm clipping over the segments, as clip_grad_norm_:
 * returns the pre-clip norm sqrt(sum g^2) (in double) and multiplies every
 * segment's gradients by optim_grad_clip_coef (only when it is < 1). */
double optim_grad_clip(float *grads, const struct optim_segment *segs, size_t nseg,
                       double max_norm);

/* Hook points between the last backward and the update. Both callbacks
 * may be NULL (one process holding every parameter). This layer never
 * calls MPI; parallel/ fills these in. */
struct optim_grad_sync {
    /* Data parallel: sum grads[0..count) over the replicas, in place (or
     * wait for the bucketed non-blocking all-reduces posted during
     * backward). Returns 0 or -1 with a message. */
    int (*reduce_grads)(void *ctx, float *grads, size_t count, struct kd_err *err);
    /* Model parallel (pipeline stages owning disjoint parameter slices):
     * sum the partial sum of squares over the stages, in place, so that
     * every stage clips with the same global norm. */
    int (*reduce_sumsq)(void *ctx, double *sumsq, struct kd_err *err);
    void *ctx;
};

struct optim_grad_info {
    double norm;            /* pre-clip global norm of scale * grads */
    double clip_coef;       /* optim_grad_clip_coef(norm, max_norm) */
    float grad_scale;       /* (float)(scale * clip_coef): pass to optim_step */
};

/* Finishes the gradients of one optimizer step: reduce_grads hook, squared
 * norm over the segments, reduce_sumsq hook, then norm and multiplier as
 * above (scale: accumulation scale, 1 if the loss was scaled; max_norm: 0 =
 * no clipping). The gradients themselves are left as reduced (unscaled).
 * Returns 0, or -1 when a hook failed (its message, prefixed). A non-finite
 * norm is not an error here: info->norm says so and the caller decides. */
int optim_grad_prepare(float *grads, size_t count, const struct optim_segment *segs,
                       size_t nseg, double scale, double max_norm,
                       const struct optim_grad_sync *sync, struct optim_grad_info *info,
                       struct kd_err *err);

#endif
