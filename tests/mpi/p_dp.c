/* p_dp.c: data-parallel student training (parallel/dp.h) against one
 * process holding the whole batch, on 1, 2 and 4 ranks (dp_tests.sh).
 *
 * A tiny random BERT classifier (2 layers of 16, dropout 0.1 everywhere)
 * takes STEPS AdamW steps (lr 1e-3, weight decay 0.01, clipping at norm
 * 1.0) on synthetic global batches of GB = 10 rows, split over the ranks
 * with dp_batch_shard (10 | 5,5 | 3,3,2,2 rows: uneven on 4 ranks). Every
 * rank also trains a reference model alone on the whole batch, so the
 * comparison needs no files. Checks:
 *   - the bucket table (small buckets: parts split, tensors split; default
 *     buckets: one per part) tiles the gradient block exactly once, never
 *     spans two parts, is in backward order, and is the same on all ranks;
 *   - ranks that disagree about the bucket size get an error, not a hang;
 *   - step-0 reduced gradients, per-step losses and gradient norms, and the
 *     final parameters equal the reference within the tolerances below, and
 *     bitwise on 1 rank (no rounding differences are possible there);
 *   - the replicas hold bitwise identical parameters after training;
 *   - a second run in the same process, and a run whose buckets are all
 *     posted at wait time (no overlap), are bitwise equal to the first;
 *     dp_tests.sh compares the digest printed here across two launches;
 *   - the reducers' wait and hook time is exactly what TIMER_ALLREDUCE holds;
 *   - an extra (non-model) gradient block is summed exactly (its entries
 *     are small integers, so any summation order is exact);
 *   - gradient accumulation over 2 micro-steps of 7 and 3 rows (only the
 *     last backward armed: no bucket posted by the first; on 4 ranks one
 *     rank has no row of the last) equals one big batch;
 *   - the word embeddings are summed row-sparse (VOCAB is large enough for
 *     that); in buckets (dp_opts.dense_word_embeddings) and through the
 *     dense fallback the results agree with the reference too, and bitwise
 *     with the row-sparse run on 1 and 2 ranks.
 *
 * Tolerances (np = 2 and 4 measured on the AVX-512 box, in brackets).
 * With R ranks each gradient is a sum of R partial sums instead of one sum
 * over the batch (dp.h): a few ulps of difference, which Adam carries into
 * the parameters at most as lr times the relative gradient difference per
 * step. Relative to the largest reference magnitude of the whole block:
 * step-0 gradients 1e-6 [2.8e-8], per-step losses and norms 1e-6 [3.0e-8,
 * 6.0e-8], parameters after 6 steps 1e-6 [5.9e-8], accumulation and the
 * dense word-embedding variants the same [7.8e-8, 5.9e-8]. Per tensor, each
 * element against max(|want|, 1e-2 * the tensor's max), the stricter view
 * for small weights: 1e-4 [params 2.0e-5, gradients 1.5e-5: entries near
 * cancellation]. attention.self.key.bias is compared in absolute terms:
 * its gradient is rounding noise around an exact 0 (softmax ignores a
 * shift common to all keys): gradients 1e-12 [8.0e-15], params 1e-7
 * [4.7e-9; Adam's eps keeps noise gradients from moving them far].
 *
 * `p_dp fail`: the last rank runs its forward, sleeps a second and dies
 * (kd_die) before its backward while the others wait for the buckets;
 * dp_tests.sh checks that the job ends with the message instead of
 * hanging. Exit status is the verdict; rank 0 prints TAP. */
#include "../tap.h"
#include "kd/cli/exit_codes.h"
#include "kd/core/log.h"
#include "kd/core/rng.h"
#include "kd/core/timers.h"
#include "kd/model/bert.h"
#include "kd/model/hf_config.h"
#include "kd/model/optim.h"
#include "kd/parallel/comm.h"
#include "kd/parallel/dp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STEPS 6
#define GB 10          /* global batch rows */
#define SEQ 12         /* tokens per row */
#define VOCAB 512      /* vocabulary: > 2x the tokens of a batch, so the
                        * word embeddings are summed row-sparse */
