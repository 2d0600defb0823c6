/* p_pipeline.c: the pipeline-parallel teacher against one process holding
 * the whole model (verification ladder rung v). Run by pipeline_tests.sh
 * at 1, 2 and 4 ranks:  p_pipeline S MODE  with S stages per replica and
 * R = ranks / S replicas.
 *
 * Model: L = 6 layers, C = 32 (4 heads of 8), F = 64, V = 50, 16
 * positions, K = 3 labels, pooler + classifier + MLM head (so the tied
 * decoder's copy of the word embeddings sits on the last stage), pruned:
 * layer 1 has 2 heads and FFN 40, layer 2 no attention, layer 4 no FFN.
 * Random init (seed 21, std 0.2). Every dropout at p = 0.1 where training.
 * Data: 5 micro-batches of B = 2, T = 8 per replica (replica r takes the
 * global micro-batches 5r..5r+4), lengths 4..8 with padding, two MLM
 * positions per sequence (one slot unused in odd examples).
 *
 * MODE check (the exit status is the verdict; rank 0 prints a summary):
 *   1. parameters of every stage = the whole model's of the same names,
 *      bitwise, from random init and from a checkpoint directory that rank 0
 *      saves (each stage loads only its slice);
 *   2. GPipe forward, eval and training: logits, pooled, MLM logits, hidden
 *      taps {0, 2, 3, 6} and attention taps {0, 1, 2, 5} (layer 2's is
 *      empty: no heads) on the last stage against the whole model on the
 *      same micro-batch: max rel err <= 1e-5 (floor 1e-3 * max|want|);
 *   3. 1F1B over the 5 micro-batches, dropout on (masks replayed by global
 *      layer and example), loss = classification + MLM cross-entropy: the
 *      summed loss on every stage (rel 1e-6), d loss / d h_0 of every
 *      micro-batch on stage 0 (1e-5), and after the optimizer hooks
 *      (pipeline_grad_sync: replicas summed, tied copies summed) every
 *      parameter gradient of every stage against the whole model's
 *      gradient summed over ALL replicas' micro-batches (1e-5; in fact
 *      bitwise for R <= 2, the reference adding replica sums in the same
 *      order), except the word embeddings: the pipeline adds the lookup's
 *      and the tied decoder's sums, the whole model interleaves them per
 *      micro-batch, and with cancellation that reordering reaches 2e-5 at
 *      the floor (measured), so 1e-4; and the global norm (rel 1e-6: the
 *      last stage subtracts its copy's share in double);
 *   4. an output callback failing at micro-batch 1 makes pipeline_forward
 *      return -1 on every rank, and the next forward still runs clean;
 *   5. measured costs (layer 5 ten times the others) give layer 5 a stage
 *      of its own, and the stage shares sum to 1.
 * MODE fail-loss / fail-input: the last stage's loss callback, or stage
 * 0's input-gradient callback, dies (kd_die) at micro-batch 1 while the
 * other stages wait in the pipeline: the job must end, non-zero, with the
 * message, within seconds (checked by the runner). */
#include "kd/cli/exit_codes.h"
#include "kd/core/error.h"
#include "kd/core/log.h"
#include "kd/model/hf_config.h"
#include "kd/model/optim.h"
#include "kd/parallel/comm.h"
#include "kd/parallel/pipeline.h"
#include "../tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define L_ 6
#define B_ 2
#define T_ 8
#define P_ 2
#define NMICRO 5
#define HEADS (BERT_HEAD_CLASSIFIER | BERT_HEAD_MLM)
#define TOL 1e-5

static const int64_t tap_hidden[] = {0, 2, 3, 6};
static const int64_t tap_probs[] = {0, 1, 2, 5};

/* Every micro-batch of every replica (all ranks build all of them). */
struct data {
    int n;                         /* R * NMICRO */
    int32_t (*ids)[B_ * T_], (*types)[B_ * T_], (*mask)[B_ * T_];
    int32_t (*pos)[B_ * P_], (*mlm_labels)[B_ * P_], (*labels)[B_];
    struct bert_batch *batch;      /* [n] */
};

