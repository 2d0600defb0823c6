/* dp.h: data-parallel gradient reduction for student training (parallel
 * layer; knows nothing of losses). Every rank of a communicator holds a
 * replica of one struct bert_model and trains on its own rows of the global
 * batch; before each optimizer step the replicas' gradients are summed, so
 * all replicas apply the same update and stay identical.
 *
 * Buckets. The model's flat gradient block (m->ptab layout, bert_params.h)
 * is cut into buckets: contiguous ranges of the block, taken in backward
 * order (heads, layer L-1, ..., layer 0, embeddings), each at most
 * bucket_bytes and never spanning two parts of the model, so a bucket is
 * complete the moment the backward finishes the part that owns it:
 *
 *   block  [ embeddings | layer 0 | ... | layer L-1 | heads ]   offsets ->
 *   bucket   ...  5  4  |  3  2   | ... |   1       |   0        <- backward
 *
 * (padding floats between tensors go with the tensor before them; a part
 * larger than one bucket is split into bucket_bytes pieces from its top,
 * the piece at its bottom being the remainder). The boundaries depend only
 * on the layout and bucket_bytes, so every rank computes the same table
 * without communicating.
 *
 * Overlap (STYLE.md principle 7). bert_backward calls grads_ready after the
 * heads, after each layer and after the embeddings. On the backward of the
 * last micro-step of an optimizer step the callback posts
 * MPI_Iallreduce(MPI_IN_PLACE, SUM) for every bucket that has become
 * complete and calls MPI_Testall on the outstanding ones: Open MPI advances
 * non-blocking collectives only inside MPI calls, so these tests are what
 * moves the reduction forward while the backward computes. dp_reducer_wait
 * posts whatever is left, sums the word embeddings (below), waits for the
 * buckets and sums the extra blocks.
 *
 * One optimizer step with accumulation over M micro-steps:
 *
 *   bert_zero_grads(m);  zero the extra blocks
 *   for k in 0..M-1:
 *       forward, loss with weight rows_local / rows_global of the whole step
 *       dp_reducer_attach(&r, &gin, k == M - 1);      arm the last backward
 *       bert_backward(m, &gin);                       buckets start early
 *   struct optim_grad_sync sync = dp_reducer_sync(&r);
 *   optim_grad_prepare(grads, N, segs, nseg, 1.0, max_norm, &sync, &gi, err);
 *   optim_step(...)
 *
 * Earlier micro-steps only accumulate locally; reducing them would cost M
 * times the traffic for the same sum. The hook sums, never averages: scale
 * each rank's loss by its share of the global batch (dp_batch_shard gives
 * the rows), then the sum over ranks is the mean over the global batch,
 * whatever the split (ranks may hold different row counts).
 *
 * Word embeddings (row-sparse). embeddings.word_embeddings.weight (V, C)
 * is most of a student's gradient (30522 x 312 = 9.5M of the 14.4M floats
 * of a 4/312 student, and the last part the backward finishes, so nothing
 * hides its sum) yet a classifier's batch touches only its tokens' rows.
 * It is therefore not in a bucket: dp_reducer_wait finds the rows that are
 * non-zero on some rank (a bit mask of rows whose bits are not all zero,
 * OR-reduced), packs those rows to the front of the tensor in row order,
 * sums only them, and unpacks. Rows outside the union are +0.0 bit for bit
 * on every rank, exactly what a dense sum would give them, so the result is
 * the dense one (for 2 ranks bitwise, since a + b is commutative; for more
 * ranks the association of the summands may differ, see Determinism). When
 * the union holds more than half the rows (an MLM head's tied decoder makes
 * every row non-zero) the tensor is summed densely in place instead.
 * dp_opts.dense_word_embeddings puts the tensor back into the buckets. On
 * one rank the tensor is left as it is (its sum), without the scan.
 *
 * Extra blocks. Gradients that are not in the model (a distillation loss's
 * learned projection, say) are registered once with dp_reducer_add_block
 * and summed in dp_reducer_wait with blocking all-reduces after the
 * buckets; they are small, so there is little to overlap.
 *
 * Determinism. For a fixed rank count, options and data every rank issues
 * the same collectives, on the same element counts (bucket sizes are fixed;
 * the row-sparse count is the union of the rows, a function of the data),
 * in the same order, on a communicator of its own (a duplicate, so other
 * traffic cannot interleave). Open MPI picks its reduction algorithm from
 * (communicator size, count, datatype, op) only, never from timing, so
 * repeated runs are bitwise equal; whether a bucket was posted during the
 * backward or at wait time does not change the result either. Across rank counts results are equal only to
 * within rounding: with R ranks each parameter's gradient is the sum of R
 * partial sums, each accumulated over that rank's rows (inside the sgemm of
 * the weight gradient), and fp32 addition is not associative, so 1, 2 and
 * 4 ranks round differently (tests/mpi/p_dp.c measures a few 1e-8 of the
 * largest gradient, and parameters within 1e-7 of one rank's after 6 AdamW
 * steps). Dropout does not depend on the split: masks
 * are indexed by the global example (bert_batch.first_example).
 *
 * Failures. Every MPI call goes through MPI_CHECK, and a rank that dies
 * (kd_die, KD_ASSERT) calls MPI_Abort, which ends the ranks waiting in
 * dp_reducer_wait; nothing here can leave a rank blocked forever. */