#define LABELS 3       /* labels */
#define NEXTRA 37      /* floats of the extra block */
#define ACCUM_LAST 3   /* rows of the last micro-step (accumulation) */
#define SMALL_BUCKET 512 /* bytes: 128 floats, splits parts and tensors */
#define LR 1e-3
#define TOL_GRAD 1e-6
#define TOL_LOSS 1e-6
#define TOL_PARAM 1e-6
#define TOL_TENSOR 1e-4
#define TOL_KEY_PARAM 1e-7
#define TOL_KEY_GRAD 1e-12

/* How a run trains. */
enum run_mode {
    RUN_REF,        /* one process, whole batch, no reducer */
    RUN_DP,         /* sharded, buckets posted during the backward */
    RUN_DP_LATE,    /* sharded, every bucket posted at wait time */
    RUN_DP_ACCUM,   /* sharded, micro-steps of GB - 3 and 3 rows per step */
    RUN_DP_DENSE,   /* as RUN_DP, word embeddings in buckets */
    RUN_DP_FALLBACK /* as RUN_DP, row-sparse path forced to its dense fallback */
};

/* One global batch of synthetic data (the same on every rank). */
struct data {
    int32_t ids[GB * SEQ], types[GB * SEQ], mask[GB * SEQ], labels[GB];
};

/* What a run leaves behind for the comparisons. */
struct run {
    double loss[STEPS], norm[STEPS];
    float *params;      /* (N) final parameters */
    float *grad0;       /* (N) reduced gradients of step 0 */
    float extra[NEXTRA];/* reduced extra block of the last step */
    struct dp_stats stats;
    int64_t first_micro_posted; /* buckets posted by non-last backwards */
};

static void tiny_config(struct bert_config *cfg)
{
    hf_config_defaults(cfg); /* dropout 0.1 (hidden, attention, classifier) */
    cfg->vocab_size = VOCAB;
    cfg->hidden_size = 16;
    cfg->num_hidden_layers = 2;
    cfg->num_attention_heads = 2;
    cfg->intermediate_size = 32;
    cfg->max_position_embeddings = 16;
    cfg->num_labels = LABELS;
    cfg->problem = BERT_PROBLEM_CLASSIFICATION;
    hf_config_init_layers(cfg);
}

/* Global batch of step t: random ids, two segments, padding at the end of
 * some rows, random labels. */
static void make_data(struct data *d, int64_t t)
{
    for (int64_t i = 0; i < GB; i++) {
        const int64_t len = SEQ - (int64_t)(rng_bits_at(7, (uint64_t)t, (uint64_t)i) % 5);
        for (int64_t j = 0; j < SEQ; j++) {
            const uint64_t at = (uint64_t)(i * SEQ + j);
            d->ids[i * SEQ + j] =
                j < len ? 1 + (int32_t)(rng_bits_at(11, (uint64_t)t, at) % (VOCAB - 1))
                                        : 0;
            d->types[i * SEQ + j] = j >= len / 2;
            d->mask[i * SEQ + j] = j < len;
        }
        d->labels[i] = (int32_t)(rng_bits_at(13, (uint64_t)t, (uint64_t)i) % LABELS);
    }
}

/* The extra block's contribution of global row i: small integers, so sums
 * in any order are exact and the reduced block has a closed form. */
static float extra_term(int64_t t, int64_t i, int j) { return (float)((t + 1) * (i + 1) + j); }

static struct optim_segment *model_segments(const struct bert_model *m)
{
    /* the optimizer's segment table is the model's size table (as
     * t_bert_train20.c builds it) */
    struct optim_segment *segs = bert_optim_segments(m);
    KD_ASSERT(segs, "out of memory");
    return segs;
}

static void model_new(struct bert_model *m)
{
    struct bert_config cfg;
    tiny_config(&cfg);
    struct bert_opts o = {.B = GB, .T = SEQ, .heads = BERT_HEAD_CLASSIFIER, .backward = 1,
                          .param_grads = 1, .optimizer = 1, .seed = 42};
    struct kd_err err;
    if (bert_init(m, &cfg, &o, &err) != 0)
        bail_out("%s", err.msg);
    bert_init_random(m, 5, 0.02f);
}

/* Forward + backward of the rows [r0, r0 + rows) of step t's global batch,
 * which this process holds (the whole micro-batch for RUN_REF, its shard
 * otherwise); loss weighted by rows / GB. Returns the weighted loss. */
