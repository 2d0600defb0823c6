/* dp_bench.c: weak scaling of data-parallel student training
 * (parallel/dp.h) for bench/dp_bench.sh. Not a test; built on request with
 * `make bench/dp_bench`.
 *
 *   OPENBLAS_NUM_THREADS=1 mpirun -n R bench/dp_bench [--model tiny4]
 *       [--batch 8] [--seq 128] [--steps 5] [--warmup 2] [--passes 3]
 *       [--bucket-mb 4] [--vocab 30522]
 *
 * Weak scaling: every rank trains on --batch rows of its own (the global
 * batch grows with R), so the ideal time per step is the same at any R and
 * the efficiency at R ranks is t(1 rank) / t(R ranks); the script divides
 * the two runs' medians. One step: zero gradients, forward (dropout 0.1),
 * cross-entropy weighted by 1/R, backward, gradient sum over the ranks,
 * global-norm clipping at 1.0, AdamW. Two ways of summing, interleaved
 * pass by pass (odd passes bucketed first, even passes blocking first):
 *   bucketed  dp_reducer: buckets of --bucket-mb posted during the backward
 *             (non-blocking, progressed at every layer boundary), waited
 *             for before the optimizer;
 *   blocking  one MPI_Allreduce over the whole gradient block after the
 *             backward (the baseline without overlap).
 * Per pass and mode: time per step (wall between two barriers / steps, so
 * the slowest rank counts), seconds per step spent waiting for the sum
 * (average over ranks: dp_stats wait + hook time, or the MPI_Allreduce
 * call) and its share of the step. The median over passes is printed at
 * the end, with the fastest pass (step_s_min): on a machine shared with
 * other jobs the fastest pass is the least disturbed one.
 *
 * allreduce_alone_s: one MPI_Allreduce of the whole block right after a
 * barrier (median of 5): the transfer cost without rank skew.
 *
 * sgemm: every rank measures cblas_sgemm on the model's FFN product
 * (M = batch*seq, N = F, K = C) at the start, concurrently, so the rate is
 * what one rank gets while the others compute too; min and max over ranks.
 *
 * Output: one JSON object per line (rank 0), as bench/engine_bench. */
#include "kd/core/log.h"
#include "kd/core/rng.h"
#include "kd/kernels/gemm.h"
#include "kd/model/bert.h"
#include "kd/model/hf_config.h"
#include "kd/model/optim.h"
#include "kd/parallel/comm.h"
#include "kd/parallel/dp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct model_shape {
    const char *name;
    int64_t layers, hidden, heads, ffn;
};

/* the students of bench/engine_bench */
static const struct model_shape MODELS[] = {
    {"mini", 4, 256, 4, 1024},
    {"tiny4", 4, 312, 12, 1200},
    {"small", 4, 512, 8, 2048},
};

enum mode { MODE_BUCKETED = 0, MODE_BLOCKING = 1 };
static const char *const MODE_NAME[2] = {"bucketed", "blocking"};

