/* engine_bench.c: throughput of the BERT engine (sequence classification,
 * fp32, CPU) for bench/engine_bench.sh, which runs it interleaved with the
 * PyTorch / ONNX Runtime peer bench/torch_bert.py. Not a test; built on
 * request with `make bench/engine_bench`.
 *
 *   OPENBLAS_NUM_THREADS=N OMP_NUM_THREADS=N bench/engine_bench --model mini \
 *       --threads N --batch 8 [--seq 128] [--passes 5] [--warmup 2] \
 *       [--train-passes P] [--train-warmup W] [--modes infer,train,sgemm]
 *
 * Threads: --threads sets the engine's OpenMP team (omp_set_num_threads,
 * and OMP_NUM_THREADS exported, before the first model is built, which
 * fixes the kernels' thread budget) and OpenBLAS's count (read from
 * OPENBLAS_NUM_THREADS at library load; when that disagrees the bench calls
 * openblas_set_num_threads, if the BLAS has it, and says so on stderr).
 * With one thread the engine is OpenBLAS on one thread; with more, the team
 * runs everything, large products included, on single-threaded BLAS
 * (include/kd/kernels/threads.h, gemm.h), and drops to one thread while it
 * finds the machine contended: load_samples and contended_samples in the
 * JSON count its checks so far in the process (the train line includes
 * the infer mode's).
 *
 * Per mode, in this order and in one process:
 *   infer  model with opts.backward = 0 (no caches, gradients or optimizer),
 *          bert_forward with train = 0;
 *   train  model with backward, parameter gradients and AdamW state; one
 *          step = zero gradients, forward (train = 1, dropout 0.0 as the
 *          peer), cross-entropy, backward, global-norm clipping at 1.0,
 *          AdamW (lr 1e-5, PyTorch defaults), as the peer's step;
 *   sgemm  gemm() alone on the model's dense shapes at this batch (on
 *          more than one thread: split over the team, as the model runs).
 * Each mode is warmed up, then timed pass by pass; the median is reported.
 * The sgemm rate is measured last so that its buffers do not enter the
 * peak RSS of the model modes (the inference model is freed before the
 * training one is built, so the training line's peak is the training
 * model's).
 *
 * FLOPs (multiply-add = 2), for L layers, hidden C, FFN F, K labels, a
 * batch of B sequences of T tokens:
 *   dense   = 2*B*T*L*(3*C*C + C*C + 2*C*F)  QKV, attention output, FFN
 *   attn    = 4*B*L*T*T*C                    Q K^T and P V
 *   heads   = 2*B*(C*C + C*K)                pooler and classifier
 *   forward = dense + attn + heads;   training step = 3 * forward
 * (embedding lookups, LayerNorm, softmax, GELU and the optimizer are not
 * counted). GFLOP/s = FLOPs / median seconds.
 *
 * sgemm reference: the products of one layer at this batch, through gemm()
 * at the same thread count: forward shapes X W^T (M = B*T; N, K from
 * (3C,C), (C,C), (F,C), (C,F)); for training also the backward's dX = dY W
 * and dW = dY^T X. Each shape's median time over repeated calls; the rate
 * is sum(FLOPs) / sum(median times), i.e. what the dense layers would run
 * at if every product reached its measured speed. share = GFLOP/s of the
 * model / this rate (forward shapes for inference, all three for training).
 *
 * Where the time goes: the program is linked with -Wl,--wrap=cblas_sgemm
 * (bench/bench.mk), so the one BLAS call site of the engine, gemm() in
 * libkd.a, calls __wrap_cblas_sgemm below, which forwards to the BLAS and
 * adds the call's wall time to a counter: every product is timed without
 * touching the engine. A product whose three sizes are all at most T is
 * attention (T x T x HS and its transposes; HS <= T in every model here);
 * anything else is dense: the layers' products, which the engine may split
 * into row or column pieces over its threads, plus the pooler and
 * classifier, which are negligible. Attention's products
 * run concurrently on the team's threads; a call made inside a parallel
 * region adds its time divided by the team size, so the counter stays an
 * estimate of wall time (exact when the threads are evenly loaded). The JSON
 * reports per-pass medians of gemm_dense_s, gemm_attn_s and the rest
 * (other_s), and for training the phases of the step.
 *
 * Memory: peak RSS (getrusage ru_maxrss) after the mode, the RSS before the
 * model was built (libraries, BLAS buffers), and bert_memory_bound() for
 * the mode's options; ratio = peak / bound.
 *
 * Output: one JSON object per line, as bench/torch_bert.py. */