static double micro_step(struct bert_model *m, struct dp_reducer *r, const struct data *d,
                         int64_t t, int64_t r0, int64_t rows, int last, float *extra)
{
    struct bert_batch micro = {.B = rows, .T = SEQ, .input_ids = d->ids + r0 * SEQ,
                               .token_type_ids = d->types + r0 * SEQ,
                               .attention_mask = d->mask + r0 * SEQ, .train = 1,
                               .first_example = (uint64_t)(t * GB + r0),
                               .step = (uint64_t)t};
    struct bert_batch local = micro;
    int64_t begin = 0;
    if (r)
        begin = dp_batch_shard(&local, &micro, m->cfg.hidden_size, r->rank, r->size);
    double loss = 0.0;
    struct bert_grad_in gin;
    memset(&gin, 0, sizeof gin);
    if (r)
        dp_reducer_attach(r, &gin, last);
    if (local.B > 0) {
        bert_forward(m, &local);
        const float w = dp_loss_weight(local.B, GB);
        loss = w * bert_loss_classification(m, d->labels + r0 + begin, m->ga.dlogits, w);
        gin.dlogits = m->ga.dlogits;
        bert_backward(m, &gin);
    }
    for (int64_t i = r0 + begin; i < r0 + begin + local.B; i++)
        for (int j = 0; j < NEXTRA; j++)
            extra[j] += extra_term(t, i, j);
    return loss;
}

/* STEPS optimizer steps in the given mode; r is NULL for RUN_REF. */
static void train(struct run *out, enum run_mode mode, struct dp_reducer *r,
                  struct bert_model *m)
{
    struct kd_err err;
    float *params = (float *)(void *)m->params_arena.base;
    float *grads = (float *)(void *)m->grads_arena.base;
    const size_t N = m->ptab.floats;
    struct optim_segment *segs = model_segments(m);
    struct optim_config ocfg;
    optim_config_default(&ocfg, OPTIM_KIND_ADAMW);
    struct optim opt;
    if (optim_init(&opt, &ocfg, segs, (size_t)m->ptab.n, m->adam_m, m->adam_v, N, &err) != 0)
        bail_out("%s", err.msg);
    float extra[NEXTRA];
    if (r && dp_reducer_add_block(r, extra, NEXTRA, "extra", &err) != 0)
        bail_out("%s", err.msg);
    out->grad0 = kd_malloc(N * sizeof(float));
    out->params = kd_malloc(N * sizeof(float));
    out->first_micro_posted = 0;
    struct data d;
    for (int64_t t = 0; t < STEPS; t++) {
        make_data(&d, t);
        bert_zero_grads(m);
        memset(extra, 0, sizeof extra);
        double loss = 0.0;
        if (mode == RUN_DP_ACCUM) {
            /* two micro-batches, each split over the ranks; the last one
             * has fewer rows than 4 ranks, so one rank holds none: it arms
             * no backward and posts every bucket at wait time */
            const int64_t before = r->stats.posted_in_backward;
            loss += micro_step(m, r, &d, t, 0, GB - ACCUM_LAST, 0, extra);
            out->first_micro_posted += r->stats.posted_in_backward - before;
            loss += micro_step(m, r, &d, t, GB - ACCUM_LAST, ACCUM_LAST, 1, extra);
        } else {
            loss = micro_step(m, r, &d, t, 0, GB, mode != RUN_DP_LATE, extra);
        }
        struct optim_grad_sync sync = {0};
        if (r) {
            sync = dp_reducer_sync(r);
            dp_sum_f64(r, &loss, 1);
        }
        struct optim_grad_info gi;
        if (optim_grad_prepare(grads, N, segs, (size_t)m->ptab.n, 1.0, 1.0, &sync, &gi,
                               &err) != 0)
            bail_out("%s", err.msg);
        if (t == 0)
            memcpy(out->grad0, grads, N * sizeof(float));
        optim_step(&opt, params, grads, LR, gi.grad_scale);
        out->loss[t] = loss;
        out->norm[t] = gi.norm;
    }
    memcpy(out->params, params, N * sizeof(float));
    memcpy(out->extra, extra, sizeof extra);
    if (r)
        out->stats = r->stats;
    free(segs);
}

