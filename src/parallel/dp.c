/* dp.c: the data-parallel gradient reducer: non-blocking all-reduces of
 * the buckets posted from the backward's grads_ready hook, the wait before
 * the optimizer, extra blocks, and the optimizer hook (parallel layer;
 * knows nothing of losses). Contracts in include/kd/parallel/dp.h; the
 * bucket table is built by dp_buckets.c, the word embeddings are summed
 * by dp_sparse.c. */
#include "kd/parallel/dp_internal.h"
#include "kd/core/log.h"
#include "kd/core/timers.h"
#include "kd/parallel/comm.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Floats per cache line: bucket sizes are whole lines, so buckets cut from
 * an aligned top start on aligned offsets. */
#define DP_LINE_FLOATS 16

/* Checks that every rank passed the same values v[0..n): a min and a max
 * reduction must agree. Collective; returns 1 when they all match. */
static int same_on_all_ranks(MPI_Comm comm, const uint64_t *v, int n)
{
    uint64_t lo[8], hi[8];
    KD_ASSERT(n <= 8, "too many values (%d)", n);
    MPI_CHECK(MPI_Allreduce(v, lo, n, MPI_UINT64_T, MPI_MIN, comm));
    MPI_CHECK(MPI_Allreduce(v, hi, n, MPI_UINT64_T, MPI_MAX, comm));
    return memcmp(lo, hi, (size_t)n * sizeof *lo) == 0;
}

int dp_reducer_init(struct dp_reducer *r, MPI_Comm comm, const struct bert_model *m,
                    const struct dp_opts *opts, struct kd_err *err)
{
    static const struct dp_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    memset(r, 0, sizeof *r);
    r->comm = MPI_COMM_NULL;
    if (!m->opts.param_grads || !m->grads_arena.base)
        return kd_errf(err, "data-parallel reducer: the model has no gradient block "
                       "(built without opts.param_grads)");
    size_t bytes = opts->bucket_bytes ? opts->bucket_bytes : DP_BUCKET_BYTES_DEFAULT;
    size_t cap = bytes / sizeof(float) / DP_LINE_FLOATS * DP_LINE_FLOATS;
    if (cap < DP_LINE_FLOATS)
        cap = DP_LINE_FLOATS;
    if (cap > DP_MAX_CALL_FLOATS)
        cap = DP_MAX_CALL_FLOATS;
    /* the row-sparse tensor, if the model has one and it is wanted */
    const int word = opts->dense_word_embeddings
                         ? -1 : bert_table_find(&m->ptab, "embeddings.word_embeddings.weight");

    /* a private communicator: the buckets' collectives cannot be matched
     * with anyone else's, whatever the caller does between post and wait */
    MPI_CHECK(MPI_Comm_dup(comm, &r->comm));
    MPI_CHECK(MPI_Comm_set_errhandler(r->comm, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_rank(r->comm, &r->rank));
    MPI_CHECK(MPI_Comm_size(r->comm, &r->size));

    const uint64_t mine[4] = {m->ptab.floats, cap, (uint64_t)m->cfg.num_hidden_layers,
                              (uint64_t)(int64_t)word};
    if (!same_on_all_ranks(r->comm, mine, 4)) {
        MPI_CHECK(MPI_Comm_free(&r->comm));
        return kd_errf(err, "data-parallel reducer: the %d ranks disagree about the model "
                       "or the options (rank %d: %zu gradient floats, %lld layers, buckets "
                       "of %zu floats, word embeddings %s): expected the same model and "
                       "options on every rank", r->size, r->rank, m->ptab.floats,
                       (long long)m->cfg.num_hidden_layers, cap,
                       word >= 0 ? "row-sparse" : "in buckets");
    }

    r->grads = (float *)(void *)m->grads_arena.base;
    r->count = m->ptab.floats;
    r->layers = m->cfg.num_hidden_layers;
    r->bucket_floats = cap;
    r->nbucket = dp_buckets_build(&r->bucket, &m->ptab, r->layers, cap, word);
    if (word >= 0) {
        /* its range ends where the next tensor starts (or the block ends) */
        const struct bert_tensor *t = &m->ptab.t[word];
        size_t end = r->count;
        for (int i = 0; i < m->ptab.n; i++)
            if (m->ptab.t[i].offset > t->offset && m->ptab.t[i].offset < end)
                end = m->ptab.t[i].offset;
        dp_sparse_init(r, t, end);
    }
    r->req = kd_malloc((r->nbucket > 0 ? r->nbucket : 1) * sizeof *r->req);
    r->posted = kd_calloc(r->nbucket > 0 ? r->nbucket : 1, 1);
    for (size_t i = 0; i < r->nbucket; i++)
        r->req[i] = MPI_REQUEST_NULL;
    return 0;
}

void dp_reducer_free(struct dp_reducer *r)
{
    KD_ASSERT(r->nposted == 0, "data-parallel reducer freed with %zu buckets in flight",
              r->nposted);
    if (r->comm != MPI_COMM_NULL)
        MPI_CHECK(MPI_Comm_free(&r->comm));
    free(r->bucket);
    free(r->req);
    free(r->posted);
    free(r->sparse_mask);
    memset(r, 0, sizeof *r);
    r->comm = MPI_COMM_NULL;
}

int dp_reducer_add_block(struct dp_reducer *r, float *data, size_t count, const char *name,
                         struct kd_err *err)
{
    /* agreed before anything can fail locally, so every rank returns alike */
    const uint64_t mine[2] = {count, (uint64_t)r->nextra};
    if (!same_on_all_ranks(r->comm, mine, 2))
        return kd_errf(err, "data-parallel reducer: extra gradient block '%s': the ranks "
                       "disagree (rank %d: %zu floats as block %d): expected the same "
                       "blocks in the same order on every rank", name ? name : "?", r->rank,
                       count, r->nextra);
    if (r->nextra == DP_MAX_EXTRA_BLOCKS)
        return kd_errf(err, "data-parallel reducer: extra gradient block '%s': expected at "
                       "most %d blocks", name ? name : "?", DP_MAX_EXTRA_BLOCKS);
    KD_ASSERT(count == 0 || data, "block '%s' of %zu floats at NULL", name ? name : "?", count);
    r->extra[r->nextra++] = (struct dp_block){data, count, name};
    return 0;
}

void dp_reducer_attach(struct dp_reducer *r, struct bert_grad_in *gin, int last_micro_step)
{
    /* a second armed backward before the wait would add into buckets that
     * are being reduced */
    KD_ASSERT(r->nposted == 0, "backward armed while %zu buckets of the previous step are "
              "in flight (call dp_reducer_wait first)", r->nposted);
    r->armed = last_micro_step != 0;
    gin->grads_ready = r->armed ? dp_reducer_grads_ready : NULL;
    gin->grads_ready_ctx = r->armed ? r : NULL;
}

/* Starts the sum of bucket i. */
static void post(struct dp_reducer *r, size_t i)
{
    const struct dp_bucket *b = &r->bucket[i];
    MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, r->grads + b->offset, (int)b->count, MPI_FLOAT,
                             MPI_SUM, r->comm, &r->req[i]));
    r->posted[i] = 1;
    r->nposted++;
}