struct test {
    struct comm c;
    int S, R, stage, replica, mode;
    struct bert_config cfg;
    struct data d;
    struct bert_model ref;         /* the whole model, this process only */
    struct pipeline pp;
    double worst[8];               /* per check family, max over ranks at the end */
    int fails;
    float **ref_dh0;               /* [NMICRO] this replica's d loss / d h_0 */
    int fail_at;                   /* output callback failure test */
};

enum { W_PARAMS, W_FWD, W_LOSS, W_DH0, W_GRAD, W_TIED, W_NORM, W_COUNT };
static const char *const wname[W_COUNT] = {
    "parameters", "forward taps", "loss", "d loss / d h_0",
    "gradients (all but the tied word embeddings)",
    "word-embedding gradient (lookup + tied decoder)", "global norm"};
static const double wtol[W_COUNT] = {0.0, TOL, 1e-6, TOL, TOL, 1e-4, 1e-6};

static void note(struct test *t, int which, double err)
{
    if (!(err <= t->worst[which]))
        t->worst[which] = isnan(err) ? INFINITY : err;
}

static double cmp(const float *got, const float *want, int64_t n)
{
    double mx = 0.0;
    for (int64_t i = 0; i < n; i++)
        mx = fabs(want[i]) > mx ? fabs(want[i]) : mx;
    return n == 0 ? 0.0 : max_rel_err(got, want, (size_t)n, 1e-3 * mx + 1e-30, NULL);
}

static uint32_t mix(uint32_t x)
{
    x ^= x >> 16, x *= 0x7feb352dU, x ^= x >> 15, x *= 0x846ca68bU, x ^= x >> 16;
    return x;
}

static void make_config(struct bert_config *cfg, int train)
{
    hf_config_defaults(cfg);
    cfg->vocab_size = 50;
    cfg->hidden_size = 32;
    cfg->num_hidden_layers = L_;
    cfg->num_attention_heads = 4;
    cfg->intermediate_size = 64;
    cfg->max_position_embeddings = 16;
    cfg->num_labels = 3;
    hf_config_init_layers(cfg);
    cfg->layer_heads[1] = 2, cfg->layer_head_mask[1] = 0x5, cfg->layer_intermediate[1] = 40;
    cfg->layer_heads[2] = 0, cfg->layer_head_mask[2] = 0;
    cfg->layer_intermediate[4] = 0;
    cfg->hidden_dropout_prob = train ? 0.1 : 0.0;
    cfg->attention_probs_dropout_prob = train ? 0.1 : 0.0;
    cfg->classifier_dropout = -1.0;
}

static void make_data(struct data *d, int n)
{
    d->n = n;
    d->ids = calloc((size_t)n, sizeof *d->ids);
    d->types = calloc((size_t)n, sizeof *d->types);
    d->mask = calloc((size_t)n, sizeof *d->mask);
    d->pos = calloc((size_t)n, sizeof *d->pos);
    d->mlm_labels = calloc((size_t)n, sizeof *d->mlm_labels);
    d->labels = calloc((size_t)n, sizeof *d->labels);
    d->batch = calloc((size_t)n, sizeof *d->batch);
    for (int i = 0; i < n; i++) {
        for (int b = 0; b < B_; b++) {
            const uint32_t e = (uint32_t)(i * B_ + b); /* global example */
            const int len = 4 + (int)(e % 5);
            for (int t = 0; t < T_; t++) {
                const int in = t < len;
                d->ids[i][b * T_ + t] = in ? 1 + (int32_t)(mix(e * 131u + (uint32_t)t) % 49) : 0;
                d->types[i][b * T_ + t] = in && t >= len / 2;
                d->mask[i][b * T_ + t] = in;
            }
            d->labels[i][b] = (int32_t)(mix(e + 7u) % 3);
            d->pos[i][b * P_] = 1;
            d->pos[i][b * P_ + 1] = e % 2 ? -1 : len - 1;
            d->mlm_labels[i][b * P_] = (int32_t)(mix(e + 99u) % 50);
            d->mlm_labels[i][b * P_ + 1] = e % 2 ? -100 : (int32_t)(mix(e + 98u) % 50);
        }
        d->batch[i] = (struct bert_batch){.B = B_, .T = T_, .input_ids = d->ids[i],
                                          .token_type_ids = d->types[i],
                                          .attention_mask = d->mask[i], .P = P_,
                                          .mlm_positions = d->pos[i],
                                          .first_example = (uint64_t)i * B_, .step = 7};
    }
}

