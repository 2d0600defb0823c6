/* batch_plan.h: which rows a data-parallel replica trains on at each step
 * (stages layer). One definition shared by the training loop and by the
 * teacher ranks of an online distill stage, which must produce the
 * teacher's outputs for exactly the micro-batches the students will ask
 * for, in the same order, without being told the rows.
 *
 * The global batch of step s is stage.batch examples of the epoch's shuffle
 * (dataset_epoch_order(seed, epoch)), the last batch of an epoch being
 * shorter; it is sorted by length (batch_rows_sort) and split without
 * overlap into n_shards contiguous shards (layout_shard). A shard runs as
 * micro-batches of ceil(shard / accumulate) rows, the last one shorter. */
#ifndef KD_STAGES_BATCH_PLAN_H
#define KD_STAGES_BATCH_PLAN_H

#include <stdint.h>

#include "kd/io/dataset.h"
#include "kd/job/job.h"

struct batch_plan {
    const struct dataset *train;
    int64_t N, B, accumulate;     /* examples, global batch, micro-batches per shard */
    int64_t per_epoch, total;     /* steps per epoch and of the stage */
    uint64_t seed;
    int n_shards;
    int64_t *order;               /* (N) the cached epoch's shuffle */
    int64_t cached_epoch;
    int64_t *rows;                /* (B) the current step's rows, sorted by length */
    int64_t step, epoch, pos, b;  /* current step, its epoch, position and rows */
};

/* Steps of a stage: round(epochs * ceil(N / batch)), or max_steps if set. */
int64_t batch_plan_total_steps(const struct stage_cfg *st, int64_t N);
/* Rows a micro-batch may have: the buffer size a model needs. */
int64_t batch_plan_max_micro_rows(const struct stage_cfg *st, int n_shards);

/* Returns 0, or -1 when out of memory. */
int batch_plan_init(struct batch_plan *p, const struct stage_cfg *st,
                    const struct dataset *train, uint64_t seed, int n_shards);
void batch_plan_free(struct batch_plan *p);

/* Makes `step` the current step (any order; an epoch's shuffle is cached). */
void batch_plan_step(struct batch_plan *p, int64_t step);

/* Micro-batches of `shard` at `step` (0 when the shard is empty): needs no
 * current step, so a receiver can size what is coming. */
int64_t batch_plan_micro_count(const struct batch_plan *p, int64_t step, int shard);

/* Micro-batch j of `shard` at the current step: its rows (*n of them, a
 * pointer into p->rows) and the run position of its first row (epoch * N +
 * position in the epoch's order), which keys dropout. */
void batch_plan_micro(const struct batch_plan *p, int shard, int64_t j, const int64_t **rows,
                      int64_t *n, uint64_t *first);

#endif