#ifndef KD_PARALLEL_DP_H
#define KD_PARALLEL_DP_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "kd/core/error.h"
#include "kd/model/bert.h"
#include "kd/model/optim.h"

/* Default bucket size: big enough that per-message latency is small, small
 * enough that the first bucket starts early in the backward. */
#define DP_BUCKET_BYTES_DEFAULT ((size_t)4 << 20)
/* Extra (non-model) gradient blocks a reducer can hold. */
#define DP_MAX_EXTRA_BLOCKS 16

/* One bucket: a contiguous range of the gradient block. */
struct dp_bucket {
    size_t offset;      /* first float in the block */
    size_t count;       /* floats, 1 .. bucket_bytes / 4 */
    int64_t ready_at;   /* backward position that completes it: 0 = heads,
                         * L - l = layer l, L + 1 = embeddings */
};

/* A gradient block outside the model, summed at wait time. */
struct dp_block {
    float *data;        /* (count) borrowed */
    size_t count;
    const char *name;   /* for messages (borrowed) */
};

/* Options of dp_reducer_init; a zeroed struct is the default. */
struct dp_opts {
    size_t bucket_bytes;        /* 0: DP_BUCKET_BYTES_DEFAULT; rounded down to
                                 * whole 64-byte lines, at least one, at most
                                 * INT_MAX floats */
    int dense_word_embeddings;  /* 1: word embeddings in buckets, not row-sparse */
};

/* Counters since dp_reducer_init (tests and the benchmark read them). */
struct dp_stats {
    int64_t steps;              /* completed dp_reducer_wait calls */
    int64_t posted_in_backward; /* buckets posted by the grads_ready hook */
    int64_t posted_at_wait;     /* buckets posted by dp_reducer_wait */
    int64_t sparse_steps;       /* word embeddings summed row-sparse */
    int64_t sparse_rows;        /* rows summed that way, over those steps */
    int64_t dense_fallbacks;    /* steps whose union exceeded sparse_max_rows */
    double wait_seconds;        /* inside dp_reducer_wait (also TIMER_ALLREDUCE) */
    double hook_seconds;        /* posting and testing inside the hook (ditto) */
};

struct dp_reducer {
    MPI_Comm comm;              /* private duplicate of the data-parallel communicator */
    int rank, size;
    float *grads;               /* (count) the model's gradient block, borrowed */
    size_t count;               /* m->ptab.floats */
    int64_t layers;             /* L of the model */
    size_t bucket_floats;       /* maximum bucket size */
    struct dp_bucket *bucket;   /* [nbucket] in backward order */
    size_t nbucket;
    MPI_Request *req;           /* [nbucket] MPI_REQUEST_NULL when not in flight */
    unsigned char *posted;      /* [nbucket] 1 once posted in the current step */
    size_t first_unposted;      /* every bucket before it is posted */
    size_t nposted;             /* buckets posted in the current step */
    int armed;                  /* the current backward is the last micro-step */
    /* row-sparse word embeddings (sparse_rows_total = 0: none) */
    size_t sparse_offset;       /* first float of the tensor in the block */
    size_t sparse_end;          /* end of its range (next tensor's offset) */
    int64_t sparse_rows_total;  /* V */
    int64_t sparse_cols;        /* C */
    int64_t sparse_max_rows;    /* above this union size: dense sum (V / 2) */
    uint64_t *sparse_mask;      /* [ceil(V / 64)] rows non-zero on some rank */
    struct dp_block extra[DP_MAX_EXTRA_BLOCKS];
    int nextra;
    struct dp_stats stats;
};