/* Posts, in table order, every unposted bucket complete at backward
 * position `upto`; returns how many. Table order is the same on every
 * rank, which is what keeps the collectives matched. */
static size_t post_ready(struct dp_reducer *r, int64_t upto)
{
    size_t n = 0;
    for (size_t i = r->first_unposted; i < r->nbucket; i++) {
        if (!r->posted[i] && r->bucket[i].ready_at <= upto) {
            post(r, i);
            n++;
        }
    }
    while (r->first_unposted < r->nbucket && r->posted[r->first_unposted])
        r->first_unposted++;
    return n;
}

void dp_reducer_grads_ready(void *ctx, int64_t layer)
{
    struct dp_reducer *r = ctx;
    if (!r->armed)
        return;
    const double t0 = wall_seconds();
    /* bert.h: layer = L after the heads, l after layer l, -1 after the
     * embeddings; as a backward position 0, L - l, L + 1 */
    const int64_t upto = layer < 0 ? r->layers + 1 : r->layers - layer;
    r->stats.posted_in_backward += (int64_t)post_ready(r, upto);
    /* progress: Open MPI moves a non-blocking collective on only inside
     * MPI calls, so each layer boundary advances every bucket in flight */
    if (r->nposted > 0) {
        int flag = 0;
        MPI_CHECK(MPI_Testall((int)r->nbucket, r->req, &flag, MPI_STATUSES_IGNORE));
    }
    const double dt = wall_seconds() - t0;
    r->stats.hook_seconds += dt;
    timer_add(TIMER_ALLREDUCE, dt);
}

int dp_reducer_wait(struct dp_reducer *r, struct kd_err *err)
{
    (void)err;
    const double t0 = wall_seconds();
    r->stats.posted_at_wait += (int64_t)post_ready(r, INT64_MAX);
    /* the word embeddings while the last buckets are in flight (its
     * blocking calls progress them too), then the buckets, then the extra
     * blocks in registration order: the same sequence on every rank */
    if (r->sparse_rows_total > 0 && r->size > 1) /* one rank: already the sum */
        dp_sparse_sum(r);
    MPI_CHECK(MPI_Waitall((int)r->nbucket, r->req, MPI_STATUSES_IGNORE));
    for (int k = 0; k < r->nextra; k++)
        dp_allreduce_floats(r, r->extra[k].data, r->extra[k].count);
    memset(r->posted, 0, r->nbucket);
    r->nposted = 0;
    r->first_unposted = 0;
    r->armed = 0;
    r->stats.steps++;
    const double dt = wall_seconds() - t0;
    r->stats.wait_seconds += dt;
    timer_add(TIMER_ALLREDUCE, dt);
    return 0;
}

/* struct optim_grad_sync's reduce_grads: the optimizer passes the block it
 * was given, which must be the one the buckets point into. */
static int reduce_grads_hook(void *ctx, float *grads, size_t count, struct kd_err *err)
{
    struct dp_reducer *r = ctx;
    if (grads != r->grads || count != r->count)
        return kd_errf(err, "data-parallel reducer: expected the model's gradient block "
                       "(%zu floats at %p), got %zu floats at %p", r->count,
                       (void *)r->grads, count, (void *)grads);
    return dp_reducer_wait(r, err);
}

struct optim_grad_sync dp_reducer_sync(struct dp_reducer *r)
{
    return (struct optim_grad_sync){.reduce_grads = reduce_grads_hook, .reduce_sumsq = NULL,
                                    .ctx = r};
}

void dp_allreduce_floats(const struct dp_reducer *r, float *p, size_t n)
{
    while (n > 0) {
        const size_t k = n < DP_MAX_CALL_FLOATS ? n : DP_MAX_CALL_FLOATS;
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, p, (int)k, MPI_FLOAT, MPI_SUM, r->comm));
        p += k;
        n -= k;
    }
}

void dp_sum_f64(const struct dp_reducer *r, double *x, int n)
{
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, r->comm));
}
