/* schedule.h: the layer schedules of Aguilar et al. (AAAI 2020; METHODS.md
 * 2(c)) for a distill stage: which loss terms and which student layers are
 * trained at each step (kd layer; knows nothing of MPI: the caller passes a
 * loss it has already averaged over ranks, so every rank takes the same
 * decision at the same step).
 *
 * Terms are "internal" (hidden, attention: one loss per mapped layer pair)
 * or "output" (soft, hard). The n mapped layers are the distinct student
 * layers mapped by the stage's internal terms, ascending (kd_loss_set.mapped:
 * bottom-up). Phases, method by method:
 *
 *   ALL  one phase: every term, every mapped layer. This is the joint
 *        objective of TinyBERT-style jobs (soft + hidden together). Aguilar's
 *        "all layers, then soft labels" is two distill stages: one with the
 *        internal terms, then one with the soft term.
 *   PID  phase k = 0..n-1: internal terms of mapped layer k only (progressive);
 *        phase n: output terms only.
 *   SID  phase k = 0..n-1: internal terms of mapped layers 0..k (stacked);
 *        phase n: output terms only.
 *
 * The hard (gold-label) loss, when the stage has one, is an output term: it
 * is off during the internal phases and on with the soft term in the final
 * phase. METHODS.md 2(b): the only reimplementation (GLMKD) trains internal
 * phases on L_att + L_cls alone, with no hard-label term anywhere; whether
 * the paper adds one is not confirmed, so the job decides by listing a hard
 * term or not. Nothing is frozen (also GLMKD's choice).
 *
 * Boundaries, for S total steps (the stage's), P = n + 1 phases:
 *   equal split   phase(s) = floor(s * P / S), capped at P - 1, so phase p
 *                 starts at ceil(p * S / P). S = 100, n = 3: phases start
 *                 at 0, 25, 50, 75 (GLMKD's sid_lim_e = avg).
 *   threshold     (switch_threshold > 0) an early move: the phase advances
 *                 when the loss of the previous step, computed in the
 *                 current phase, is below the threshold. The equal split
 *                 still bounds every phase from above, so the final
 *                 (output) phase is always reached; the final phase never
 *                 advances.
 * The state (phase, phase_start) must be saved with a checkpoint to resume
 * a threshold run exactly; the equal split needs only the step. */
#ifndef KD_KD_SCHEDULE_H
#define KD_KD_SCHEDULE_H

#include <stdint.h>

#include "kd/core/error.h"
#include "kd/kd/layer_map.h"

/* What is on at one step. */
struct kd_active {
    int output;                           /* 1: hard and soft terms on */
    int internal;                         /* 1: hidden and attention terms on ... */
    uint8_t layer[BERT_MAX_LAYERS + 1];   /* ... for the pairs of these student layers */
};

struct kd_sched {
    int method;          /* enum distill_method */
    int n_mapped;        /* n >= 1 for PID/SID */
    int64_t total_steps; /* S >= 1 */
    double threshold;    /* <= 0: equal split only */
    /* state */
    int phase;           /* current phase */
    int64_t phase_start; /* first step of the current phase */
};

/* Phases of a method: 1 for ALL, n + 1 for PID and SID. */
int kd_sched_phases(int method, int n_mapped);

/* Equal split (pure): the phase of step s, and the first step of phase p
 * (S for p >= phases). */
int kd_sched_phase_at(int method, int n_mapped, int64_t total_steps, int64_t step);
int64_t kd_sched_phase_begin(int method, int n_mapped, int64_t total_steps, int phase);

/* Sets up the state machine at phase 0; -1 with a message for a method
 * out of range, PID/SID without mapped layers, or total_steps < 1. */
int kd_sched_init(struct kd_sched *s, int method, int n_mapped, int64_t total_steps,
                  double threshold, struct kd_err *err);

/* The phase of step `step`, called once per step in increasing order
 * before the step's forward. prev_loss: the loss of step - 1 averaged over
 * ranks (the loss set's total), or NaN if there is none (first step after
 * start or resume). */
int kd_sched_update(struct kd_sched *s, int64_t step, double prev_loss);

/* The terms and layers of a phase. mapped (n_mapped) as kd_loss_set.mapped. */
void kd_sched_active(struct kd_active *a, int method, int phase, int n_mapped,
                     const int32_t *mapped);

/* Everything on (method ALL). */
void kd_active_all(struct kd_active *a);

#endif
