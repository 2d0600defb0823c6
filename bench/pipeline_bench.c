/* pipeline_bench.c: throughput of the pipeline-parallel teacher against its
 * ideal, measured in the same run (DESIGN §7: pipeline throughput >= 90% of
 * m/(m+S-1) times the slowest stage's rate).
 *
 *   mpirun -n S bench/pipeline_bench [--layers L] [--hidden C] [--heads NH]
 *       [--ffn F] [--batch B] [--seq T] [--micro "2 4 8 16"] [--reps N]
 *
 * One replica of S stages (all ranks). For every m in the list, the two
 * schedules (GPipe forward; 1F1B forward + backward) run, each measured as:
 *   alone:    every stage runs its own slice on m micro-batches with no
 *             messages (a later stage on a random input state, the last
 *             stage with its loss), one rank at a time while the others
 *             sleep in a non-blocking barrier, so nothing competes for the
 *             cores; the slowest stage's median seconds per micro-batch
 *             t_max give the ideal rate (1 / t_max) * m / (m + S - 1);
 *   pipeline: the schedule over the m micro-batches, micro-batches per
 *             second (median of --reps calls).
 * Both run once to warm up, then --reps times interleaved (alone, pipeline,
 * alone, ...), so that a change in the machine's load hits both.
 * Efficiency = pipeline rate / ideal rate. Per-rank phase timers (compute,
 * send/recv wait) of the pipeline calls are printed per rank, then the
 * min/avg/max table of parallel/timer_report.h, then one summary line per
 * schedule and m. With more ranks than cores the stages share cores while
 * the pipeline runs but not while measured alone: such a run measures
 * oversubscription, and the summary says so. */
#include "kd/cli/exit_codes.h"
#include "kd/core/error.h"
#include "kd/core/log.h"
#include "kd/core/rng.h"
#include "kd/core/timers.h"
#include "kd/model/hf_config.h"
#include "kd/parallel/comm.h"
#include "kd/parallel/pipeline.h"
#include "kd/parallel/timer_report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_M 64

