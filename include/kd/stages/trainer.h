/* trainer.h: the training loop shared by the finetune and distill stages
 * (stages layer).
 *
 * Data: the global batch of a step (stage.batch examples, in the epoch's
 * shuffle, dataset_epoch_order) is sorted by length, then split without
 * overlap into n_shards contiguous shards (layout_shard): shard s is
 * trained by the data-parallel replica s. A shard runs as `accumulate`
 * micro-batches, each cut to its longest row. Every row is weighted
 * 1 / (global batch), so the gradients summed over micro-batches and
 * replicas are those of the global batch's mean loss. Dropout masks are
 * keyed by the row's position in the run (epoch * N + position in the
 * epoch's order), so a step drops the same units on any replica count
 * whose micro-batches cut the sorted batch at the same rows.
 *
 * Parameters: one or more groups (the model's flat block, plus e.g. the
 * learned projections of a distillation loss), each with its own AdamW
 * state; gradient clipping uses the norm over all groups (and over the
 * pipeline stages through sync->reduce_sumsq). sync->reduce_grads is called
 * once per step with group 0 and must sum every group (the other groups
 * are registered with the data-parallel reducer).
 *
 * Steps: total = round(epochs * ceil(N / batch)), or max_steps if set.
 * The learning rate warms up over stage.warmup of them and decays as
 * stage.decay says. A step with a non-finite gradient norm is skipped and
 * counted. Every rank runs the same number of steps (lock-step). */
#ifndef KD_STAGES_TRAINER_H
#define KD_STAGES_TRAINER_H

#include <stddef.h>
#include <stdint.h>

#include "kd/core/error.h"
#include "kd/io/dataset.h"
#include "kd/io/train_state.h"
#include "kd/job/job.h"
#include "kd/model/optim.h"
#include "kd/parallel/comm.h"
#include "kd/stages/batch_rows.h"

#define TRAINER_MAX_GROUPS 4
#define TRAINER_MAX_TERMS 8

struct trainer_group {
    const char *name;               /* "model", "projections" */
    float *params, *grads, *m, *v;  /* (count) each */
    size_t count;
    struct optim_segment *segs;     /* (nseg) */
    size_t nseg;
    struct optim opt;               /* filled by trainer_init */
};

/* What the caller does per micro-batch and per evaluation. */
struct trainer_hooks {
    /* Forward and backward of the gathered rows (b) with every row weighted
     * row_weight; gradients accumulate into the groups' grads. Returns the
     * weighted loss sum of the rows and adds each term's weighted sum to
     * terms[0..n_terms). A pipeline stage that does not see the loss
     * returns 0 (see loss_comm). */
    double (*micro_step)(void *ctx, const struct batch_rows *b, uint64_t first_example,
                         int64_t step, double row_weight, int last_micro, double *terms);
    /* Called before each step (e.g. PID/SID phase, temperature); may be NULL. */
    void (*begin_step)(void *ctx, int64_t step, int64_t total_steps, double last_loss);
    /* Dev evaluation (collective); returns the primary metric. May be NULL. */
    double (*evaluate)(void *ctx);
    /* After each step, on every rank: the global loss and terms, the dev
     * metric when one was computed at this step (else NAN). May be NULL. */
    void (*after_step)(void *ctx, int64_t step, double epoch, double lr, double loss,
                       const double *terms, double metric);
    /* Extra integer state of the caller for checkpoints (e.g. a PID/SID
     * phase): save fills v[0..*n) (at most 4), restore reads them back.
     * May be NULL. */
    void (*state_ints)(void *ctx, struct train_state_int *v, size_t *n, int restore);
    void *ctx;
};

struct trainer {
    const struct job *job;
    const struct stage_cfg *st;
    const struct comm *comm;
    const struct dataset *train;
    int shard, n_shards;            /* data-parallel replica and count */
    MPI_Comm loss_comm;             /* sums the losses into the global ones:
                                     * the replicas (or all ranks that compute
                                     * a loss; others contribute 0) */
    struct trainer_group group[TRAINER_MAX_GROUPS];
    int n_groups;
    const struct optim_grad_sync *sync; /* data-parallel / pipeline hooks; NULL: one rank */
    struct trainer_hooks hooks;
    /* Checkpoints (io/train_state.h) at job.checkpoint_every steps and
     * when interrupted; NULL ckpt_path: none. Ranks with ckpt_write write
     * (rank 0 of data-parallel replicas; each pipeline stage's first
     * replica); every rank reads on resume. */
    char *ckpt_path;
    int ckpt_write;
    const char *fingerprint;        /* the runner's, checked on resume */
    int64_t start_step;             /* steps already done (set by trainer_resume) */
    int n_terms;
    const char *term_names[TRAINER_MAX_TERMS];
    /* results */
    int64_t total_steps, steps_done, skipped_steps;
    double last_loss, last_terms[TRAINER_MAX_TERMS], last_metric;
    double examples_per_s;
};

/* Micro-batch rows a replica may be given: the buffer size a model needs. */
int64_t trainer_max_micro_rows(const struct job *job, const struct stage_cfg *st, int n_shards);

/* Initialises the optimizers of every group (job's optimizer settings).
 * Returns 0 or -1 with err. */
int trainer_init(struct trainer *t, struct kd_err *err);

/* Loads the checkpoint at t->ckpt_path (every rank) and sets start_step and
 * the optimizers' state; after trainer_init. Returns 0 or -1 with err (the
 * same outcome on every rank). */
int trainer_resume(struct trainer *t, struct kd_err *err);

/* Sets up checkpoints for a stage: <output_dir>/checkpoints/<stage>.state
 * [.pNN].h5 (pipe_stage >= 0: one file per pipeline stage), written by
 * ranks with `writer`; when ctx->resume, resumes from it (trainer_resume).
 * After trainer_init. Returns 0 or -1 with err. */
struct stage_ctx;
int trainer_checkpoints(struct trainer *t, const struct stage_ctx *ctx, int pipe_stage,
                        int writer, struct kd_err *err);
/* Removes the checkpoint once the stage's outputs are written (writers). */
void trainer_checkpoints_done(struct trainer *t);

/* Runs every step. Returns a kd_exit code (KD_EXIT_INTERRUPTED when a
 * signal asked to stop; the caller saves state). */
int trainer_run(struct trainer *t, struct kd_err *err);

#endif
