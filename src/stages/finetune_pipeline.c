/* finetune_pipeline.c: finetuning with the teacher's layers split over
 * teacher.pipeline_stages = S ranks (parallel/pipeline.h, 1F1B), the W/S
 * replicas data-parallel. The trainer gives each replica its shard of the
 * global batch; a replica runs it as micro-batches of teacher.micro_batch
 * rows through its pipeline. Every stage rank gets the step's loss from
 * the pipeline, so the losses are summed over the replicas of one stage.
 * Each pipeline stage checkpoints its own slice (replica 0 writes). At the
 * end the slices are gathered on rank 0 and saved as one Hugging Face
 * directory. */
#include "kd/stages/finetune_pipeline.h"
#include "kd/cli/exit_codes.h"
#include "kd/core/log.h"
#include "kd/core/timers.h"
#include "kd/parallel/layout.h"
#include "kd/parallel/pipeline.h"
#include "kd/parallel/timer_report.h"
#include "kd/stages/batch_rows.h"
#include "kd/stages/pipe_comms.h"
#include "kd/stages/task_metric.h"
#include "kd/stages/stage_model.h"
#include "kd/stages/stage_models.h"
#include "kd/stages/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MICRO 256

struct pft {
    struct pipeline pp;
    struct pipe_comms pc;
    const struct comm *comm;
    const struct batch_rows *b; /* the micro-step's rows */
    int64_t mb;                 /* rows per micro-batch */
    double row_weight;
    const struct dataset *dev;
    int regression;
};

static double loss_fn(void *vctx, struct bert_model *m, int micro, struct bert_grad_in *g)
{
    struct pft *f = vctx;
    const int64_t r0 = micro * f->mb;
    const int64_t n = r0 + f->mb <= f->b->n ? f->mb : f->b->n - r0;
    const float w = (float)(f->row_weight * (double)n);
    double loss = f->regression
                      ? bert_loss_regression(m, f->b->targets + r0, m->ga.dlogits, w)
                      : bert_loss_classification(m, f->b->labels + r0, m->ga.dlogits, w);
    g->dlogits = m->ga.dlogits;
    return loss * w;
}

/* The micro-batches of the rows in b (views into b's buffers). */
static int split_micro(const struct batch_rows *b, int64_t mb, uint64_t first, int64_t step,
                       int train, struct bert_batch *micro)
{
    int n = 0;
    for (int64_t r0 = 0; r0 < b->n && n < MAX_MICRO; r0 += mb, n++) {
        const int64_t rows = r0 + mb <= b->n ? mb : b->n - r0;
        micro[n] = (struct bert_batch){.B = rows, .T = b->t, .input_ids = b->ids + r0 * b->t,
                                       .token_type_ids = b->types + r0 * b->t,
                                       .attention_mask = b->mask + r0 * b->t, .train = train,
                                       .first_example = first + (uint64_t)r0,
                                       .step = (uint64_t)step};
    }
    return n;
}

static double micro_step(void *vctx, const struct batch_rows *b, uint64_t first, int64_t step,
                         double row_weight, int last, double *terms)
{
    struct pft *f = vctx;
    (void)last; /* the pipeline's own sync reduces after the step */
    struct bert_batch micro[MAX_MICRO];
    const int n = split_micro(b, f->mb, first, step, 1, micro);
    f->b = b, f->row_weight = row_weight;
    const struct pipeline_step ps = {.loss = loss_fn, .ctx = f};
    const double loss = n ? pipeline_train(&f->pp, micro, n, &ps) : 0.0;
    terms[0] += loss;
    return loss;
}

/* Dev metric: each replica forwards its shard; the last stages write their
 * rows' logits into a zeroed (N,K) block, the world sums the blocks (each
 * row comes from exactly one replica) and every rank scores it with the
 * same task metric as the data-parallel path. */
struct dev_acc {
    const struct batch_rows *b;
    int64_t mb, first; /* micro-batch rows; dataset row of b's row 0 */
    float *logits;     /* (N,K) */
};

static int dev_out(void *vctx, const struct bert_model *m, int micro,
                   const struct pipeline_tap_view *taps, struct kd_err *err)
{
    (void)taps, (void)err;
    struct dev_acc *a = vctx;
    const int64_t r0 = micro * a->mb, K = m->cfg.num_labels;
    const int64_t n = r0 + a->mb <= a->b->n ? a->mb : a->b->n - r0;
    memcpy(a->logits + (a->first + r0) * K, bert_logits(m), (size_t)(n * K) * sizeof(float));
    return 0;
}

static double evaluate(void *vctx)
{
    struct pft *f = vctx;
    const struct dataset *d = f->dev;
    const int64_t K = f->pp.model.cfg.num_labels;
    long long begin, end;
    layout_shard(d->n, f->pc.replica, f->pc.R, &begin, &end);
    const int64_t chunk = f->mb * 8;
    struct batch_rows br;
    int64_t *rows = malloc((size_t)chunk * sizeof *rows);
    float *logits = calloc((size_t)(d->n * K), sizeof *logits);
    KD_ASSERT(rows && logits && batch_rows_alloc(&br, chunk, d->max_seq_len) == 0,
              "out of memory");
    struct dev_acc a = {.mb = f->mb, .logits = logits};
    for (long long pos = begin; pos < end; pos += chunk) {
        const int64_t n = pos + chunk <= end ? chunk : end - pos;
        for (int64_t i = 0; i < n; i++)
            rows[i] = pos + i;
        batch_rows_gather(&br, d, rows, n);
        struct bert_batch micro[MAX_MICRO];
        const int nm = split_micro(&br, f->mb, 0, 0, 0, micro);
        a.b = &br, a.first = pos;
        struct kd_err err;
        if (pipeline_forward(&f->pp, micro, nm, dev_out, &a, &err))
            kd_die(1, "dev evaluation: %s", err.msg);
    }
    batch_rows_free(&br);
    free(rows);
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, logits, (int)(d->n * K), MPI_FLOAT, MPI_SUM,
                            f->comm->world));
    const double metric = task_primary_metric(d, logits, K);
    free(logits);
    return metric;
}

