/* pipeline.c: building a pipeline stage: cost model, partition, the slice
 * and its message buffers, and the helpers the schedules share (parallel
 * layer). The schedules are in pipeline_forward.c and pipeline_train.c,
 * the optimizer hooks in pipeline_sync.c. */
#include "pipeline_internal.h"

#include "kd/core/log.h"
#include "kd/core/timers.h"
#include "kd/parallel/comm.h"
#include "kd/parallel/layout.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FLOPs a pointwise element is worth: LayerNorm, GELU, softmax, residuals
 * and dropout stream memory at a small fraction of the GEMM rate, so a
 * layer pruned to nothing still costs its two LayerNorms. */
#define PW_FLOPS 8.0

void pipeline_model_cost(const struct bert_config *cfg, unsigned heads, int64_t B, int64_t T,
                         int64_t P, double *cost)
{
    const int64_t L = cfg->num_hidden_layers;
    const double C = (double)cfg->hidden_size, HS = C / (double)cfg->num_attention_heads;
    const double BT = (double)(B * T), V = (double)cfg->vocab_size;
    /* embeddings: three row gathers, the sum and a LayerNorm per token */
    cost[0] = BT * PW_FLOPS * 8.0 * C;
    for (int64_t l = 0; l < L; l++) {
        const double NH = (double)cfg->layer_heads[l], CH = NH * HS;
        const double F = (double)cfg->layer_intermediate[l];
        /* per token: QKV, scores + context (T keys each), output
         * projection, two FFN products; pointwise: two LayerNorms and
         * residuals (~12 C), GELU (3 F), softmax and masking (4 NH T) */
        const double gemm = 2.0 * C * 3.0 * CH + 4.0 * (double)T * CH + 2.0 * CH * C +
                            4.0 * C * F;
        const double pw = 12.0 * C + 3.0 * F + 4.0 * NH * (double)T;
        cost[1 + l] = BT * (gemm + PW_FLOPS * pw);
    }
    double h = 0.0;
    if (heads & (BERT_HEAD_POOLER | BERT_HEAD_CLASSIFIER))
        h += (double)B * (2.0 * C * C + PW_FLOPS * 2.0 * C);
    if (heads & BERT_HEAD_CLASSIFIER)
        h += (double)B * 2.0 * C * (double)cfg->num_labels;
    if (heads & BERT_HEAD_MLM) /* transform + tied decoder on B*P rows */
        h += (double)(B * P) * (2.0 * C * C + 2.0 * C * V + PW_FLOPS * (4.0 * C + V));
    cost[L + 1] = h;
}

int pipeline_hidden_owner(const struct pipeline *pp, int64_t l)
{
    if (l == 0)
        return 0;
    for (int s = 0; s < pp->n_stages; s++)
        if (pp->first[s] < l && l <= pp->first[s + 1])
            return s;
    KD_FATAL("hidden state %lld outside 0..%d", (long long)l, pp->first[pp->n_stages]);
}

int pipeline_probs_owner(const struct pipeline *pp, int64_t l)
{
    for (int s = 0; s < pp->n_stages; s++)
        if (pp->first[s] <= l && l < pp->first[s + 1])
            return s;
    KD_FATAL("attention layer %lld outside 0..%d", (long long)l, pp->first[pp->n_stages] - 1);
}

size_t pipeline_tap_floats(const struct pipeline *pp, int s, int64_t B, int64_t T)
{
    const struct bert_config *cfg = &pp->model.cfg;
    size_t n = 0;
    for (int i = 0; i < pp->taps.n_hidden; i++)
        if (pipeline_hidden_owner(pp, pp->taps.hidden[i]) == s)
            n += (size_t)(B * T * cfg->hidden_size);
    for (int i = 0; i < pp->taps.n_probs; i++)
        if (pipeline_probs_owner(pp, pp->taps.probs[i]) == s)
            n += (size_t)(B * cfg->layer_heads[pp->taps.probs[i]] * T * T);
    return n;
}