struct bench {
    struct comm c;
    struct bert_config cfg;
    int64_t B, T;
    int reps, cores;
    int m_list[16], n_m;
    struct pipeline pp;
    int32_t *ids, *mask, *labels; /* (B,T) (B,T) (B), shared by every micro-batch */
    float *h_in, *dh_out;         /* (B,T,C) random input state / output gradient */
    struct bert_batch micro[MAX_M];
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A barrier whose waiters sleep instead of spinning: a spinning rank would
 * steal a core from the one being timed alone. */
static void sleepy_barrier(const struct bench *b)
{
    MPI_Request r;
    int done = 0;
    MPI_CHECK(MPI_Ibarrier(b->c.world, &r));
    while (!done) {
        MPI_CHECK(MPI_Test(&r, &done, MPI_STATUS_IGNORE));
        if (!done)
            usleep(200);
    }
}

static double on_loss(void *ctx, struct bert_model *m, int micro, struct bert_grad_in *g)
{
    const struct bench *b = ctx;
    (void)micro;
    double l = bert_loss_classification(m, b->labels, m->ga.dlogits, 1.0f);
    g->dlogits = m->ga.dlogits;
    return l;
}

/* Seconds per micro-batch of this rank's slice alone (forward, or forward
 * and backward), over m micro-batches. */
static double stage_alone(struct bench *b, int m, int train)
{
    struct bert_model *model = &b->pp.model;
    bert_use_acts(model, 0);
    double t0 = now();
    for (int i = 0; i < m; i++) {
        struct bert_batch mb = b->micro[i];
        mb.train = train;
        if (!pipeline_is_first(&b->pp))
            mb.embedding_output = b->h_in;
        bert_forward(model, &mb);
        if (!train)
            continue;
        struct bert_grad_in g;
        memset(&g, 0, sizeof g);
        if (pipeline_is_last(&b->pp))
            on_loss(b, model, i, &g);
        else
            g.dhidden[model->layer_end] = b->dh_out;
        bert_backward(model, &g);
    }
    return (now() - t0) / m;
}

static int on_output(void *ctx, const struct bert_model *m, int micro,
                     const struct pipeline_tap_view *taps, struct kd_err *err)
{
    (void)ctx, (void)m, (void)micro, (void)taps, (void)err;
    return 0;
}

/* Seconds of one pipeline call over m micro-batches. */
static double pipeline_once(struct bench *b, int m, int train)
{
    struct kd_err err;
    for (int i = 0; i < m; i++)
        b->micro[i].train = train;
    MPI_CHECK(MPI_Barrier(b->c.world));
    double t0 = now();
    if (train) {
        struct pipeline_step step = {.loss = on_loss, .ctx = b};
        pipeline_train(&b->pp, b->micro, m, &step);
    } else if (pipeline_forward(&b->pp, b->micro, m, on_output, b, &err) != 0) {
        kd_die(KD_EXIT_RUNTIME, "pipeline_bench: %s", err.msg);
    }
    double t = now() - t0, worst = 0.0;
    MPI_CHECK(MPI_Allreduce(&t, &worst, 1, MPI_DOUBLE, MPI_MAX, b->c.world));
    return worst;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, c = *(const double *)y;
    return (a > c) - (a < c);
}

/* Per-rank timers of the pipeline calls, printed by rank 0. */
static void print_rank_timers(const struct bench *b, const char *what, int m)
{
    double mine[2] = {timer_total(TIMER_COMPUTE), timer_total(TIMER_COMM_WAIT)};
    double *all = b->c.rank == 0 ? malloc(2 * (size_t)b->c.size * sizeof *all) : NULL;
    MPI_CHECK(MPI_Gather(mine, 2, MPI_DOUBLE, all, 2, MPI_DOUBLE, 0, b->c.world));
    if (b->c.rank == 0) {
        printf("  %s m=%d per-rank timers over the timed calls (s):", what, m);
        for (int r = 0; r < b->c.size; r++)
            printf("  stage %d compute %.3f wait %.3f;", r, all[2 * r], all[2 * r + 1]);
        printf("\n");
    }
    free(all);
}

/* This rank's slice alone, one rank at a time (the others sleep). */
static double alone_once(struct bench *b, int m, int train)
{
    double mine = 0.0;
    for (int r = 0; r < b->c.size; r++) {
        if (b->c.rank == r)
            mine = stage_alone(b, m, train);
        sleepy_barrier(b);
    }
    return mine;
}

static void run(struct bench *b, int m, int train)
{
    const int S = b->c.size;
    const char *what = train ? "1F1B fwd+bwd" : "GPipe fwd";
    /* warm-up of both, then interleaved passes: alone, pipeline, alone, ...
     * so that a change in the machine's load hits both measurements */
    alone_once(b, m, train);
    pipeline_once(b, m, train);
    timers_reset();
    double *t = malloc((size_t)b->reps * sizeof *t), *ta = malloc((size_t)b->reps * sizeof *ta);
    double wall = 0.0;
    for (int k = 0; k < b->reps; k++) {
        ta[k] = alone_once(b, m, train);
        double w0 = now();
        t[k] = pipeline_once(b, m, train);
        wall += now() - w0;
    }
    qsort(t, (size_t)b->reps, sizeof *t, cmp_double);
    qsort(ta, (size_t)b->reps, sizeof *ta, cmp_double);
    const double med = t[b->reps / 2], mine = ta[b->reps / 2];
    double *alone = malloc((size_t)S * sizeof *alone);
    MPI_CHECK(MPI_Allgather(&mine, 1, MPI_DOUBLE, alone, 1, MPI_DOUBLE, b->c.world));
    double tmax = 0.0;
    int slow = 0;
    for (int r = 0; r < S; r++)
        if (alone[r] > tmax)
            tmax = alone[r], slow = r;
    const double rate = m / med, ideal = (1.0 / tmax) * m / (m + S - 1);
    print_rank_timers(b, what, m);
    char name[64];
    snprintf(name, sizeof name, "pipeline_bench %s m=%d", what, m);
    timers_report(&b->c, name, wall, NULL);
    if (b->c.rank == 0) {
        printf("  stages alone (ms per micro-batch):");
        for (int r = 0; r < S; r++)
            printf(" %.2f", 1e3 * alone[r]);
        printf("\n");
        printf("SUMMARY S=%d %-12s m=%-3d pipeline %8.2f micro/s  ideal %8.2f (slowest stage "
               "%d alone %.2f ms x m/(m+S-1) = %.3f)  efficiency %5.1f%%%s\n",
               S, what, m, rate, ideal, slow, 1e3 * tmax, (double)m / (m + S - 1),
               100.0 * rate / ideal,
               S > b->cores ? "  [oversubscribed: more ranks than cores]" : "");
        fflush(stdout);
    }
    free(t);
    free(ta);
    free(alone);
}

static void usage_die(const char *arg)
{
    kd_die(KD_EXIT_USAGE, "pipeline_bench: unknown or incomplete option '%s' (see the "
                          "header of bench/pipeline_bench.c)", arg);
}

int main(int argc, char **argv)
{
    struct bench b;
    memset(&b, 0, sizeof b);
    comm_init(&b.c, &argc, &argv);
    log_set_level(LOG_LEVEL_INFO);
    int64_t L = 8, C = 256, NH = 4, F = 1024;
    b.B = 2, b.T = 64, b.reps = 5;
    const char *mlist = "1 2 4 8 16";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage_die(a);
        const char *v = argv[++i];
        if (!strcmp(a, "--layers")) L = atoll(v);
        else if (!strcmp(a, "--hidden")) C = atoll(v);
        else if (!strcmp(a, "--heads")) NH = atoll(v);
        else if (!strcmp(a, "--ffn")) F = atoll(v);
        else if (!strcmp(a, "--batch")) b.B = atoll(v);
        else if (!strcmp(a, "--seq")) b.T = atoll(v);
        else if (!strcmp(a, "--reps")) b.reps = atoi(v);
        else if (!strcmp(a, "--micro")) mlist = v;
        else usage_die(a);
    }
    for (const char *p = mlist; *p && b.n_m < 16;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        if (v < 1 || v > MAX_M)
            kd_die(KD_EXIT_USAGE, "pipeline_bench: m = %ld outside 1..%d", v, MAX_M);
        b.m_list[b.n_m++] = (int)v;
        p = end;
    }
    b.cores = (int)sysconf(_SC_NPROCESSORS_ONLN);