/* One complete run on a fresh model (and reducer) with small buckets. */
static void run(struct run *out, enum run_mode mode, const struct comm *c)
{
    struct bert_model m;
    model_new(&m);
    struct dp_reducer r;
    struct kd_err err;
    struct dp_opts o = {.bucket_bytes = SMALL_BUCKET,
                        .dense_word_embeddings = mode == RUN_DP_DENSE};
    if (mode != RUN_REF && dp_reducer_init(&r, c->world, &m, &o, &err) != 0)
        bail_out("%s", err.msg);
    if (mode == RUN_DP_FALLBACK)
        r.sparse_max_rows = 0;
    train(out, mode, mode == RUN_REF ? NULL : &r, &m);
    if (mode != RUN_REF)
        dp_reducer_free(&r);
    bert_free(&m);
}

static void run_free(struct run *x)
{
    free(x->params);
    free(x->grad0);
}

/* max_i |a_i - b_i| / max_i |b_i| (the comparison metric of this test). */
static double rel_maxdiff(const float *a, const float *b, size_t n)
{
    double d = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    return s > 0 ? d / s : d;
}

/* The same per tensor of the table, each element against
 * max(|b_i|, 1e-2 * max |b| of its tensor) (t_bert_train20's metric):
 * small weights are held to their own scale, not to the LayerNorm ones.
 * Except attention.self.key.bias, whose gradient is rounding noise around
 * an exact 0 (softmax ignores a shift common to all keys; README of the
 * train20 fixture): its largest absolute difference goes to *key_abs. */
static double tensor_rel_maxdiff(const float *a, const float *b, const struct bert_table *tab,
                                 double *key_abs)
{
    double worst = 0.0;
    *key_abs = 0.0;
    for (int k = 0; k < tab->n; k++) {
        const struct bert_tensor *t = &tab->t[k];
        const int key_bias = strstr(t->name, "attention.self.key.bias") != NULL;
        double amax = 0.0;
        for (int64_t i = 0; i < t->numel; i++)
            amax = fmax(amax, fabs((double)b[t->offset + (size_t)i]));
        for (int64_t i = 0; i < t->numel; i++) {
            const size_t j = t->offset + (size_t)i;
            double d = fabs((double)a[j] - b[j]), s = fmax(fabs((double)b[j]), 1e-2 * amax);
            if (key_bias)
                *key_abs = fmax(*key_abs, d);
            else
                worst = fmax(worst, s > 0 ? d / s : d);
        }
    }
    return worst;
}

static double series_diff(const double *a, const double *b)
{
    double d = 0.0;
    for (int t = 0; t < STEPS; t++)
        d = fmax(d, fabs(a[t] - b[t]) / fabs(b[t]));
    return d;
}

