/* loss_set.h: the distillation losses of one distill stage, combined (kd
 * layer; knows nothing of MPI: data-parallel code passes global
 * normalisers and reduces the gradients itself).
 *
 * One training micro-step:
 *
 *   bert_forward(&student, &batch);                    student taps
 *   kd_student_view_from_bert(&sv, &student);
 *   (teacher view: arrays read from the store, or a teacher's taps)
 *   kd_sched_update(&sched, step, prev_loss); kd_sched_active(...)  PID/SID
 *   total = kd_loss_set_compute(&set, &sv, &tv, &st, &vals, &gin);
 *   bert_backward(&student, &gin);                     into the student's grads
 *   optimizer: the student's block and the set's block (kd_loss_set_params)
 *
 * Memory (STYLE.md principle 1): everything is sized from the loss list and
 * the maximum batch at init and allocated there in two blocks: tap gradients
 * plus scratch, and the learned parameters with their gradients. Tap
 * buffers exist only where a term writes: dlogits (B,K) for hard/soft,
 * dhidden[l] (B,T,C) for student layers mapped by a hidden term, dscores[l]
 * (B,NH_l,T,T) for student layers mapped by an attention term.
 *
 * Gradients. Each compute zeroes a tap buffer at its first use and the
 * terms accumulate weight * d term / d tap into it, so several terms may
 * share a tap; the bert_grad_in it fills points at the buffers written in
 * THIS compute and is NULL elsewhere (an untouched dscores would otherwise
 * cost the attention backward its key-extent shortcut). The learned
 * parameters' gradients accumulate across computes, like the model's:
 * zero them once per optimizer step (kd_loss_set_zero_param_grads).
 *
 * The total is sum_i w_i * v_i over the terms that are on, with v_i the
 * term's value (per-term values are reported for the training curves).
 * Internal terms sum their active layer pairs (Aguilar et al.: sum_j
 * L_att(j) + sum_j L_cls(j)). */
#ifndef KD_KD_LOSS_SET_H
#define KD_KD_LOSS_SET_H

#include <stddef.h>
#include <stdint.h>

#include "kd/core/error.h"
#include "kd/kd/loss_term.h"
#include "kd/kd/schedule.h"
#include "kd/model/bert.h"
#include "kd/model/optim.h"

#define KD_MAX_TERMS 32

struct kd_loss_set {
    int n;                       /* terms */
    struct kd_term *term;        /* (n) */
    struct kd_model_dims dims;
    /* student layers mapped by internal terms, ascending: PID/SID's order */
    int n_mapped;
    int32_t mapped[KD_MAX_PAIRS];
    /* tap gradient buffers (NULL where no term writes) */
    float *dlogits;                        /* (B,K) */
    float *dhidden[BERT_MAX_LAYERS + 1];   /* [l] (B,T,C) */
    float *dscores[BERT_MAX_LAYERS + 1];   /* [l] (B,NH_l,T,T), attention layer l >= 1 */
    /* which taps this compute wrote (zero-on-first-use) */
    uint8_t used_logits;
    uint8_t used_hidden[BERT_MAX_LAYERS + 1];
    uint8_t used_scores[BERT_MAX_LAYERS + 1];
    int64_t B, T;                /* of the current compute */
    int64_t *n_real;             /* (B) real tokens per example */
    float *tap_block;            /* taps + scratch, one allocation */
    size_t tap_floats;
    /* learned parameters (hidden-state projections) */
    size_t n_params;             /* floats in each of params, grads */
    float *params, *grads;       /* (n_params) each, NULL if none */
    struct optim_segment *segs;  /* (nseg) names point into seg_names */
    size_t nseg;
    char (*seg_names)[64];
};

/* Builds the set for losses[0..n) (opts: (n) per-term options, or NULL for
 * the job entries' own form and rows keys, kd_term_opts_of), the student's config,
 * the teacher's dimensions and the maximum batch (B, T). Validates every
 * term (maps, head counts, label counts): -1 with a message naming the
 * loss. Learned parameters are initialised from seed. */
int kd_loss_set_init(struct kd_loss_set *s, const struct loss_cfg *losses, int n,
                     const struct kd_term_opts *opts, const struct bert_config *student,
                     const struct kd_teacher_dims *teacher, int64_t B, int64_t T,
                     uint64_t seed, struct kd_err *err);
void kd_loss_set_free(struct kd_loss_set *s);

/* Bytes the set holds (taps, scratch, parameters and gradients). */
size_t kd_loss_set_bytes(const struct kd_loss_set *s);

/* One step's settings. */
struct kd_step {
    int64_t step;               /* the stage's step, 0-based (temperature) */
    int64_t total_steps;        /* the stage's steps */
    const struct kd_active *active; /* terms and layers on; NULL: all */
    const double *weights;      /* (n) term weights, or NULL: loss_cfg.weight */
    double norm_examples;       /* <= 0: the local count (kd_batch_counts) */
    double norm_labelled;       /* <= 0: the local count */
};

struct kd_values {
    double total;               /* sum of weight * value over the terms on */
    double term[KD_MAX_TERMS];  /* unweighted value of term i (0 when off) */
    int on[KD_MAX_TERMS];       /* 1: term i was computed */
};

/* Computes every term that is on for the student's taps sv against the
 * teacher's tv, accumulates the parameters' gradients, fills the tap
 * buffers and points g's dlogits, dhidden[] and dscores[] (0-based
 * attention index, as bert.h) at them or at NULL; g's other fields are left
 * as they were. vals and g may be NULL. Returns the total. */
double kd_loss_set_compute(struct kd_loss_set *s, const struct kd_student_view *sv,
                           const struct kd_teacher_view *tv, const struct kd_step *st,
                           struct kd_values *vals, struct bert_grad_in *g);

/* The flat parameter block and its segment table, for optim_init /
 * optim_step (and checkpoints). *params may be NULL (no projection). */
void kd_loss_set_params(const struct kd_loss_set *s, float **params, float **grads,
                        size_t *count, const struct optim_segment **segs, size_t *nseg);
void kd_loss_set_zero_param_grads(struct kd_loss_set *s);

/* The projection of a hidden term (term index in the loss list) for its
 * pair with student layer `student_layer`: out = in @ weight^T + bias,
 * weight (Ct,C) and bias (Ct), in place in the parameter block (write them
 * to initialise from outside, e.g. a least-squares fit). */
struct kd_projection {
    float *weight;   /* (out,in) */
    float *bias;     /* (out) */
    int64_t in, out; /* C, Ct */
    int32_t student_layer, teacher_layer;
};
/* -1 with a message if the term is not a hidden term, has no projection
 * (equal widths) or does not map student_layer. */
int kd_loss_set_projection(const struct kd_loss_set *s, int term, int32_t student_layer,
                           struct kd_projection *out, struct kd_err *err);

#endif