static struct bert_opts model_opts(void)
{
    return (struct bert_opts){.B = B_, .T = T_, .P = P_, .heads = HEADS, .backward = 1,
                              .param_grads = 1, .seed = 5};
}

static void stage_comms(struct test *t, MPI_Comm *stages, MPI_Comm *replicas)
{
    MPI_CHECK(MPI_Comm_split(t->c.world, t->replica, t->stage, stages));
    MPI_CHECK(MPI_Comm_split(t->c.world, t->stage, t->replica, replicas));
}

static void build_pipeline(struct test *t, const char *dir)
{
    MPI_Comm stages, replicas;
    stage_comms(t, &stages, &replicas);
    struct pipeline_opts o = {.model = model_opts(), .checkpoint_dir = dir, .init_seed = 21,
                              .init_std = 0.2f,
                              .taps = {tap_hidden, 4, tap_probs, 4}};
    struct kd_err err;
    if (pipeline_init(&t->pp, &t->cfg, stages, replicas, &o, &err) != 0)
        kd_die(KD_EXIT_RUNTIME, "p_pipeline: %s", err.msg);
    MPI_Comm_free(&stages);
    MPI_Comm_free(&replicas);
}

/* Every tensor of the stage bitwise the whole model's. */
static void check_params(struct test *t)
{
    const struct bert_model *m = &t->pp.model;
    const float *p = (const float *)(const void *)m->params_arena.base;
    const float *q = (const float *)(const void *)t->ref.params_arena.base;
    for (int i = 0; i < m->ptab.n; i++) {
        const struct bert_tensor *x = &m->ptab.t[i];
        int j = bert_table_find(&t->ref.ptab, x->name);
        if (j < 0) {
            t->fails++;
            continue;
        }
        note(t, W_PARAMS, cmp(p + x->offset, q + t->ref.ptab.t[j].offset, x->numel));
    }
}

/* ---- GPipe forward --------------------------------------------------- */

static int on_output(void *ctx, const struct bert_model *m, int micro,
                     const struct pipeline_tap_view *taps, struct kd_err *err)
{
    struct test *t = ctx;
    if (t->fail_at >= 0) {
        if (micro == t->fail_at)
            return kd_errf(err, "p_pipeline: deliberate output failure at micro-batch %d",
                           micro);
        return 0;
    }
    const struct bert_batch *b = &t->d.batch[t->replica * NMICRO + micro];
    bert_forward(&t->ref, b);
    const int64_t C = t->cfg.hidden_size, BTC = b->B * b->T * C;
    note(t, W_FWD, cmp(bert_logits(m), bert_logits(&t->ref), b->B * t->cfg.num_labels));
    note(t, W_FWD, cmp(bert_pooled(m), bert_pooled(&t->ref), b->B * C));
    note(t, W_FWD, cmp(bert_mlm_logits(m), bert_mlm_logits(&t->ref),
                       b->B * b->P * t->cfg.vocab_size));
    for (int i = 0; i < 4; i++)
        note(t, W_FWD, cmp(taps->hidden[i], bert_hidden(&t->ref, tap_hidden[i]), BTC));
    for (int i = 0; i < 4; i++) {
        const int64_t l = tap_probs[i];
        note(t, W_FWD, cmp(taps->probs[i], bert_probs(&t->ref, l),
                           b->B * t->cfg.layer_heads[l] * b->T * b->T));
    }
    return 0;
}

