/* online.h: online distillation (stages layer): teacher pipelines compute
 * the teacher's outputs for each micro-batch while the students train, and
 * send them over MPI to the student rank that owns the micro-batch; no
 * teacher store is written or read.
 *
 * Ranks. Of W ranks, the first D = W - teacher_ranks train the student
 * (data-parallel, replica d = world rank d, so world rank 0 — which logs,
 * writes checkpoints and saves the student — is a student) and the last
 * teacher_ranks run R = teacher_ranks / S teacher pipelines of S stages
 * (teacher rank t = world rank - D is replica t / S, stage t % S). Student
 * d is served by replica d % R; student d = r (the lead of replica r) paces
 * it.
 *
 * Which rows. Both sides know the student's micro-batches from the same
 * batch_plan (same job, seed and D), so only outputs travel: per
 * micro-batch one message of floats from the replica's last stage to its
 * student: a header (step, micro-batch, rows n, length t), the logits
 * (n,K), each needed hidden layer ((n,t,Ct), or (n,Ct) for [CLS] only) and
 * each needed attention layer ((n,NH_l,t,t)), in kd_needs order, fp32.
 *
 * Bounded buffering. A replica computes step s only after its lead student
 * granted s (a small "token" message to each of its S ranks); a student
 * grants s when it starts step s - depth + 1 and posts the receives of s
 * at the same time, so every output message lands in a posted buffer and
 * at most `depth` steps are in flight per student: a slow student stalls
 * its teacher instead of growing memory. Memory per student rank: depth x
 * accumulate message buffers; per teacher last stage: 2 x (its students x
 * accumulate).
 *
 * End. After its last step (or an interrupt), a student waits for every
 * message it granted and the lead sends a stop token; teacher ranks leave
 * when they receive it. Any error ends the whole job (MPI_Abort hook), so
 * no rank waits for a dead peer. */
#ifndef KD_STAGES_ONLINE_H
#define KD_STAGES_ONLINE_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "kd/core/error.h"
#include "kd/io/dataset.h"
#include "kd/job/stage.h"
#include "kd/kd/loss_term.h"
#include "kd/model/bert_config.h"
#include "kd/parallel/layout.h"
#include "kd/stages/batch_plan.h"
#include "kd/stages/batch_rows.h"

/* Steps in flight per student when the job does not say. */
#define ONLINE_DEFAULT_DEPTH LAYOUT_ONLINE_DEPTH

/* The layout (parallel/layout.h), with the message of layout_online. */
int online_layout_plan(struct online_layout *l, int world, int teacher_ranks, int S,
                       struct kd_err *err);
static inline int online_is_teacher(const struct online_layout *l, int rank)
{
    return rank >= l->students;
}

/* What a message carries. */
struct online_dims {
    struct kd_needs needs;
    int64_t K, Ct;                  /* teacher classes and width */
    int64_t NH[BERT_MAX_LAYERS];    /* heads of teacher attention layer l (index l-1) */
    int64_t B, T;                   /* maxima of a micro-batch */
};
void online_dims_of(struct online_dims *d, const struct kd_needs *needs,
                    const struct bert_config *teacher, int64_t B, int64_t T);
/* Floats of a message of n rows of length t. */
size_t online_msg_floats(const struct online_dims *d, int64_t n, int64_t t);

/* Packs one micro-batch's message into buf (online_msg_floats of n, t):
 * logits (n,K); hidden[i] (n,t,Ct) of needs.hidden_layers[i] (only each
 * row's [CLS] token is kept when needs say so); probs[i] (n,NH,t,t) of
 * needs.attention_layers[i]. */
void online_msg_pack(const struct online_dims *d, float *buf, int64_t step, int64_t micro,
                     int64_t n, int64_t t, const float *logits, const float *const *hidden,
                     const float *const *probs);
/* Points v at a received message after checking its header against the
 * expected step, micro-batch and rows b (-1 with a message on mismatch). */
int online_msg_view(const struct online_dims *d, const float *buf, int64_t step, int64_t micro,
                    const struct batch_rows *b, struct kd_teacher_view *v, struct kd_err *err);

/* ---- student ranks -------------------------------------------------------- */

struct online_student {
    MPI_Comm comm;                 /* the caller's duplicate of the world (same order) */
    struct online_layout l;
    struct online_dims dims;
    struct batch_plan plan;        /* micro-batch counts of future steps */
    int me, lead, first_teacher;   /* world ranks: this student; leads its replica;
                                    * the replica's stage 0 */
    int depth;
    int64_t per_step;              /* message slots per step (accumulate) */
    size_t slot_floats;
    float *buf;                    /* (depth, per_step, slot_floats) */
    MPI_Request *req;              /* (depth, per_step) */
    int64_t *slot_step;            /* (depth) step posted in the slot, -1: none */
    int64_t *slot_count;           /* (depth) messages posted */
    int64_t next_grant, total;
};

/* comm: a duplicate of the world made for this stage, so no other message
 * can match. Grants nothing yet. */
int online_student_open(struct online_student *os, MPI_Comm comm, const struct online_layout *l,
                        const struct online_dims *dims, const struct stage_cfg *st,
                        const struct dataset *train, uint64_t seed, int depth,
                        struct kd_err *err);
/* Before step `step` (the first call may be any step: a resumed run):
 * grants and posts up to step + depth - 1. */
void online_student_begin(struct online_student *os, int64_t step);
/* Waits for micro-batch j of `step` (rows b) and points v at it. */
int online_student_view(struct online_student *os, int64_t step, int64_t j,
                        const struct batch_rows *b, struct kd_teacher_view *v,
                        struct kd_err *err);
/* Waits for everything granted, stops the teacher (lead) and frees. */
void online_student_close(struct online_student *os);

/* ---- teacher ranks -------------------------------------------------------- */

/* The teacher side of an online distill stage on a teacher rank: builds
 * its pipeline slice from teacher_dir (or a random teacher when NULL,
 * seeded by the job), then serves granted steps until the stop token.
 * comm: the same duplicate the students got; teachers: the teacher ranks
 * (teacher rank order), over which it is collective. Returns a kd_exit
 * code (every teacher rank the same). */
struct comm;
int online_teacher_run(const struct stage_ctx *ctx, MPI_Comm comm, const struct comm *teachers,
                       const struct online_layout *l, const struct online_dims *dims,
                       const struct bert_config *tcfg, const char *teacher_dir,
                       const struct dataset *train);

#endif