/* Waits poll MPI_Test and yield the core between polls instead of
 * spinning inside MPI_Wait: when stages share cores (more ranks than cores,
 * or other jobs on the node) a stage waiting for its neighbour then hands
 * the core to the stage that computes, and when it has a core of its own
 * sched_yield returns at once, so the latency is that of a spin. */
void pipeline_wait(MPI_Request *req)
{
    pipeline_wait_all(req, 1);
}

void pipeline_wait_all(MPI_Request *req, int n)
{
    int done = 0;
    timer_start(TIMER_COMM_WAIT);
    for (;;) {
        MPI_CHECK(MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE));
        if (done)
            break;
        sched_yield();
    }
    timer_stop(TIMER_COMM_WAIT);
}

void pipeline_check_micro(const struct pipeline *pp, const struct bert_batch *micro,
                          int n_micro)
{
    /* max of (x, -x) over the ranks: equal everywhere iff max == -min */
    long long v[6] = {n_micro, 0, 0, 0, 0, 0};
    for (int i = 0; i < n_micro; i++) {
        v[1] += (long long)micro[i].B * 1000003LL + (long long)micro[i].T;
        v[2] += (long long)micro[i].first_example + (long long)micro[i].step * 7LL;
    }
    v[3] = -v[0], v[4] = -v[1], v[5] = -v[2];
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, v, 6, MPI_LONG_LONG, MPI_MAX, pp->comm));
    KD_ASSERT(v[0] == -v[3] && v[1] == -v[4] && v[2] == -v[5],
              "the stages of a pipeline were given different micro-batches (%d here; counts "
              "%lld..%lld over the stages)", n_micro, -v[3], v[0]);
}

/* Collective agreement over the stage and replica communicators (the
 * whole grid of a teacher stage): 1 if any rank failed. */
static int any_failed(const struct pipeline *pp, int failed)
{
    int f = failed;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &f, 1, MPI_INT, MPI_MAX, pp->comm));
    if (pp->replicas != MPI_COMM_NULL)
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &f, 1, MPI_INT, MPI_MAX, pp->replicas));
    return f;
}

/* Stage s's layers from the costs of the embeddings, layers and heads. */
static void partition(struct pipeline *pp, const struct bert_config *cfg, const double *cost)
{
    const int L = (int)cfg->num_hidden_layers, S = pp->n_stages;
    double *item = kd_malloc((size_t)L * sizeof *item), total = 0.0;
    for (int l = 0; l < L; l++)
        item[l] = cost[1 + l];
    item[0] += cost[0];         /* embeddings live on stage 0 */
    item[L - 1] += cost[L + 1]; /* heads on the last stage */
    for (int l = 0; l < L; l++)
        total += item[l];
    layout_partition(item, L, S, pp->first);
    for (int s = 0; s < S; s++) {
        pp->stage_cost[s] = 0.0;
        for (int l = pp->first[s]; l < pp->first[s + 1]; l++)
            pp->stage_cost[s] += total > 0.0 ? item[l] / total : 0.0;
    }
    free(item);
}

static void log_partition(const struct pipeline *pp, int measured)
{
    const int S = pp->n_stages;
    double worst = 0.0;
    for (int s = 0; s < S; s++)
        worst = pp->stage_cost[s] > worst ? pp->stage_cost[s] : worst;
    log_info0("pipeline: %d layers over %d stage%s x %d replica%s (%s cost); ideal stage "
              "share %.1f%%, slowest %.1f%%",
              pp->first[S], S, S == 1 ? "" : "s", pp->n_replicas, pp->n_replicas == 1 ? "" : "s",
              measured ? "measured" : "modelled", 100.0 / S, 100.0 * worst);
    for (int s = 0; s < S; s++)
        log_info0("pipeline:   stage %d: layers %d..%d%s%s  %5.1f%% of the cost", s,
                  pp->first[s], pp->first[s + 1] - 1, s == 0 ? " + embeddings" : "",
                  s == S - 1 ? " + heads" : "", 100.0 * pp->stage_cost[s]);
}