static void check_forward(struct test *t, int train)
{
    struct bert_batch mb[NMICRO];
    for (int i = 0; i < NMICRO; i++) {
        mb[i] = t->d.batch[t->replica * NMICRO + i];
        mb[i].train = train;
    }
    /* the reference reads t->d.batch: same flag */
    for (int i = 0; i < t->d.n; i++)
        t->d.batch[i].train = train;
    struct kd_err err;
    t->fail_at = -1;
    if (pipeline_forward(&t->pp, mb, NMICRO, on_output, t, &err) != 0)
        kd_die(KD_EXIT_RUNTIME, "p_pipeline: forward: %s", err.msg);
}

/* ---- 1F1B ------------------------------------------------------------ */

static double loss_of(struct test *t, struct bert_model *m, int gmicro, struct bert_grad_in *g)
{
    double l = bert_loss_classification(m, t->d.labels[gmicro], m->ga.dlogits, 1.0f);
    l += bert_loss_mlm(m, t->d.mlm_labels[gmicro], m->ga.dmlm_logits, 1.0f);
    g->dlogits = m->ga.dlogits;
    g->dmlm_logits = m->ga.dmlm_logits;
    return l;
}

static double on_loss(void *ctx, struct bert_model *m, int micro, struct bert_grad_in *g)
{
    struct test *t = ctx;
    if (t->mode == 1 && micro == 1)
        kd_die(KD_EXIT_RUNTIME, "p_pipeline: deliberate failure in the loss of micro-batch %d "
                                "on stage %d", micro, t->stage);
    return loss_of(t, m, t->replica * NMICRO + micro, g);
}

static void on_input_grad(void *ctx, int micro, const float *dh0)
{
    struct test *t = ctx;
    if (t->mode == 2 && micro == 1)
        kd_die(KD_EXIT_RUNTIME, "p_pipeline: deliberate failure in the input gradient of "
                                "micro-batch %d on stage %d", micro, t->stage);
    if (t->ref_dh0)
        note(t, W_DH0, cmp(dh0, t->ref_dh0[micro], B_ * T_ * t->cfg.hidden_size));
}

/* The whole model over every replica's micro-batches, this replica's loss
 * and d h_0 kept. The gradients are accumulated per replica and the
 * replicas' sums added in replica order afterwards, the order in which the
 * pipeline sums them (for R = 2 a single addition, which commutes, so the
 * MPI reduction gives the same bits). */
static double reference_train(struct test *t)
{
    const int64_t BTC = B_ * T_ * t->cfg.hidden_size;
    const size_t nf = t->ref.ptab.floats;
    float *acc = (float *)(void *)t->ref.grads_arena.base;
    float *total = calloc(nf, sizeof *total);
    double loss = 0.0;
    bert_zero_grads(&t->ref);
    for (int i = 0; i < t->d.n; i++) {
        t->d.batch[i].train = 1;
        bert_forward(&t->ref, &t->d.batch[i]);
        struct bert_grad_in g;
        memset(&g, 0, sizeof g);
        double l = loss_of(t, &t->ref, i, &g);
        bert_backward(&t->ref, &g);
        if (i / NMICRO == t->replica) {
            loss += l;
            memcpy(t->ref_dh0[i % NMICRO], t->ref.d_embedding_output,
                   (size_t)BTC * sizeof(float));
        }
        if (i % NMICRO == NMICRO - 1) { /* a replica's last micro-batch */
            for (size_t k = 0; k < nf; k++)
                total[k] += acc[k];
            bert_zero_grads(&t->ref);
        }
    }
    memcpy(acc, total, nf * sizeof *acc);
    free(total);
    return loss;
}

static struct optim_segment *segments(const struct bert_model *m)
{
    return bert_optim_segments(m);
}