static uint64_t digest(const float *x, size_t n)
{
    /* FNV-1a over the bytes */
    uint64_t h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)x;
    for (size_t i = 0; i < n * sizeof *x; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* The bucket table checks for one bucket size; returns the failures. */
static int check_buckets(const struct comm *c, const struct bert_model *m, size_t bytes,
                         int dense_words, size_t *nbucket)
{
    struct dp_reducer r;
    struct kd_err err;
    struct dp_opts o = {.bucket_bytes = bytes, .dense_word_embeddings = dense_words};
    if (dp_reducer_init(&r, c->world, m, &o, &err) != 0)
        bail_out("%s", err.msg);
    const size_t N = r.count;
    int bad = 0;
    /* every float of the block in exactly one bucket, each within the cap */
    unsigned char *hits = kd_calloc(N > 0 ? N : 1, 1);
    for (size_t b = 0; b < r.nbucket; b++) {
        const struct dp_bucket *k = &r.bucket[b];
        bad += k->count == 0 || k->count > r.bucket_floats || k->offset + k->count > N;
        for (size_t i = k->offset; i < k->offset + k->count && i < N; i++)
            hits[i]++;
        /* backward order: top of the block first, readiness never decreasing */
        if (b > 0)
            bad += k->offset + k->count != r.bucket[b - 1].offset ||
                   k->ready_at < r.bucket[b - 1].ready_at;
    }
    /* the row-sparse word embeddings take the rest */
    bad += dense_words ? r.sparse_rows_total != 0
                       : r.sparse_rows_total != VOCAB || r.sparse_offset != 0;
    for (size_t i = r.sparse_offset; i < r.sparse_end && i < N; i++)
        hits[i]++;
    for (size_t i = 0; i < N; i++)
        bad += hits[i] != 1;
    /* a bucket never spans two parts: every float of a tensor sits in a
     * bucket completed by that tensor's part */
    const int64_t L = m->cfg.num_hidden_layers;
    for (int i = 0; i < m->ptab.n; i++) {
        const struct bert_tensor *t = &m->ptab.t[i];
        int64_t part = L + 1;
        if (t->head)
            part = 0;
        else if (strncmp(t->name, "encoder.layer.", 14) == 0)
            part = L - atoi(t->name + 14);
        for (size_t b = 0; b < r.nbucket; b++) {
            const struct dp_bucket *k = &r.bucket[b];
            if (k->offset < t->offset + (size_t)t->numel && t->offset < k->offset + k->count)
                bad += k->ready_at != part || (t->offset == r.sparse_offset &&
                                               r.sparse_rows_total > 0);
        }
    }
    /* the same table on every rank */
    uint64_t h[2] = {digest((const float *)(void *)r.bucket,
                            r.nbucket * sizeof *r.bucket / sizeof(float)), r.nbucket};
    uint64_t lo[2], hi[2];
    MPI_CHECK(MPI_Allreduce(h, lo, 2, MPI_UINT64_T, MPI_MIN, c->world));
    MPI_CHECK(MPI_Allreduce(h, hi, 2, MPI_UINT64_T, MPI_MAX, c->world));
    bad += memcmp(lo, hi, sizeof lo) != 0;
    *nbucket = r.nbucket;
    free(hits);
    dp_reducer_free(&r);
    return bad;
}

static int fail_mode(const struct comm *c)
{
    struct bert_model m;
    model_new(&m);
    struct dp_reducer r;
    struct kd_err err;
    if (dp_reducer_init(&r, c->world, &m, &(struct dp_opts){.bucket_bytes = SMALL_BUCKET},
                        &err) != 0)
        kd_die(KD_EXIT_RUNTIME, "%s", err.msg);
    struct data d;
    make_data(&d, 0);
    float extra[NEXTRA] = {0};
    bert_zero_grads(&m);
    if (c->rank == c->size - 1) {
        /* long enough for the others to be blocked in dp_reducer_wait */
        bert_forward(&m, &(struct bert_batch){.B = GB, .T = SEQ, .input_ids = d.ids,
                                             .attention_mask = d.mask, .train = 1});
        sleep(1);
        kd_die(KD_EXIT_RUNTIME, "p_dp: deliberate failure on rank %d before the gradient "
               "all-reduce", c->rank);
    }
    micro_step(&m, &r, &d, 0, 0, GB, 1, extra);
    dp_reducer_wait(&r, &err); /* never completes: the failing rank aborts the job */
    dp_reducer_free(&r);
    bert_free(&m);
    return 0;
}

int main(int argc, char **argv)
{
    struct comm c;
    comm_init(&c, &argc, &argv);
    log_set_level(LOG_LEVEL_ERROR);
    if (argc > 1 && strcmp(argv[1], "fail") == 0) {
        fail_mode(&c);
        comm_finalize(&c);
        return 0;
    }
    const int np = c.size;

    /* bucket tables, with small and default buckets */
    struct bert_model m;
    model_new(&m);
    size_t nsmall = 0, ndefault = 0, ndense = 0;
    int bad_small = check_buckets(&c, &m, SMALL_BUCKET, 0, &nsmall);
    int bad_default = check_buckets(&c, &m, 0, 0, &ndefault);
    int bad_dense = check_buckets(&c, &m, SMALL_BUCKET, 1, &ndense);
    const size_t N = m.ptab.floats;
    const int64_t L = m.cfg.num_hidden_layers;
    /* ranks asking for different bucket sizes: an error everywhere */
    struct dp_reducer rbad;
    struct kd_err err;
    struct dp_opts obad = {.bucket_bytes = c.rank == 0 ? 1024 : 2048};
    int rc_bad = dp_reducer_init(&rbad, c.world, &m, &obad, &err);
    int bad_msg = np > 1 ? rc_bad == 0 || strstr(err.msg, "disagree") == NULL : rc_bad != 0;
    if (rc_bad == 0)
        dp_reducer_free(&rbad);

    struct run ref, dp, dp2, late, acc, dense, fb;
    timers_reset();
    run(&ref, RUN_REF, &c);
    run(&dp, RUN_DP, &c);
    run(&dp2, RUN_DP, &c);
    run(&late, RUN_DP_LATE, &c);
    run(&acc, RUN_DP_ACCUM, &c);
    run(&dense, RUN_DP_DENSE, &c);
    run(&fb, RUN_DP_FALLBACK, &c);

    /* the errors, worst over the ranks (every rank computed its own) */
    double kb_param, kb_grad;
    const double t_param = tensor_rel_maxdiff(dp.params, ref.params, &m.ptab, &kb_param);
    const double t_grad = tensor_rel_maxdiff(dp.grad0, ref.grad0, &m.ptab, &kb_grad);
    double e[14] = {
        rel_maxdiff(dp.grad0, ref.grad0, N),
        series_diff(dp.loss, ref.loss),
        series_diff(dp.norm, ref.norm),
        rel_maxdiff(dp.params, ref.params, N),
        rel_maxdiff(acc.params, ref.params, N),
        series_diff(acc.loss, ref.loss),
        (double)(bad_small + bad_default + bad_dense + bad_msg),
        0.0,
        t_param, t_grad, kb_param, kb_grad,
        fmax(rel_maxdiff(dense.params, ref.params, N), rel_maxdiff(fb.params, ref.params, N)),
        fmax(series_diff(dense.loss, ref.loss), series_diff(fb.loss, ref.loss)),
    };
    /* the extra block: sum over every global row of the last step */
    for (int j = 0; j < NEXTRA; j++) {
        float want = 0.0f;
        for (int64_t i = 0; i < GB; i++)
            want += extra_term(STEPS - 1, i, j);
        e[7] += dp.extra[j] != want;
        e[7] += acc.extra[j] != want;
    }
    double worst[14];
    MPI_CHECK(MPI_Allreduce(e, worst, 14, MPI_DOUBLE, MPI_MAX, c.world));
    int same_run = memcmp(dp.params, dp2.params, N * sizeof(float)) == 0 &&
                   memcmp(dp.loss, dp2.loss, sizeof dp.loss) == 0;
    int same_late = memcmp(dp.params, late.params, N * sizeof(float)) == 0 &&
                    memcmp(dp.loss, late.loss, sizeof dp.loss) == 0;
    int same_ref = memcmp(dp.params, ref.params, N * sizeof(float)) == 0;
    uint64_t hp = digest(dp.params, N), hlo, hhi;
    MPI_CHECK(MPI_Allreduce(&hp, &hlo, 1, MPI_UINT64_T, MPI_MIN, c.world));
    MPI_CHECK(MPI_Allreduce(&hp, &hhi, 1, MPI_UINT64_T, MPI_MAX, c.world));
    /* every second the reducers spent is in TIMER_ALLREDUCE, and nothing else */
    double reducer_s = 0.0;
    const struct run *runs[6] = {&dp, &dp2, &late, &acc, &dense, &fb};
    for (int k = 0; k < 6; k++)
        reducer_s += runs[k]->stats.wait_seconds + runs[k]->stats.hook_seconds;
    const int timed = reducer_s > 0 &&
                      fabs(timer_total(TIMER_ALLREDUCE) - reducer_s) <= 1e-9 * reducer_s;
    /* sparse and dense sums agree bitwise where a + b is all there is */
    int same_dense = np > 2 || (memcmp(dp.params, dense.params, N * sizeof(float)) == 0 &&
                                memcmp(dp.params, fb.params, N * sizeof(float)) == 0);
    /* (a single rank sums nothing: the word embeddings are left alone) */
    int sparse_used = np == 1 ? dp.stats.sparse_steps == 0 && fb.stats.dense_fallbacks == 0 :
                      dp.stats.sparse_steps == STEPS && dp.stats.dense_fallbacks == 0 &&
                      dp.stats.sparse_rows > 0 && dp.stats.sparse_rows < STEPS * VOCAB / 2 &&
                      dense.stats.sparse_steps == 0 && dense.stats.dense_fallbacks == 0 &&
                      fb.stats.dense_fallbacks == STEPS && fb.stats.sparse_steps == 0;
    int mine[7] = {same_run, same_late, same_ref || np > 1, same_dense, sparse_used,
                   dp.stats.posted_in_backward == (int64_t)(nsmall * STEPS) &&
                       dp.stats.posted_at_wait == 0 && late.stats.posted_in_backward == 0 &&
                       late.stats.posted_at_wait == (int64_t)(nsmall * STEPS) &&
                       acc.first_micro_posted == 0 && dp.stats.steps == STEPS &&
                       /* a rank without rows in the last micro-step posts at wait */
                       acc.stats.posted_at_wait ==
                           (c.rank >= ACCUM_LAST ? (int64_t)(nsmall * STEPS) : 0),
                   timed};
    int all[7];
    MPI_CHECK(MPI_Allreduce(mine, all, 7, MPI_INT, MPI_MIN, c.world));

    if (c.rank == 0) {
        ok(worst[6] == 0, "bucket tables tile the block once, in backward order, one part each, "
           "same on %d rank(s) (%zu small buckets of <= %d B, %zu default = L + 2 = %lld); "
           "mismatched sizes refused", np, nsmall, SMALL_BUCKET, ndefault, (long long)(L + 2));
        ok(ndefault == (size_t)(L + 2), "default buckets: one per part (%zu)", ndefault);
        ok(worst[0] <= TOL_GRAD, "step-0 reduced gradients on %d rank(s) = one process's: "
           "rel max diff %.2e <= %.0e", np, worst[0], TOL_GRAD);
        ok(worst[1] <= TOL_LOSS, "per-step losses over %d steps: rel diff %.2e <= %.0e", STEPS,
           worst[1], TOL_LOSS);
        ok(worst[2] <= TOL_LOSS, "per-step gradient norms: rel diff %.2e <= %.0e", worst[2],
           TOL_LOSS);
        ok(worst[3] <= TOL_PARAM, "parameters after %d AdamW steps: rel max diff %.2e <= %.0e",
           STEPS, worst[3], TOL_PARAM);
        ok(worst[8] <= TOL_TENSOR && worst[9] <= TOL_TENSOR,
           "per tensor (floor 1e-2 of the tensor's max): params %.2e, step-0 grads %.2e "
           "(<= %.0e)", worst[8], worst[9], TOL_TENSOR);
        ok(worst[10] <= TOL_KEY_PARAM && worst[11] <= TOL_KEY_GRAD,
           "key biases, absolute: params %.2e (<= %.0e), step-0 grads %.2e (<= %.0e)",
           worst[10], TOL_KEY_PARAM, worst[11], TOL_KEY_GRAD);
        if (np == 1)
            ok(all[2], "on 1 rank the data-parallel run is bitwise the reference");
        else
            ok(hlo == hhi, "the %d replicas hold bitwise identical parameters", np);
        ok(all[0], "a second run on %d rank(s) is bitwise equal", np);
        ok(all[1], "buckets posted at wait time (no overlap) give bitwise the same result");
        ok(all[5], "buckets posted during the backward: %lld of %zu per step; none by "
           "non-last micro-steps; all at wait by a rank with no rows",
           (long long)dp.stats.posted_in_backward / STEPS, nsmall);
        if (np == 1)
            ok(all[4], "on 1 rank the word embeddings are left alone (no scan, no sum)");
        else
            ok(all[4], "word embeddings summed row-sparse (%lld of %d rows per step on "
               "average); dense in the other two runs",
               (long long)(dp.stats.sparse_rows / STEPS), VOCAB);
        ok(worst[12] <= TOL_PARAM && worst[13] <= TOL_LOSS,
           "word embeddings in buckets, or by the dense fallback: params %.2e, losses %.2e "
           "(<= %.0e)", worst[12], worst[13], TOL_PARAM);
        if (np <= 2)
            ok(all[3], "on %d rank(s) row-sparse, bucketed and fallback sums are bitwise equal",
               np);
        ok(all[6], "the reducers' time (%.4f s on rank 0) is what TIMER_ALLREDUCE holds",
           reducer_s);
        ok(worst[7] == 0, "the extra block of %d floats is summed exactly over the ranks",
           NEXTRA);
        ok(worst[4] <= TOL_PARAM && worst[5] <= TOL_LOSS,
           "2 micro-steps equal one batch: params %.2e, losses %.2e (<= %.0e)", worst[4],
           worst[5], TOL_PARAM);
        printf("# digest %016llx\n", (unsigned long long)hp);
    }
    run_free(&ref);
    run_free(&dp);
    run_free(&dp2);
    run_free(&late);
    run_free(&acc);
    run_free(&dense);
    run_free(&fb);
    bert_free(&m);
    comm_finalize(&c);
    return c.rank == 0 ? done_testing() : 0;
}