#define _GNU_SOURCE /* RTLD_DEFAULT */

#include "kd/core/error.h"
#include "kd/core/log.h"
#include "kd/kernels/gemm.h"
#include "kd/kernels/threads.h"
#include "kd/model/bert.h"
#include "kd/model/hf_config.h"
#include "kd/model/optim.h"

#include <cblas.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* ---- clock and GEMM timing ------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* the BLAS's own, reached through the linker's --wrap */
void __real_cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta,
                        const enum CBLAS_TRANSPOSE tb, const blasint M, const blasint N,
                        const blasint K, const float alpha, const float *A, const blasint lda,
                        const float *B, const blasint ldb, const float beta, float *C,
                        const blasint ldc);
void __wrap_cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta,
                        const enum CBLAS_TRANSPOSE tb, const blasint M, const blasint N,
                        const blasint K, const float alpha, const float *A, const blasint lda,
                        const float *B, const blasint ldb, const float beta, float *C,
                        const blasint ldc);
static int64_t g_seq;             /* T of the running batch: bounds attention's products */
static double g_gemm_dense_s, g_gemm_attn_s;
static int64_t g_gemm_calls;

void __wrap_cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta,
                        const enum CBLAS_TRANSPOSE tb, const blasint M, const blasint N,
                        const blasint K, const float alpha, const float *A, const blasint lda,
                        const float *B, const blasint ldb, const float beta, float *C,
                        const blasint ldc)
{
    const double t0 = now();
    __real_cblas_sgemm(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    /* concurrent calls (attention's team) share the wall time */
    const double dt = (now() - t0) / (double)threads_count();
    if (M <= g_seq && N <= g_seq && K <= g_seq) {
        KD_OMP(atomic)
        g_gemm_attn_s += dt;
    } else {
        KD_OMP(atomic)
        g_gemm_dense_s += dt;
    }
    KD_OMP(atomic)
    g_gemm_calls++;
}

static void gemm_counters_reset(void)
{
    g_gemm_dense_s = g_gemm_attn_s = 0.0;
    g_gemm_calls = 0;
}

/* ---- small helpers ----------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double *s = malloc((size_t)n * sizeof *s);
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    const double r = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return r;
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

static double mib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

/* splitmix64: ids, labels and the sgemm operands */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- models -------------------------------------------------------------- */

struct model_shape {
    const char *name;
    int64_t layers, hidden, heads, ffn;
};

static const struct model_shape MODELS[] = {
    {"base", 12, 768, 12, 3072},
    {"small", 4, 512, 8, 2048},
    {"mini", 4, 256, 4, 1024},
    {"tiny4", 4, 312, 12, 1200},
};

static void make_config(struct bert_config *cfg, const struct model_shape *s, int64_t T)
{
    hf_config_defaults(cfg);
    cfg->vocab_size = 30522;
    cfg->hidden_size = s->hidden;
    cfg->num_hidden_layers = s->layers;
    cfg->num_attention_heads = s->heads;
    cfg->intermediate_size = s->ffn;
    cfg->max_position_embeddings = T > 512 ? T : 512;
    cfg->hidden_dropout_prob = 0.0;
    cfg->attention_probs_dropout_prob = 0.0;
    cfg->classifier_dropout = -1.0;
    cfg->num_labels = 2;
    cfg->problem = BERT_PROBLEM_CLASSIFICATION;
    hf_config_init_layers(cfg);
}

/* FLOPs of one forward pass (see the header). */
static double forward_flops(const struct model_shape *s, int64_t B, int64_t T, int64_t K)
{
    const double C = (double)s->hidden, F = (double)s->ffn, L = (double)s->layers;
    const double dense = 2.0 * (double)(B * T) * L * (3 * C * C + C * C + 2 * C * F);
    const double attn = 4.0 * (double)B * L * (double)T * (double)T * C;
    const double heads = 2.0 * (double)B * (C * C + C * (double)K);
    return dense + attn + heads;
}

/* ---- measurements ------------------------------------------------------- */

struct run {
    const char *mode;
    int done;
    double median_s, gflop, rss_mib, rss_base_mib, bound_mib;
    double gemm_dense_s, gemm_attn_s; /* medians per pass */
    int passes;
    /* training phases (medians) */
    double t_zero, t_fwd, t_loss, t_bwd, t_clip, t_adam;
};

struct bench {
    const struct model_shape *shape;
    struct bert_config cfg;
    int64_t B, T;
    int threads;
    int32_t *ids, *mask, *labels;
};

static void build_model(struct bert_model *m, const struct bench *b, int train)
{
    struct bert_opts o = {.B = b->B, .T = b->T, .P = 0, .heads = BERT_HEAD_CLASSIFIER,
                          .backward = train, .param_grads = train, .optimizer = train,
                          .seed = 1};
    struct kd_err err;
    if (bert_init(m, &b->cfg, &o, &err) != 0) {
        fprintf(stderr, "engine_bench: bert_init: %s\n", err.msg);
        exit(2);
    }
    bert_init_random(m, 42, 0.02f);
}

static struct bert_batch make_batch(const struct bench *b, int train, uint64_t step)
{
    struct bert_batch batch = {.B = b->B, .T = b->T, .input_ids = b->ids,
                               .token_type_ids = NULL, .attention_mask = b->mask,
                               .train = train, .first_example = 0, .step = step};
    return batch;
}

static void run_infer(const struct bench *b, int warmup, int passes, struct run *r)
{
    r->rss_base_mib = peak_rss_mib();
    struct bert_opts o = {.B = b->B, .T = b->T, .heads = BERT_HEAD_CLASSIFIER};
    r->bound_mib = mib(bert_memory_bound(&b->cfg, &o).total);
    struct bert_model m;
    build_model(&m, b, 0);
    g_seq = b->T;
    double *t = calloc((size_t)passes, sizeof *t), *gd = calloc((size_t)passes, sizeof *gd),
           *ga = calloc((size_t)passes, sizeof *ga);
    for (int i = -warmup; i < passes; i++) {
        struct bert_batch batch = make_batch(b, 0, 0);
        gemm_counters_reset();
        const double t0 = now();
        bert_forward(&m, &batch);
        const double dt = now() - t0;
        if (i >= 0)
            t[i] = dt, gd[i] = g_gemm_dense_s, ga[i] = g_gemm_attn_s;
    }
    r->median_s = median(t, passes);
    r->gemm_dense_s = median(gd, passes);
    r->gemm_attn_s = median(ga, passes);
    r->passes = passes;
    r->gflop = forward_flops(b->shape, b->B, b->T, b->cfg.num_labels) * 1e-9;
    r->rss_mib = peak_rss_mib();
    r->mode = "infer";
    r->done = 1;
    free(t), free(gd), free(ga);
    bert_free(&m);
}

static void run_train(const struct bench *b, int warmup, int passes, struct run *r)
{
    r->rss_base_mib = peak_rss_mib();
    struct bert_opts o = {.B = b->B, .T = b->T, .heads = BERT_HEAD_CLASSIFIER, .backward = 1,
                          .param_grads = 1, .optimizer = 1};
    r->bound_mib = mib(bert_memory_bound(&b->cfg, &o).total);
    struct bert_model m;
    build_model(&m, b, 1);
    float *params = (float *)(void *)m.params_arena.base;
    float *grads = (float *)(void *)m.grads_arena.base;
    struct optim_segment *segs = bert_optim_segments(&m);
    struct optim_config ocfg;
    optim_config_default(&ocfg, OPTIM_KIND_ADAMW);
    struct optim opt;
    struct kd_err err;
    if (optim_init(&opt, &ocfg, segs, (size_t)m.ptab.n, m.adam_m, m.adam_v, m.ptab.floats,
                   &err) != 0) {
        fprintf(stderr, "engine_bench: optim_init: %s\n", err.msg);
        exit(2);
    }
    g_seq = b->T;
    enum { PH_ZERO, PH_FWD, PH_LOSS, PH_BWD, PH_CLIP, PH_ADAM, PH_N };
    double *t = calloc((size_t)passes, sizeof *t), *gd = calloc((size_t)passes, sizeof *gd),
           *ga = calloc((size_t)passes, sizeof *ga), *ph[PH_N];
    for (int k = 0; k < PH_N; k++)
        ph[k] = calloc((size_t)passes, sizeof *ph[k]);
    double loss_first = 0.0, loss_last = 0.0;
    for (int i = -warmup; i < passes; i++) {
        struct bert_batch batch = make_batch(b, 1, (uint64_t)(i + warmup));
        struct bert_grad_in gin;
        memset(&gin, 0, sizeof gin);
        gin.dlogits = m.ga.dlogits;
        struct optim_grad_info gi;
        double tp[PH_N + 1];
        gemm_counters_reset();
        tp[0] = now();
        bert_zero_grads(&m);
        tp[1] = now();
        bert_forward(&m, &batch);
        tp[2] = now();
        const double loss = bert_loss_classification(&m, b->labels, m.ga.dlogits, 1.0f);
        tp[3] = now();
        bert_backward(&m, &gin);
        tp[4] = now();
        if (optim_grad_prepare(grads, m.ptab.floats, segs, (size_t)m.ptab.n, 1.0, 1.0, NULL,
                               &gi, &err) != 0) {
            fprintf(stderr, "engine_bench: %s\n", err.msg);
            exit(2);
        }
        tp[5] = now();
        if (isfinite(gi.norm))
            optim_step(&opt, params, grads, 1e-5, gi.grad_scale);
        tp[6] = now();
        if (i == -warmup)
            loss_first = loss;
        loss_last = loss;
        if (i >= 0) {
            t[i] = tp[PH_N] - tp[0];
            gd[i] = g_gemm_dense_s, ga[i] = g_gemm_attn_s;
            for (int k = 0; k < PH_N; k++)
                ph[k][i] = tp[k + 1] - tp[k];
        }
    }
    if (!isfinite(loss_last)) {
        fprintf(stderr, "engine_bench: training loss is not finite\n");
        exit(2);
    }
    fprintf(stderr, "engine_bench: %s B=%lld train loss %.4f -> %.4f over %d steps\n",
            b->shape->name, (long long)b->B, loss_first, loss_last, warmup + passes);
    r->median_s = median(t, passes);
    r->gemm_dense_s = median(gd, passes);
    r->gemm_attn_s = median(ga, passes);
    r->t_zero = median(ph[PH_ZERO], passes);
    r->t_fwd = median(ph[PH_FWD], passes);
    r->t_loss = median(ph[PH_LOSS], passes);
    r->t_bwd = median(ph[PH_BWD], passes);
    r->t_clip = median(ph[PH_CLIP], passes);
    r->t_adam = median(ph[PH_ADAM], passes);
    r->passes = passes;
    r->gflop = 3.0 * forward_flops(b->shape, b->B, b->T, b->cfg.num_labels) * 1e-9;
    r->rss_mib = peak_rss_mib();
    r->mode = "train";
    r->done = 1;
    for (int k = 0; k < PH_N; k++)
        free(ph[k]);
    free(t), free(gd), free(ga), free(segs);
    bert_free(&m);
}

/* Median seconds of one product C(M,N) = op(A) op(B) through gemm(). */
static double time_gemm(enum gemm_trans ta, enum gemm_trans tb, int64_t M, int64_t N,
                        int64_t K, float *a, float *bm, float *c)
{
    const int64_t lda = ta == GEMM_TRANS_N ? K : M, ldb = tb == GEMM_TRANS_N ? N : K;
    gemm(c, N, a, lda, bm, ldb, ta, tb, M, N, K, 1.0f, 0.0f); /* warm */
    double t[64];
    int n = 0;
    const double start = now();
    while (n < 64 && (n < 3 || now() - start < 0.15)) {
        const double t0 = now();
        gemm(c, N, a, lda, bm, ldb, ta, tb, M, N, K, 1.0f, 0.0f);
        t[n++] = now() - t0;
    }
    return median(t, n);
}

/* sgemm rates (GFLOP/s) on the layer's products: fwd = forward shapes,
 * all = forward + both backward shapes. */
static void run_sgemm(const struct bench *b, double *fwd_rate, double *all_rate,
                      char *detail, size_t detail_len)
{
    const int64_t BT = b->B * b->T, C = b->shape->hidden, F = b->shape->ffn;
    const int64_t W[4][2] = {{3 * C, C}, {C, C}, {F, C}, {C, F}}; /* (out, in) */
    int64_t maxel = 0;
    for (int s = 0; s < 4; s++) {
        const int64_t big = BT * (W[s][0] > W[s][1] ? W[s][0] : W[s][1]);
        maxel = big > maxel ? big : maxel;
    }
    maxel = maxel > 3 * C * F ? maxel : 3 * C * F;
    float *a = malloc((size_t)maxel * sizeof *a), *bm = malloc((size_t)maxel * sizeof *bm),
          *c = malloc((size_t)maxel * sizeof *c);
    uint64_t st = 7;
    for (int64_t i = 0; i < maxel; i++) {
        a[i] = (float)((double)(rng_next(&st) >> 11) * 0x1.0p-53 - 0.5);
        bm[i] = (float)((double)(rng_next(&st) >> 11) * 0x1.0p-53 - 0.5);
    }
    g_seq = 0; /* every product of this mode is dense */
    double fl_f = 0, t_f = 0, fl_a = 0, t_a = 0;
    size_t off = 0;
    detail[0] = 0;
    for (int s = 0; s < 4; s++) {
        const int64_t OC = W[s][0], IC = W[s][1];
        const double fl = 2.0 * (double)BT * (double)OC * (double)IC;
        const double tf = time_gemm(GEMM_TRANS_N, GEMM_TRANS_T, BT, OC, IC, a, bm, c);
        const double tn = time_gemm(GEMM_TRANS_N, GEMM_TRANS_N, BT, IC, OC, a, bm, c);
        const double tw = time_gemm(GEMM_TRANS_T, GEMM_TRANS_N, OC, IC, BT, a, bm, c);
        fl_f += fl, t_f += tf;
        fl_a += 3 * fl, t_a += tf + tn + tw;
        off += (size_t)snprintf(detail + off, detail_len - off,
                                "%s\"%lldx%lld\": [%.1f, %.1f, %.1f]", s ? ", " : "",
                                (long long)OC, (long long)IC, fl / tf * 1e-9, fl / tn * 1e-9,
                                fl / tw * 1e-9);
    }
    *fwd_rate = fl_f / t_f * 1e-9;
    *all_rate = fl_a / t_a * 1e-9;
    free(a), free(bm), free(c);
}

/* ---- main ------------------------------------------------------------------ */

static void usage(void)
{
    fprintf(stderr,
            "usage: engine_bench --model base|small|mini|tiny4 [--threads N] [--batch B]\n"
            "       [--seq T] [--passes N] [--warmup W] [--train-passes N]\n"
            "       [--train-warmup W] [--modes infer,train,sgemm]\n");
    exit(2);
}

static void set_threads(int threads)
{
#ifdef _OPENMP
    /* before anything sizes a model: this is the kernels' budget */
    char n[16];
    snprintf(n, sizeof n, "%d", threads);
    setenv("OMP_NUM_THREADS", n, 1);
    omp_set_num_threads(threads);
    if (threads_max() != threads) {
        fprintf(stderr, "engine_bench: the kernels' thread budget is %d, not %d\n",
                threads_max(), threads);
        exit(2);
    }
#endif
    const char *env = getenv("OPENBLAS_NUM_THREADS");
    if (env && atoi(env) == threads)
        return;
    void *f = dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
    if (!f) {
        fprintf(stderr, "engine_bench: OPENBLAS_NUM_THREADS=%s but --threads %d, and the BLAS "
                        "cannot be told: set the variable\n", env ? env : "(unset)", threads);
        exit(2);
    }
    void (*set)(int);
    memcpy(&set, &f, sizeof f);
    set(threads);
    fprintf(stderr, "engine_bench: OPENBLAS_NUM_THREADS=%s, set to %d (--threads)\n",
            env ? env : "(unset)", threads);
}

int main(int argc, char **argv)
{
    const char *model = NULL, *modes = "infer,train,sgemm";
    int threads = 1, passes = 5, warmup = 2, tpasses = -1, twarmup = -1;
    int64_t B = 8, T = 128;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        if (!strcmp(k, "--model"))
            model = v;
        else if (!strcmp(k, "--threads"))
            threads = atoi(v);
        else if (!strcmp(k, "--batch"))
            B = atoll(v);
        else if (!strcmp(k, "--seq"))
            T = atoll(v);
        else if (!strcmp(k, "--passes"))
            passes = atoi(v);
        else if (!strcmp(k, "--warmup"))
            warmup = atoi(v);
        else if (!strcmp(k, "--train-passes"))
            tpasses = atoi(v);
        else if (!strcmp(k, "--train-warmup"))
            twarmup = atoi(v);
        else if (!strcmp(k, "--modes"))
            modes = v;
        else
            usage();
        i++;
    }
    if (tpasses < 0)
        tpasses = passes;
    if (twarmup < 0)
        twarmup = warmup;
    struct bench b = {.B = B, .T = T, .threads = threads};
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++)
        if (model && !strcmp(model, MODELS[i].name))
            b.shape = &MODELS[i];
    if (!b.shape || threads < 1 || B < 1 || T < 1 || passes < 1 || warmup < 0 ||
        tpasses < 1 || twarmup < 0)
        usage();
    log_set_level(LOG_LEVEL_ERROR);
    set_threads(threads);
    make_config(&b.cfg, b.shape, T);
    struct kd_err err;
    if (hf_config_validate(&b.cfg, "benchmark config", &err) != 0) {
        fprintf(stderr, "engine_bench: %s\n", err.msg);
        return 2;
    }
    /* inputs as the peer: ids in [1000, 30000), full mask, labels in {0, 1} */
    uint64_t st = 12345;
    b.ids = malloc((size_t)(B * T) * sizeof *b.ids);
    b.mask = malloc((size_t)(B * T) * sizeof *b.mask);
    b.labels = malloc((size_t)B * sizeof *b.labels);
    for (int64_t i = 0; i < B * T; i++) {
        b.ids[i] = (int32_t)(1000 + rng_next(&st) % 29000);
        b.mask[i] = 1;
    }
    for (int64_t i = 0; i < B; i++)
        b.labels[i] = (int32_t)(rng_next(&st) % 2);

    struct run runs[2];
    memset(runs, 0, sizeof runs);
    if (strstr(modes, "infer"))
        run_infer(&b, warmup, passes, &runs[0]);
    if (strstr(modes, "train"))
        run_train(&b, twarmup, tpasses, &runs[1]);
    double sg_fwd = 0.0, sg_all = 0.0;
    char detail[512] = "";
    const int want_sgemm = strstr(modes, "sgemm") != NULL;
    if (want_sgemm)
        run_sgemm(&b, &sg_fwd, &sg_all, detail, sizeof detail);

    const double tokens = (double)(B * T);
    for (int k = 0; k < 2; k++) {
        const struct run *r = &runs[k];
        if (!r->done)
            continue;
        const double gfs = r->gflop / r->median_s;
        const double sg = k == 0 ? sg_fwd : sg_all;
        printf("{\"peer\": \"kd_hpc\", \"model\": \"%s\", \"threads\": %d, \"batch\": %lld, "
               "\"seq\": %lld, \"impl\": \"engine\", \"mode\": \"%s\", \"median_s\": %.6f, "
               "\"tok_s\": %.2f, \"passes\": %d, \"gflop\": %.3f, \"gflop_s\": %.2f",
               b.shape->name, threads, (long long)B, (long long)T, r->mode, r->median_s,
               tokens / r->median_s, r->passes, r->gflop, gfs);
        if (want_sgemm)
            printf(", \"sgemm_gflop_s\": %.2f, \"share\": %.4f", sg, gfs / sg);
        long samples, contended;
        threads_contention_stats(&samples, &contended);
        printf(", \"load_samples\": %ld, \"contended_samples\": %ld", samples, contended);
        printf(", \"rss_mib\": %.1f, \"rss_base_mib\": %.1f, \"bound_mib\": %.1f, "
               "\"rss_ratio\": %.3f, \"gemm_dense_s\": %.6f, \"gemm_attn_s\": %.6f, "
               "\"other_s\": %.6f",
               r->rss_mib, r->rss_base_mib, r->bound_mib, r->rss_mib / r->bound_mib,
               r->gemm_dense_s, r->gemm_attn_s,
               r->median_s - r->gemm_dense_s - r->gemm_attn_s);
        if (k == 1)
            printf(", \"phases\": {\"zero_grad\": %.6f, \"forward\": %.6f, \"loss\": %.6f, "
                   "\"backward\": %.6f, \"clip\": %.6f, \"adamw\": %.6f}",
                   r->t_zero, r->t_fwd, r->t_loss, r->t_bwd, r->t_clip, r->t_adam);
        printf("}\n");
    }
    if (want_sgemm) {
        /* OpenBLAS names its kernel set (the core it dispatched to) */
        const char *blas = "unknown";
        void *f = dlsym(RTLD_DEFAULT, "openblas_get_config");
        if (f) {
            char *(*get)(void);
            memcpy(&get, &f, sizeof f);
            blas = get();
        }
        printf("{\"peer\": \"kd_hpc\", \"model\": \"%s\", \"threads\": %d, \"batch\": %lld, "
               "\"seq\": %lld, \"mode\": \"sgemm\", \"sgemm_fwd_gflop_s\": %.2f, "
               "\"sgemm_all_gflop_s\": %.2f, \"shapes_nt_nn_tn\": {%s}, \"blas\": \"%s\"}\n",
               b.shape->name, threads, (long long)B, (long long)T, sg_fwd, sg_all, detail,
               blas);
    }
    fflush(stdout);
    free(b.ids), free(b.mask), free(b.labels);
    return 0;
}