static void check_train(struct test *t)
{
    t->ref_dh0 = calloc(NMICRO, sizeof *t->ref_dh0);
    for (int i = 0; i < NMICRO; i++)
        t->ref_dh0[i] = malloc((size_t)(B_ * T_ * t->cfg.hidden_size) * sizeof(float));
    const double ref_loss = reference_train(t);

    struct bert_batch mb[NMICRO];
    for (int i = 0; i < NMICRO; i++)
        mb[i] = t->d.batch[t->replica * NMICRO + i];
    struct bert_model *m = &t->pp.model;
    bert_zero_grads(m);
    struct pipeline_step step = {.loss = on_loss, .input_grad = on_input_grad, .ctx = t};
    double loss = pipeline_train(&t->pp, mb, NMICRO, &step);
    note(t, W_LOSS, fabs(loss - ref_loss) / fabs(ref_loss));

    /* the optimizer's hooks: replicas and tied copies summed, global norm */
    struct optim_grad_sync sync;
    pipeline_grad_sync(&t->pp, &sync);
    struct optim_segment *segs = segments(m), *rsegs = segments(&t->ref);
    struct optim_grad_info gi, rgi;
    struct kd_err err;
    float *grads = (float *)(void *)m->grads_arena.base;
    float *rgrads = (float *)(void *)t->ref.grads_arena.base;
    if (optim_grad_prepare(grads, m->ptab.floats, segs, (size_t)m->ptab.n, 1.0, 1.0, &sync,
                           &gi, &err) != 0 ||
        optim_grad_prepare(rgrads, t->ref.ptab.floats, rsegs, (size_t)t->ref.ptab.n, 1.0, 1.0,
                           NULL, &rgi, &err) != 0)
        kd_die(KD_EXIT_RUNTIME, "p_pipeline: %s", err.msg);
    note(t, W_NORM, fabs(gi.norm - rgi.norm) / rgi.norm);
    for (int i = 0; i < m->ptab.n; i++) {
        const struct bert_tensor *x = &m->ptab.t[i];
        int j = bert_table_find(&t->ref.ptab, x->name);
        KD_ASSERT(j >= 0, "%s", x->name);
        double e = cmp(grads + x->offset, rgrads + t->ref.ptab.t[j].offset, x->numel);
        note(t, strcmp(x->name, "embeddings.word_embeddings.weight") == 0 ? W_TIED : W_GRAD,
             e);
    }
    free(segs);
    free(rsegs);
    for (int i = 0; i < NMICRO; i++)
        free(t->ref_dh0[i]);
    free(t->ref_dh0);
    t->ref_dh0 = NULL;
}

/* A failing output callback: -1 everywhere, and the pipeline still works. */
static void check_output_failure(struct test *t)
{
    struct bert_batch mb[NMICRO];
    for (int i = 0; i < NMICRO; i++)
        mb[i] = t->d.batch[t->replica * NMICRO + i];
    struct kd_err err;
    t->fail_at = 1;
    int rc = pipeline_forward(&t->pp, mb, NMICRO, on_output, t, &err);
    int bad = rc != -1 || (pipeline_is_last(&t->pp) && !strstr(err.msg, "deliberate output")) ||
              (!pipeline_is_last(&t->pp) && !strstr(err.msg, "failed on the last stage"));
    t->fail_at = -1;
    rc = pipeline_forward(&t->pp, mb, NMICRO, on_output, t, &err);
    bad |= rc != 0;
    t->fails += bad;
}

/* Measured costs steer the partition: with layer 5 ten times as expensive
 * as the others, the optimal cut gives it a stage of its own. */
static void check_measured_cost(struct test *t)
{
    const double cost[L_ + 2] = {0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 10.0, 0.0};
    MPI_Comm stages, replicas;
    stage_comms(t, &stages, &replicas);
    struct pipeline_opts o = {.model = model_opts(), .init_seed = 21, .cost = cost};
    struct pipeline pp;
    struct kd_err err;
    if (pipeline_init(&pp, &t->cfg, stages, replicas, &o, &err) != 0)
        kd_die(KD_EXIT_RUNTIME, "p_pipeline: %s", err.msg);
    double share = 0.0;
    for (int s = 0; s < t->S; s++)
        share += pp.stage_cost[s];
    t->fails += pp.first[0] != 0 || pp.first[t->S] != L_ || (t->S > 1 && pp.first[t->S - 1] != 5);
    t->fails += share < 1.0 - 1e-12 || share > 1.0 + 1e-12;
    pipeline_free(&pp);
    MPI_Comm_free(&stages);
    MPI_Comm_free(&replicas);
}

