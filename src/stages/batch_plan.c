/* batch_plan.c: the step -> rows plan of batch_plan.h. */
#include "kd/stages/batch_plan.h"
#include "kd/parallel/layout.h"
#include "kd/stages/batch_rows.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int64_t batch_plan_total_steps(const struct stage_cfg *st, int64_t N)
{
    if (st->max_steps > 0)
        return st->max_steps;
    const int64_t per_epoch = (N + st->batch - 1) / st->batch;
    const int64_t n = (int64_t)llround(st->epochs * (double)per_epoch);
    return n > 0 ? n : 1;
}

int64_t batch_plan_max_micro_rows(const struct stage_cfg *st, int n_shards)
{
    const int64_t shard = (st->batch + n_shards - 1) / n_shards;
    return (shard + st->accumulate - 1) / st->accumulate;
}

int batch_plan_init(struct batch_plan *p, const struct stage_cfg *st,
                    const struct dataset *train, uint64_t seed, int n_shards)
{
    memset(p, 0, sizeof *p);
    p->train = train;
    p->N = train->n, p->B = st->batch, p->accumulate = st->accumulate;
    p->per_epoch = (p->N + p->B - 1) / p->B;
    p->total = batch_plan_total_steps(st, p->N);
    p->seed = seed;
    p->n_shards = n_shards;
    p->cached_epoch = -1;
    p->step = -1;
    p->order = malloc((size_t)p->N * sizeof *p->order);
    p->rows = malloc((size_t)p->B * sizeof *p->rows);
    if (!p->order || !p->rows) {
        batch_plan_free(p);
        return -1;
    }
    return 0;
}

void batch_plan_free(struct batch_plan *p)
{
    free(p->order), free(p->rows);
    p->order = p->rows = NULL;
}

static int64_t step_rows(const struct batch_plan *p, int64_t step)
{
    const int64_t pos = (step % p->per_epoch) * p->B;
    return pos + p->B <= p->N ? p->B : p->N - pos;
}

void batch_plan_step(struct batch_plan *p, int64_t step)
{
    p->step = step;
    p->epoch = step / p->per_epoch;
    p->pos = (step % p->per_epoch) * p->B;
    if (p->epoch != p->cached_epoch) {
        dataset_epoch_order(p->order, p->N, p->seed, p->epoch);
        p->cached_epoch = p->epoch;
    }
    p->b = step_rows(p, step);
    memcpy(p->rows, p->order + p->pos, (size_t)p->b * sizeof *p->rows);
    batch_rows_sort(p->rows, p->b, p->train->lengths);
}

/* The shard's rows [*s0, *s0 + *local) of a step of b rows, and its
 * micro-batch size. */
static void shard_of(const struct batch_plan *p, int64_t b, int shard, int64_t *s0,
                     int64_t *local, int64_t *mb)
{
    long long a, e;
    layout_shard(b, shard, p->n_shards, &a, &e);
    *s0 = a;
    *local = e - a;
    *mb = *local > 0 ? (*local + p->accumulate - 1) / p->accumulate : 0;
}

int64_t batch_plan_micro_count(const struct batch_plan *p, int64_t step, int shard)
{
    int64_t s0, local, mb;
    shard_of(p, step_rows(p, step), shard, &s0, &local, &mb);
    return mb ? (local + mb - 1) / mb : 0;
}

void batch_plan_micro(const struct batch_plan *p, int shard, int64_t j, const int64_t **rows,
                      int64_t *n, uint64_t *first)
{
    int64_t s0, local, mb;
    shard_of(p, p->b, shard, &s0, &local, &mb);
    const int64_t at = j * mb;
    *n = at + mb <= local ? mb : local - at;
    *rows = p->rows + s0 + at;
    *first = (uint64_t)(p->epoch * p->N + p->pos + s0 + at);
}