struct bench {
    struct comm c;
    struct bert_model m;
    struct dp_reducer r;
    struct optim opt;
    struct optim_segment *segs;
    int32_t *ids, *mask, *labels; /* this rank's rows */
    int64_t B, T;
    uint64_t step;                /* dropout counter */
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* One training step; returns the seconds this rank spent summing. */
static double train_step(struct bench *b, enum mode mode)
{
    struct bert_model *m = &b->m;
    float *grads = (float *)(void *)m->grads_arena.base;
    float *params = (float *)(void *)m->params_arena.base;
    const size_t N = m->ptab.floats;
    struct bert_batch batch = {.B = b->B, .T = b->T, .input_ids = b->ids,
                               .attention_mask = b->mask, .train = 1,
                               .first_example = (uint64_t)(b->c.rank * b->B),
                               .step = b->step++};
    bert_zero_grads(m);
    bert_forward(m, &batch);
    bert_loss_classification(m, b->labels, m->ga.dlogits, 1.0f / (float)b->c.size);
    struct bert_grad_in gin;
    memset(&gin, 0, sizeof gin);
    gin.dlogits = m->ga.dlogits;
    double summing = 0.0;
    struct optim_grad_sync sync = {0};
    const struct dp_stats before = b->r.stats;
    if (mode == MODE_BUCKETED) {
        dp_reducer_attach(&b->r, &gin, 1);
        bert_backward(m, &gin);
        sync = dp_reducer_sync(&b->r);
    } else {
        bert_backward(m, &gin);
        const double t0 = wall_seconds();
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, grads, (int)N, MPI_FLOAT, MPI_SUM, b->c.world));
        summing = wall_seconds() - t0;
    }
    struct optim_grad_info gi;
    struct kd_err err;
    if (optim_grad_prepare(grads, N, b->segs, (size_t)m->ptab.n, 1.0, 1.0, &sync, &gi, &err))
        kd_die(1, "%s", err.msg);
    if (mode == MODE_BUCKETED)
        summing = (b->r.stats.wait_seconds - before.wait_seconds) +
                  (b->r.stats.hook_seconds - before.hook_seconds);
    optim_step(&b->opt, params, grads, 1e-5, gi.grad_scale);
    return summing;
}

/* Times `steps` steps; out: seconds per step (slowest rank) and summing
 * seconds per step (average over ranks). */
static void time_steps(struct bench *b, enum mode mode, int steps, double *step_s,
                       double *sum_s)
{
    double summing = 0.0;
    MPI_CHECK(MPI_Barrier(b->c.world));
    const double t0 = wall_seconds();
    for (int s = 0; s < steps; s++)
        summing += train_step(b, mode);
    MPI_CHECK(MPI_Barrier(b->c.world));
    double wall = wall_seconds() - t0;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &wall, 1, MPI_DOUBLE, MPI_MAX, b->c.world));
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &summing, 1, MPI_DOUBLE, MPI_SUM, b->c.world));
    *step_s = wall / steps;
    *sum_s = summing / b->c.size / steps;
}

/* GFLOP/s of cblas_sgemm (through gemm()) on the FFN product, on every rank
 * at once; min and max over ranks. */
static void sgemm_rate(const struct bench *b, int64_t M, int64_t Nn, int64_t K, double *lo,
                       double *hi)
{
    float *a = kd_calloc((size_t)(M * K), sizeof(float));
    float *w = kd_calloc((size_t)(Nn * K), sizeof(float));
    float *c = kd_calloc((size_t)(M * Nn), sizeof(float));
    rng_uniform(a, -1, 1, 1, 1, 0, M * K);
    rng_uniform(w, -1, 1, 1, 2, 0, Nn * K);
    gemm(c, Nn, a, K, w, K, GEMM_TRANS_N, GEMM_TRANS_T, M, Nn, K, 1.0f, 0.0f); /* warm up */
    double t[5];
    MPI_CHECK(MPI_Barrier(b->c.world));
    for (int i = 0; i < 5; i++) {
        const double t0 = wall_seconds();
        gemm(c, Nn, a, K, w, K, GEMM_TRANS_N, GEMM_TRANS_T, M, Nn, K, 1.0f, 0.0f);
        t[i] = wall_seconds() - t0;
    }
    double rate = 2.0 * (double)M * (double)Nn * (double)K / median(t, 5) / 1e9;
    MPI_CHECK(MPI_Allreduce(&rate, lo, 1, MPI_DOUBLE, MPI_MIN, b->c.world));
    MPI_CHECK(MPI_Allreduce(&rate, hi, 1, MPI_DOUBLE, MPI_MAX, b->c.world));
    free(a);
    free(w);
    free(c);
}

/* Seconds of one MPI_Allreduce over the whole gradient block with every
 * rank arriving together (after a barrier): the transfer alone, without
 * the waiting for a slower rank that a step's sum also contains. Median
 * of 5, slowest rank. */