/* The slice, its parameters, and the message buffers of this stage. */
static int build_stage(struct pipeline *pp, const struct bert_config *cfg,
                       const struct pipeline_opts *o, struct kd_err *err)
{
    const int s = pp->stage, S = pp->n_stages;
    struct bert_opts mo = o->model;
    mo.layer_begin = pp->first[s];
    mo.layer_end = pp->first[s + 1];
    mo.heads = s == S - 1 ? o->model.heads : 0;
    /* 1F1B keeps the forwards of at most S - s micro-batches alive */
    mo.act_sets = o->model.backward ? S - s : 1;
    if (bert_init(&pp->model, cfg, &mo, err) != 0)
        return kd_err_prefix(err, "pipeline stage %d", s);
    if (o->checkpoint_dir) {
        if (bert_load_params(&pp->model, o->checkpoint_dir, o->init_seed, err) != 0)
            return kd_err_prefix(err, "pipeline stage %d", s);
    } else {
        bert_init_random(&pp->model, o->init_seed, o->init_std > 0.0f ? o->init_std : 0.02f);
    }
    /* every stage knows: stage 0 takes part in the sum of the two copies */
    pp->tied_copy = S > 1 && (o->model.heads & BERT_HEAD_MLM) != 0;

    /* buffers: one (B,T,C) state per slot and direction actually used */
    pp->BTC = mo.B * mo.T * cfg->hidden_size;
    const size_t bytes = (size_t)pp->BTC * sizeof(float);
    for (int k = 0; k < PIPELINE_SLOTS; k++) {
        if (s > 0)
            pp->act_recv[k] = kd_malloc(bytes);
        if (s < S - 1)
            pp->act_send[k] = kd_malloc(bytes);
        if (mo.backward && s < S - 1)
            pp->grad_recv[k] = kd_malloc(bytes);
        if (mo.backward && s > 0)
            pp->grad_send[k] = kd_malloc(bytes);
    }
    pp->tap_floats = kd_calloc((size_t)S, sizeof *pp->tap_floats);
    for (int t = 0; t < S; t++)
        pp->tap_floats[t] = pipeline_tap_floats(pp, t, mo.B, mo.T);
    for (int k = 0; k < PIPELINE_SLOTS; k++) {
        if (s < S - 1 && pp->tap_floats[s] > 0)
            pp->tap_send[k] = kd_malloc(pp->tap_floats[s] * sizeof(float));
        if (s == S - 1) {
            pp->tap_recv[k] = kd_calloc((size_t)S, sizeof(float *));
            for (int t = 0; t < S - 1; t++)
                if (pp->tap_floats[t] > 0)
                    pp->tap_recv[k][t] = kd_malloc(pp->tap_floats[t] * sizeof(float));
        }
    }
    return 0;
}

/* The tap request must name states and layers that exist. */
static int check_taps(const struct pipeline_taps *t, const struct bert_config *cfg,
                      struct kd_err *err)
{
    const int64_t L = cfg->num_hidden_layers;
    for (int i = 0; i < t->n_hidden; i++)
        if (t->hidden[i] < 0 || t->hidden[i] > L)
            return kd_errf(err, "pipeline: hidden-state tap %lld expected in 0..%lld",
                           (long long)t->hidden[i], (long long)L);
    for (int i = 0; i < t->n_probs; i++)
        if (t->probs[i] < 0 || t->probs[i] >= L)
            return kd_errf(err, "pipeline: attention tap %lld expected in 0..%lld",
                           (long long)t->probs[i], (long long)L - 1);
    return 0;
}