/* Rank 0 saves the whole model; everyone gets the directory's name. */
static char *save_reference(struct test *t)
{
    char dir[256] = "";
    if (t->c.rank == 0) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/kd_pipe_XXXXXX", base && *base ? base : "/tmp");
        struct kd_err err;
        if (!mkdtemp(dir) || bert_save_dir(&t->ref, dir, NULL, NULL, &err) != 0)
            kd_die(KD_EXIT_RUNTIME, "p_pipeline: cannot save the reference in %s", dir);
    }
    comm_bcast_bytes(&t->c, dir, sizeof dir, 0);
    return kd_strdup(dir);
}

int main(int argc, char **argv)
{
    struct test t;
    memset(&t, 0, sizeof t);
    comm_init(&t.c, &argc, &argv);
    log_set_level(LOG_LEVEL_WARN);
    t.S = argc > 1 ? atoi(argv[1]) : 1;
    const char *mode = argc > 2 ? argv[2] : "check";
    t.mode = strcmp(mode, "fail-loss") == 0 ? 1 : strcmp(mode, "fail-input") == 0 ? 2 : 0;
    if (t.S < 1 || t.c.size % t.S != 0)
        kd_die(KD_EXIT_USAGE, "p_pipeline: %d ranks cannot hold pipelines of %d stages",
               t.c.size, t.S);
    t.R = t.c.size / t.S;
    t.stage = t.c.rank % t.S;
    t.replica = t.c.rank / t.S;
    make_config(&t.cfg, 1);
    make_data(&t.d, t.R * NMICRO);
    struct bert_opts ro = model_opts();
    struct kd_err err;
    if (bert_init(&t.ref, &t.cfg, &ro, &err) != 0)
        kd_die(KD_EXIT_RUNTIME, "p_pipeline: %s", err.msg);
    bert_init_random(&t.ref, 21, 0.2f);
    build_pipeline(&t, NULL);

    if (t.mode != 0) { /* the failure modes: die inside 1F1B */
        struct bert_batch mb[NMICRO];
        for (int i = 0; i < NMICRO; i++)
            mb[i] = t.d.batch[t.replica * NMICRO + i];
        struct pipeline_step step = {.loss = on_loss, .input_grad = on_input_grad, .ctx = &t};
        pipeline_train(&t.pp, mb, NMICRO, &step);
        kd_die(KD_EXIT_INTERNAL, "p_pipeline: %s: the pipeline finished instead of failing",
               mode);
    }

    check_params(&t);
    t.fail_at = -1;
    check_forward(&t, 0);
    check_forward(&t, 1);
    check_train(&t);
    check_output_failure(&t);
    check_measured_cost(&t);
    /* from a checkpoint: each stage loads its own slice */
    char *dir = save_reference(&t);
    pipeline_free(&t.pp);
    build_pipeline(&t, dir);
    check_params(&t);
    check_forward(&t, 1);
    comm_barrier(&t.c);
    if (t.c.rank == 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            log_warn("cannot remove %s", dir);
    }
    free(dir);

    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, t.worst, W_COUNT, MPI_DOUBLE, MPI_MAX, t.c.world));
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &t.fails, 1, MPI_INT, MPI_SUM, t.c.world));
    int bad = t.fails;
    for (int w = 0; w < W_COUNT; w++)
        bad += !(t.worst[w] <= wtol[w]);
    if (t.c.rank == 0) {
        for (int w = 0; w < W_COUNT; w++)
            ok(t.worst[w] <= wtol[w], "S = %d x R = %d: %s: max rel err %.3g <= %.0e", t.S, t.R,
               wname[w], t.worst[w], wtol[w]);
        ok(t.fails == 0, "S = %d x R = %d: structural checks (tensor names, failing output "
                         "callback agreed, pipeline usable after it): %d failures",
           t.S, t.R, t.fails);
    }
    pipeline_free(&t.pp);
    bert_free(&t.ref);
    comm_finalize(&t.c);
    return t.c.rank == 0 ? done_testing() : (bad != 0);
}
