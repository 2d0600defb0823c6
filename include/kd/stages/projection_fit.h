/* projection_fit.h: least-squares initialisation of the learned projections
 * of hidden-state losses (stages layer; job key student.init_projections =
 * "lstsq"). A hidden loss between a student of width C and a teacher of
 * width Ct learns, per mapped pair, p = W x + c (kd/loss_set.h,
 * kd_loss_set_projection). Started at random, W first has to learn the
 * coordinate change between the two models before the loss says anything
 * about the student's layers; fitted, it starts where the student's
 * initial states predict the teacher's best:
 *
 *     (W, c) = argmin sum_r ||W x_r + c - h_r||^2 + ridge ||W||^2
 *
 * over the rows r of a deterministic sample of training examples: the
 * student's hidden states x_r of the mapped layer (eval mode, the initial
 * student) and the teacher's h_r of its layer, at every real token (loss
 * tokens = "all") or at [CLS] (tokens = "cls"), the rows the loss compares.
 * The fit is PDGELS over all ranks (init/student_init.h,
 * student_fit_projection): each rank forwards its share of the sample and
 * no rank holds all rows.
 *
 * Sample: S examples at rows floor(i N / S), i = 0..S-1, of the training
 * split, whatever the rank count, shared over the ranks in contiguous
 * pieces (layout_shard), so 1, 2 or 4 ranks fit the same rows (results
 * equal up to rounding). Each pair aims at `rows` fit rows: [CLS] pairs
 * take one row from each of `rows` examples, every-token pairs all real
 * tokens of about rows / (mean length) examples spread evenly over the
 * sample; S is the larger need, at most N. Memory: the rows of all pairs,
 * (C + Ct) floats each, shared over the ranks.
 *
 * The teacher comes through a callback, so an offline store
 * (projection_fit_teacher_reader) and an online teacher feed it alike. */
#ifndef KD_STAGES_PROJECTION_FIT_H
#define KD_STAGES_PROJECTION_FIT_H

#include <stdint.h>

#include "kd/core/error.h"
#include "kd/io/dataset.h"
#include "kd/kd/loss_set.h"
#include "kd/model/bert.h"
#include "kd/parallel/comm.h"
#include "kd/stages/batch_rows.h"

/* Ridge of the fit: negligible next to the rows' own scale (unit-variance
 * states, thousands of rows), but it keeps the solve unique when the sample
 * has fewer rows than the student is wide. */
#define PROJECTION_FIT_RIDGE 1e-3
/* Default rows per pair: max(PROJECTION_FIT_MIN_ROWS, 4 (C + 1)). */
#define PROJECTION_FIT_MIN_ROWS 1024
/* At most this many projections are fitted in one call. */
#define PROJECTION_FIT_MAX 64

/* The teacher's outputs for the gathered rows b: a view whose hidden[l]
 * holds every teacher layer the set's hidden terms map ((n,t,Ct) all
 * tokens, or (n,Ct) [CLS]; v->hidden_tokens says which), valid until the
 * next call. Called once per batch of this rank's share, so ranks may call
 * it a different number of times (shares differ by one example): it must
 * not communicate among the student ranks. Returns 0 or -1 with err. */
typedef int (*projection_teacher_fn)(void *ctx, const struct batch_rows *b,
                                     struct kd_teacher_view *v, struct kd_err *err);

/* A callback over a struct teacher_reader (ctx), for the offline store. */
int projection_fit_teacher_reader(void *ctx, const struct batch_rows *b,
                                  struct kd_teacher_view *v, struct kd_err *err);

struct projection_fit_opts {
    int64_t batch;  /* examples per forward, >= 1: at most the student's opts.B and
                     * what the teacher callback takes */
    int64_t rows;   /* target fit rows per pair over all ranks; 0: the default */
    double ridge;   /* >= 0; negative: PROJECTION_FIT_RIDGE */
};

/* What was fitted; mean squared errors per element over the sample, before
 * (the projection as it was) and after the fit. */
struct projection_fit_pair {
    int term;                 /* index in the loss list */
    int32_t student_layer, teacher_layer;
    int64_t rows;             /* fit rows over all ranks */
    double mse_before, mse_after;
    double r2;                /* 1 - rss / tss of the fit */
};
struct projection_fit_report {
    int n;
    int64_t examples;         /* S */
    struct projection_fit_pair pair[PROJECTION_FIT_MAX];
};

/* Fits every projection of the set's hidden terms (none: returns 0 at
 * once) and writes W and c into the set's parameter block
 * (kd_loss_set_params). student is the whole initial student (it is run
 * forward in eval mode; its parameters are not changed), train the training
 * split as every rank holds it. Collective over c: every rank must call,
 * with the same set, data and options; a failure on any rank returns -1 on
 * every rank (the failing rank's message, "another rank ..." elsewhere).
 * Logs one line per projection on rank 0. report may be NULL. */
int projection_fit(struct kd_loss_set *set, struct bert_model *student,
                   const struct dataset *train, const struct comm *c,
                   projection_teacher_fn teacher, void *teacher_ctx,
                   const struct projection_fit_opts *opts, struct projection_fit_report *report,
                   struct kd_err *err);

#endif