int pipeline_init(struct pipeline *pp, const struct bert_config *cfg, MPI_Comm stages,
                  MPI_Comm replicas, const struct pipeline_opts *opts, struct kd_err *err)
{
    memset(pp, 0, sizeof *pp);
    MPI_CHECK(MPI_Comm_dup(stages, &pp->comm));
    MPI_CHECK(MPI_Comm_set_errhandler(pp->comm, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_rank(pp->comm, &pp->stage));
    MPI_CHECK(MPI_Comm_size(pp->comm, &pp->n_stages));
    pp->replicas = MPI_COMM_NULL;
    pp->n_replicas = 1;
    if (replicas != MPI_COMM_NULL) {
        MPI_CHECK(MPI_Comm_dup(replicas, &pp->replicas));
        MPI_CHECK(MPI_Comm_set_errhandler(pp->replicas, MPI_ERRORS_RETURN));
        MPI_CHECK(MPI_Comm_size(pp->replicas, &pp->n_replicas));
    }
    const int S = pp->n_stages;
    const int64_t L = cfg->num_hidden_layers;
    pp->first = kd_calloc((size_t)S + 1, sizeof *pp->first);
    pp->stage_cost = kd_calloc((size_t)S, sizeof *pp->stage_cost);
    /* the taps, copied (the caller's arrays may be temporaries) */
    pp->taps = opts->taps;
    int64_t *th = kd_calloc((size_t)opts->taps.n_hidden + 1, sizeof *th);
    int64_t *tp = kd_calloc((size_t)opts->taps.n_probs + 1, sizeof *tp);
    if (opts->taps.n_hidden)
        memcpy(th, opts->taps.hidden, (size_t)opts->taps.n_hidden * sizeof *th);
    if (opts->taps.n_probs)
        memcpy(tp, opts->taps.probs, (size_t)opts->taps.n_probs * sizeof *tp);
    pp->taps.hidden = th;
    pp->taps.probs = tp;

    int rc = 0;
    if (S > L)
        rc = kd_errf(err, "pipeline: %d stages for %lld layers (each stage needs at least "
                          "one layer)", S, (long long)L);
    if (rc == 0)
        rc = check_taps(&opts->taps, cfg, err);
    if (rc == 0) {
        double *cost = kd_malloc(((size_t)L + 2) * sizeof *cost);
        if (opts->cost)
            memcpy(cost, opts->cost, ((size_t)L + 2) * sizeof *cost);
        else
            pipeline_model_cost(cfg, opts->model.heads, opts->model.B, opts->model.T,
                                opts->model.P, cost);
        partition(pp, cfg, cost);
        free(cost);
        log_partition(pp, opts->cost != NULL);
        rc = build_stage(pp, cfg, opts, err);
    }
    if (any_failed(pp, rc != 0)) {
        if (rc == 0)
            kd_errf(err, "pipeline: set-up failed on another rank (see its message)");
        pipeline_free(pp);
        return -1;
    }
    return 0;
}

void pipeline_free(struct pipeline *pp)
{
    bert_free(&pp->model);
    for (int k = 0; k < PIPELINE_SLOTS; k++) {
        free(pp->act_recv[k]);
        free(pp->act_send[k]);
        free(pp->grad_recv[k]);
        free(pp->grad_send[k]);
        free(pp->tap_send[k]);
        if (pp->tap_recv[k])
            for (int t = 0; t < pp->n_stages; t++)
                free(pp->tap_recv[k][t]);
        free(pp->tap_recv[k]);
    }
    free(pp->tap_floats);
    free((void *)pp->taps.hidden);
    free((void *)pp->taps.probs);
    free(pp->first);
    free(pp->stage_cost);
    if (pp->comm != MPI_COMM_NULL)
        MPI_Comm_free(&pp->comm);
    if (pp->replicas != MPI_COMM_NULL)
        MPI_Comm_free(&pp->replicas);
    memset(pp, 0, sizeof *pp);
    pp->comm = MPI_COMM_NULL;
    pp->replicas = MPI_COMM_NULL;
}