    hf_config_defaults(&b.cfg);
    b.cfg.vocab_size = 1000;
    b.cfg.hidden_size = C;
    b.cfg.num_hidden_layers = L;
    b.cfg.num_attention_heads = NH;
    b.cfg.intermediate_size = F;
    b.cfg.max_position_embeddings = b.T;
    b.cfg.num_labels = 2;
    hf_config_init_layers(&b.cfg);

    /* one stage per rank, one replica */
    struct pipeline_opts o = {.model = {.B = b.B, .T = b.T, .heads = BERT_HEAD_CLASSIFIER,
                                        .backward = 1, .param_grads = 1, .seed = 1},
                              .init_seed = 3};
    struct kd_err err;
    if (pipeline_init(&b.pp, &b.cfg, b.c.world, MPI_COMM_NULL, &o, &err) != 0)
        kd_die(KD_EXIT_RUNTIME, "pipeline_bench: %s", err.msg);
    const int64_t BT = b.B * b.T, BTC = BT * C;
    b.ids = malloc((size_t)BT * sizeof *b.ids);
    b.mask = malloc((size_t)BT * sizeof *b.mask);
    b.labels = malloc((size_t)b.B * sizeof *b.labels);
    for (int64_t i = 0; i < BT; i++)
        b.ids[i] = 1 + (int32_t)((i * 7919) % (b.cfg.vocab_size - 1)), b.mask[i] = 1;
    for (int64_t i = 0; i < b.B; i++)
        b.labels[i] = (int32_t)(i % 2);
    b.h_in = malloc((size_t)BTC * sizeof(float));
    b.dh_out = malloc((size_t)BTC * sizeof(float));
    rng_normal(b.h_in, 0.0f, 1.0f, 11, 1, 0, BTC);
    rng_normal(b.dh_out, 0.0f, 1e-3f, 11, 2, 0, BTC);
    for (int i = 0; i < MAX_M; i++)
        b.micro[i] = (struct bert_batch){.B = b.B, .T = b.T, .input_ids = b.ids,
                                         .attention_mask = b.mask,
                                         .first_example = (uint64_t)(i * b.B), .step = 1};
    if (b.c.rank == 0)
        printf("pipeline_bench: S = %d ranks on %d cores; model L=%lld C=%lld heads=%lld "
               "F=%lld; micro-batch %lld x %lld; median of %d calls\n",
               b.c.size, b.cores, (long long)L, (long long)C, (long long)NH, (long long)F,
               (long long)b.B, (long long)b.T, b.reps);
    for (int k = 0; k < b.n_m; k++)
        for (int train = 0; train <= 1; train++)
            run(&b, b.m_list[k], train);
    bert_zero_grads(&b.pp.model);
    pipeline_free(&b.pp);
    free(b.ids), free(b.mask), free(b.labels), free(b.h_in), free(b.dh_out);
    comm_finalize(&b.c);
    return 0;
}