static double allreduce_alone(struct bench *b)
{
    float *grads = (float *)(void *)b->m.grads_arena.base;
    double t[5];
    for (int i = 0; i < 5; i++) {
        MPI_CHECK(MPI_Barrier(b->c.world));
        const double t0 = wall_seconds();
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, grads, (int)b->m.ptab.floats, MPI_FLOAT, MPI_SUM,
                                b->c.world));
        t[i] = wall_seconds() - t0;
    }
    double m = median(t, 5);
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &m, 1, MPI_DOUBLE, MPI_MAX, b->c.world));
    return m;
}

int main(int argc, char **argv)
{
    struct bench b;
    memset(&b, 0, sizeof b);
    comm_init(&b.c, &argc, &argv);
    log_set_level(LOG_LEVEL_WARN);
    const char *model = "tiny4";
    int64_t B = 8, T = 128, vocab = 30522;
    int steps = 5, warmup = 2, passes = 3;
    double bucket_mb = 4.0;
    int dense_words = 0;
    for (int i = 1; i < argc; i += 2) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            kd_die(2, "dp_bench: %s needs a value", k);
        if (!strcmp(k, "--model"))
            model = v;
        else if (!strcmp(k, "--batch"))
            B = atoll(v);
        else if (!strcmp(k, "--seq"))
            T = atoll(v);
        else if (!strcmp(k, "--vocab"))
            vocab = atoll(v);
        else if (!strcmp(k, "--steps"))
            steps = atoi(v);
        else if (!strcmp(k, "--warmup"))
            warmup = atoi(v);
        else if (!strcmp(k, "--passes"))
            passes = atoi(v);
        else if (!strcmp(k, "--bucket-mb"))
            bucket_mb = atof(v);
        else if (!strcmp(k, "--dense-words"))
            dense_words = atoi(v);
        else
            kd_die(2, "dp_bench: unknown option %s", k);
    }
    const struct model_shape *s = NULL;
    for (size_t i = 0; i < sizeof MODELS / sizeof *MODELS; i++)
        if (!strcmp(model, MODELS[i].name))
            s = &MODELS[i];
    if (!s || B < 1 || T < 1 || steps < 1 || passes < 1 || passes > 64 || bucket_mb <= 0)
        kd_die(2, "dp_bench: bad options (model mini|tiny4|small, batch, seq, steps, "
               "passes <= 64 and bucket-mb > 0)");

    struct bert_config cfg;
    hf_config_defaults(&cfg); /* dropout 0.1 */
    cfg.vocab_size = vocab;
    cfg.hidden_size = s->hidden;
    cfg.num_hidden_layers = s->layers;
    cfg.num_attention_heads = s->heads;
    cfg.intermediate_size = s->ffn;
    cfg.max_position_embeddings = T > 512 ? T : 512;
    cfg.num_labels = 2;
    hf_config_init_layers(&cfg);
    struct bert_opts o = {.B = B, .T = T, .heads = BERT_HEAD_CLASSIFIER, .backward = 1,
                          .param_grads = 1, .optimizer = 1, .seed = 1};
    struct kd_err err;
    if (bert_init(&b.m, &cfg, &o, &err) != 0)
        kd_die(1, "%s", err.msg);
    bert_init_random(&b.m, 3, 0.02f);
    struct dp_opts dopts = {.bucket_bytes = (size_t)(bucket_mb * (1 << 20)),
                            .dense_word_embeddings = dense_words};
    if (dp_reducer_init(&b.r, b.c.world, &b.m, &dopts, &err) != 0)
        kd_die(1, "%s", err.msg);
    b.segs = bert_optim_segments(&b.m);
    KD_ASSERT(b.segs, "out of memory");
    struct optim_config ocfg;
    optim_config_default(&ocfg, OPTIM_KIND_ADAMW);
    if (optim_init(&b.opt, &ocfg, b.segs, (size_t)b.m.ptab.n, b.m.adam_m, b.m.adam_v,
                   b.m.ptab.floats, &err) != 0)
        kd_die(1, "%s", err.msg);
    /* this rank's rows: random tokens, no padding, random labels */
    b.B = B;
    b.T = T;
    b.ids = kd_malloc((size_t)(B * T) * sizeof *b.ids);
    b.mask = kd_malloc((size_t)(B * T) * sizeof *b.mask);
    b.labels = kd_malloc((size_t)B * sizeof *b.labels);
    for (int64_t i = 0; i < B * T; i++) {
        b.ids[i] = 1 + (int32_t)(rng_bits_at(9, (uint64_t)b.c.rank, (uint64_t)i) % (vocab - 1));
        b.mask[i] = 1;
    }
    for (int64_t i = 0; i < B; i++)
        b.labels[i] = (int32_t)(rng_bits_at(10, (uint64_t)b.c.rank, (uint64_t)i) % 2);

    double g_lo, g_hi;
    sgemm_rate(&b, B * T, s->ffn, s->hidden, &g_lo, &g_hi);
    const double grad_mb = (double)b.m.ptab.floats * 4.0 / (1 << 20);
    const double alone = allreduce_alone(&b);
    if (b.c.rank == 0)
        printf("{\"what\":\"setup\",\"ranks\":%d,\"model\":\"%s\",\"batch_per_rank\":%lld,"
               "\"seq\":%lld,\"vocab\":%lld,\"grad_mb\":%.2f,\"buckets\":%zu,"
               "\"bucket_mb\":%.2f,\"sgemm_gflops_min\":%.1f,\"sgemm_gflops_max\":%.1f,"
               "\"allreduce_alone_s\":%.4f}\n", b.c.size, s->name, (long long)B, (long long)T,
               (long long)vocab, grad_mb, b.r.nbucket, bucket_mb, g_lo, g_hi, alone);

    double step_s[2][64], sum_s[2][64];
    for (int w = 0; w < warmup; w++) {
        train_step(&b, MODE_BUCKETED);
        train_step(&b, MODE_BLOCKING);
    }
    for (int p = 0; p < passes; p++) {
        for (int k = 0; k < 2; k++) {
            const enum mode mode = (enum mode)(p % 2 ? 1 - k : k);
            time_steps(&b, mode, steps, &step_s[mode][p], &sum_s[mode][p]);
            if (b.c.rank == 0)
                printf("{\"what\":\"pass\",\"ranks\":%d,\"mode\":\"%s\",\"pass\":%d,"
                       "\"step_s\":%.4f,\"allreduce_s\":%.4f,\"share\":%.4f}\n", b.c.size,
                       MODE_NAME[mode], p, step_s[mode][p], sum_s[mode][p],
                       sum_s[mode][p] / step_s[mode][p]);
            fflush(stdout);
        }
    }
    for (int mode = 0; mode < 2; mode++) {
        const double st = median(step_s[mode], passes), su = median(sum_s[mode], passes);
        const double best = step_s[mode][0]; /* sorted by median() */
        if (b.c.rank == 0)
            printf("{\"what\":\"median\",\"ranks\":%d,\"model\":\"%s\",\"mode\":\"%s\","
                   "\"step_s\":%.4f,\"step_s_min\":%.4f,\"allreduce_s\":%.4f,"
                   "\"share\":%.4f,\"tokens_per_s\":%.0f}\n", b.c.size, s->name,
                   MODE_NAME[mode], st, best, su, su / st, (double)(B * T * b.c.size) / st);
    }
    if (b.c.rank == 0)
        printf("{\"what\":\"overlap\",\"ranks\":%d,\"posted_in_backward\":%lld,"
               "\"posted_at_wait\":%lld}\n", b.c.size, (long long)b.r.stats.posted_in_backward,
               (long long)b.r.stats.posted_at_wait);
    dp_reducer_free(&b.r);
    bert_free(&b.m);
    free(b.segs);
    free(b.ids);
    free(b.mask);
    free(b.labels);
    comm_finalize(&b.c);
    return 0;
}
