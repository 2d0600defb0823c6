/* pipeline_sync.c: the optimizer's reduction hooks for a pipeline stage
 * (parallel layer; model/optim.h calls them from optim_grad_prepare).
 *
 *   reduce_grads: sum the stage's gradient block over the replicas that
 *     hold the same stage (data parallelism across pipelines), then, when
 *     the MLM decoder's copy of the word embeddings sits on the last stage,
 *     add the two copies' gradients (stage 0: lookup, stage S-1: decoder)
 *     so both hold the whole gradient of the tied tensor and take the same
 *     optimizer step. Float addition commutes, so both sums are bitwise
 *     equal and the copies never drift.
 *   reduce_sumsq: sum the squared norm over the stages; the last stage
 *     first removes its copy's share (the tied tensor counts once), so
 *     every stage clips with the norm one process holding the whole model
 *     would compute (to double rounding of the partial sums). */
#include "pipeline_internal.h"

#include "kd/core/timers.h"
#include "kd/parallel/comm.h"

#include <stdlib.h>
#include <string.h>

#define WORD_EMB "embeddings.word_embeddings.weight"

/* The word embeddings' gradient of this stage's slice, or NULL. */
static float *word_grad(struct pipeline *pp, size_t *count)
{
    const struct bert_model *m = &pp->model;
    int i = bert_table_find(&m->ptab, WORD_EMB);
    if (i < 0 || !m->opts.param_grads)
        return NULL;
    *count = (size_t)m->ptab.t[i].numel;
    return (float *)(void *)m->grads_arena.base + m->ptab.t[i].offset;
}

static int reduce_grads(void *ctx, float *grads, size_t count, struct kd_err *err)
{
    struct pipeline *pp = ctx;
    (void)err;
    timer_start(TIMER_ALLREDUCE);
    if (pp->n_replicas > 1) {
        /* MPI counts are int: reduce in chunks */
        for (size_t off = 0; off < count;) {
            size_t n = count - off > (size_t)1 << 30 ? (size_t)1 << 30 : count - off;
            MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, grads + off, (int)n, MPI_FLOAT, MPI_SUM,
                                    pp->replicas));
            off += n;
        }
    }
    const int S = pp->n_stages;
    if (pp->tied_copy && (pp->stage == 0 || pp->stage == S - 1)) {
        size_t n = 0;
        float *g = word_grad(pp, &n);
        KD_ASSERT(g && n <= (size_t)1 << 30, "tied word embeddings without a gradient");
        float *other = kd_malloc(n * sizeof(float));
        const int peer = pp->stage == 0 ? S - 1 : 0;
        MPI_CHECK(MPI_Sendrecv(g, (int)n, MPI_FLOAT, peer, 0, other, (int)n, MPI_FLOAT, peer, 0,
                               pp->comm, MPI_STATUS_IGNORE));
        for (size_t i = 0; i < n; i++)
            g[i] += other[i];
        free(other);
    }
    timer_stop(TIMER_ALLREDUCE);
    return 0;
}

static int reduce_sumsq(void *ctx, double *sumsq, struct kd_err *err)
{
    struct pipeline *pp = ctx;
    (void)err;
    timer_start(TIMER_ALLREDUCE);
    if (pp->tied_copy && pipeline_is_last(pp)) {
        size_t n = 0;
        const float *g = word_grad(pp, &n);
        double own = 0.0;
        for (size_t i = 0; i < n; i++)
            own += (double)g[i] * (double)g[i];
        *sumsq -= own;
    }
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, sumsq, 1, MPI_DOUBLE, MPI_SUM, pp->comm));
    timer_stop(TIMER_ALLREDUCE);
    return 0;
}

void pipeline_grad_sync(struct pipeline *pp, struct optim_grad_sync *sync)
{
    memset(sync, 0, sizeof *sync);
    sync->reduce_grads = reduce_grads;
    sync->reduce_sumsq = reduce_sumsq;
    sync->ctx = pp;
}