int finetune_pipeline(const struct stage_ctx *ctx, struct stage_data *sd,
                      const struct dataset *dev, const struct bert_config *cfg,
                      const char *src)
{
    const struct job *job = ctx->job;
    const struct stage_cfg *st = ctx->stage;
    const struct comm *c = ctx->comm;
    struct kd_err err = {0};
    struct pft *f = calloc(1, sizeof *f);
    f->comm = c, f->dev = dev, f->regression = cfg->num_labels == 1;
    f->mb = job->teacher.micro_batch;
    pipe_comms_init(&f->pc, c, (int)job->teacher.pipeline_stages);
    struct pipeline_opts po = {.model = {.B = f->mb, .T = job->data.max_seq_len,
                                         .heads = BERT_HEAD_CLASSIFIER, .backward = 1,
                                         .param_grads = 1, .optimizer = 1,
                                         .seed = (uint64_t)job->job.seed},
                               .checkpoint_dir = src, .init_seed = (uint64_t)job->job.seed};
    int rc = KD_EXIT_RUNTIME;
    if (pipeline_init(&f->pp, cfg, f->pc.stages, f->pc.replicas, &po, &err)) {
        log_error("stage \"%s\": %s", st->name, err.msg);
        pipe_comms_free(&f->pc);
        free(f);
        return rc;
    }
    log_info0("stage \"%s\": teacher %lld layers, hidden %lld, %lld heads, FFN %lld (%s), "
              "%d pipeline stages x %d replicas, micro-batches of %lld", st->name,
              (long long)cfg->num_hidden_layers, (long long)cfg->hidden_size,
              (long long)cfg->num_attention_heads, (long long)cfg->intermediate_size,
              src ? src : "random initialisation", f->pc.S, f->pc.R, (long long)f->mb);
    struct bert_model *m = &f->pp.model;
    struct optim_segment *segs = bert_optim_segments(m);
    struct optim_grad_sync sync;
    pipeline_grad_sync(&f->pp, &sync);
    struct trainer tr = {
        .job = job, .st = st, .comm = c, .train = &sd->split[DATASET_SPLIT_TRAIN],
        .shard = f->pc.replica, .n_shards = f->pc.R, .loss_comm = f->pc.replicas,
        .n_groups = 1, .sync = &sync, .n_terms = 1, .term_names = {"hard"},
        .hooks = {.micro_step = micro_step, .evaluate = dev ? evaluate : NULL, .ctx = f}};
    tr.group[0] = (struct trainer_group){.name = "teacher",
                                         .params = (float *)(void *)m->params_arena.base,
                                         .grads = (float *)(void *)m->grads_arena.base,
                                         .m = m->adam_m, .v = m->adam_v,
                                         .count = m->ptab.floats, .segs = segs,
                                         .nseg = (size_t)m->ptab.n};
    timers_reset();
    const double t0 = wall_seconds();
    if (trainer_init(&tr, &err) ||
        trainer_checkpoints(&tr, ctx, f->pc.stage, f->pc.replica == 0, &err)) {
        log_error("stage \"%s\": %s", st->name, err.msg);
    } else {
        rc = trainer_run(&tr, &err);
        if (rc == KD_EXIT_RUNTIME)
            log_error("stage \"%s\": %s", st->name, err.msg);
    }
    timers_report(c, st->name, wall_seconds() - t0, NULL);
    if (rc == KD_EXIT_OK) {
        /* one whole model on rank 0, saved as a Hugging Face directory */
        struct bert_model whole;
        int ok = 0;
        if (c->rank == 0) {
            struct bert_opts o = {.B = 1, .T = 1, .heads = BERT_HEAD_CLASSIFIER};
            ok = bert_init(&whole, cfg, &o, &err) == 0;
        }
        pipe_gather_params(&f->pc, c, &f->pp, BERT_HEAD_CLASSIFIER, ok ? &whole : NULL);
        char *dir = stage_out_path(job, "teacher");
        int w = 0;
        if (c->rank == 0)
            w = !ok || bert_save_dir(&whole, dir, sd->vocab_path,
                                     NULL, &err) != 0;
        if (comm_agree_max(c, w)) {
            log_error("stage \"%s\": %s", st->name,
                      c->rank == 0 ? err.msg : "rank 0 could not save the teacher");
            rc = KD_EXIT_RUNTIME;
        } else {
            log_info0("stage \"%s\": teacher saved to %s (dev %.4f after %lld steps)",
                      st->name, dir, tr.last_metric, (long long)tr.steps_done);
            trainer_checkpoints_done(&tr);
        }
        if (c->rank == 0 && ok)
            bert_free(&whole);
        free(dir);
    }
    free(tr.ckpt_path);
    free(segs);
    pipeline_free(&f->pp);
    pipe_comms_free(&f->pc);
    free(f);
    return rc;
}