/* The bucket table of a parameter layout (dp_buckets.c; no MPI): buckets of
 * at most cap floats in backward order, as pictured above, for a model of L
 * layers. Together with the range of tensor `skip` (from its offset to the
 * next tensor's; skip < 0: none) they tile [0, tab->floats) exactly once.
 * *out is a new array (free it); returns the bucket count. */
size_t dp_buckets_build(struct dp_bucket **out, const struct bert_table *tab, int64_t L,
                        size_t cap, int skip);

/* Collective over comm. Builds the bucket table for the gradient block of
 * m (which needs opts.param_grads) and duplicates comm; opts NULL means
 * every default. -1 with a message when m has no gradient block or the
 * ranks disagree about the block size or the options (different models
 * would otherwise hang or mix unrelated numbers). Keeps pointers into m:
 * free the reducer first. */
int dp_reducer_init(struct dp_reducer *r, MPI_Comm comm, const struct bert_model *m,
                    const struct dp_opts *opts, struct kd_err *err);
/* Collective (frees the duplicate communicator). No step may be in flight. */
void dp_reducer_free(struct dp_reducer *r);

/* Collective: registers `count` floats at `data` to be summed in every
 * dp_reducer_wait, after the buckets. All ranks register the same blocks in
 * the same order; -1 when the counts differ across ranks or the table is
 * full (the message names the block). */
int dp_reducer_add_block(struct dp_reducer *r, float *data, size_t count, const char *name,
                         struct kd_err *err);

/* Prepares gin for the next bert_backward: with last_micro_step = 1 the
 * backward posts buckets as they complete (gin->grads_ready is set), with 0
 * it only accumulates (the hook is cleared). Arming a backward while the
 * previous step's reduction is still in flight is an internal error. */
void dp_reducer_attach(struct dp_reducer *r, struct bert_grad_in *gin, int last_micro_step);

/* The grads_ready callback dp_reducer_attach installs (ctx = r); exposed
 * for callers that drive several models' backward themselves. */
void dp_reducer_grads_ready(void *ctx, int64_t layer);

/* Completes the reduction of one optimizer step on every rank: posts the
 * buckets not yet posted (all of them when no backward was armed, e.g. a
 * rank with no rows), sums the word embeddings row-sparse, waits for every
 * bucket, then sums the extra blocks. Afterwards every rank's gradient
 * block and extra blocks hold the sums.
 * The time spent counts in TIMER_ALLREDUCE. Returns 0 (MPI errors end the
 * job through MPI_CHECK; err is for the hook's contract). */
int dp_reducer_wait(struct dp_reducer *r, struct kd_err *err);

/* The optimizer's hook: reduce_grads = dp_reducer_wait on r (grads and
 * count must be r's block, else -1 with a message), reduce_sumsq = NULL
 * (data-parallel replicas hold every parameter). */
struct optim_grad_sync dp_reducer_sync(struct dp_reducer *r);

/* Blocking sum of n doubles over the reducer's ranks, in place (reported
 * losses, example counts). */
void dp_sum_f64(const struct dp_reducer *r, double *x, int n);

/* ---- sharding of a global batch (dp_shard.c) -----------------------------
 * The rows of one global batch are split over the ranks in contiguous runs
 * (layout_shard: sizes differ by at most one, no overlap, nothing lost);
 * rank `rank` gets rows [begin, begin + local->B). The local batch borrows
 * the global arrays at that row, keeps T, P and the dropout step, and sets
 * first_example = global->first_example + begin, so its dropout masks are
 * exactly the ones a single rank holding the whole batch draws for those
 * rows. C (hidden size) is needed only to slice embedding_output. Labels
 * are the caller's: slice them at `begin` too. A rank can get 0 rows when
 * global->B < size: it must skip forward and backward but still call
 * dp_reducer_wait. Returns begin. */
int64_t dp_batch_shard(struct bert_batch *local, const struct bert_batch *global, int64_t C,
                       int rank, int size);

/* The loss weight of a shard: rows / global_rows, so that the sum over the
 * ranks of the weighted per-shard mean losses is the global mean. */
static inline float dp_loss_weight(int64_t rows, int64_t global_rows)
{
    return global_rows > 0 ? (float)((double)rows / (double)global_rows) : 0.0f;
}

#endif
