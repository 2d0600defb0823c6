/* finetune.c: the finetune stage: trains the teacher on the task's labels
 * (cross-entropy, or MSE for regression) and saves it to
 * <output_dir>/teacher. With teacher.pipeline_stages = 1 every rank is a
 * data-parallel replica of the whole teacher; with S > 1 the layers are
 * split over S ranks (finetune_pipeline.c). Starts from teacher.checkpoint,
 * or from a random initialisation of the teacher.* shape. */
#include "kd/job/stage.h"
#include "kd/cli/exit_codes.h"
#include "kd/core/log.h"
#include "kd/core/timers.h"
#include "kd/parallel/timer_report.h"
#include "kd/stages/dev_eval.h"
#include "kd/stages/finetune_pipeline.h"
#include "kd/stages/grad_sync.h"
#include "kd/stages/stage_data.h"
#include "kd/stages/stage_model.h"
#include "kd/stages/stage_models.h"
#include "kd/stages/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct finetune {
    struct bert_model m;
    struct dev_eval dev;
    struct grad_sync gs;
};

/* The task loss of one micro-batch: mean over its rows times
 * n * row_weight, i.e. each row weighted row_weight. */
static double micro_step(void *vctx, const struct batch_rows *b, uint64_t first, int64_t step,
                         double row_weight, int last, double *terms)
{
    struct finetune *f = vctx;
    struct bert_batch batch = batch_rows_view(b, 1, first, (uint64_t)step);
    bert_forward(&f->m, &batch);
    const float w = (float)(row_weight * (double)b->n);
    double loss = f->m.cfg.num_labels == 1
                      ? bert_loss_regression(&f->m, b->targets, f->m.ga.dlogits, w)
                      : bert_loss_classification(&f->m, b->labels, f->m.ga.dlogits, w);
    struct bert_grad_in gin;
    memset(&gin, 0, sizeof gin);
    gin.dlogits = f->m.ga.dlogits;
    grad_sync_attach(&f->gs, &gin, last);
    bert_backward(&f->m, &gin);
    terms[0] += loss * w;
    return loss * w;
}

static double evaluate(void *vctx)
{
    struct finetune *f = vctx;
    return dev_eval_metric(&f->dev);
}

static int run(const struct stage_ctx *ctx)
{
    const struct job *job = ctx->job;
    const struct stage_cfg *st = ctx->stage;
    const struct comm *c = ctx->comm;
    struct kd_err err = {0};
    struct stage_data sd;
    if (stage_data_open(&sd, job, c, &err)) {
        log_error("stage \"%s\": %s", st->name, err.msg);
        return KD_EXIT_RUNTIME;
    }
    const struct dataset *dev =
        job->data.task == DATA_TASK_TSV && !job->data.dev[0]
            ? NULL
            : stage_data_split(&sd, job, c, DATASET_SPLIT_DEV, &err);
    char *src = job->teacher.checkpoint[0] ? strdup(job->teacher.checkpoint) : NULL;
    struct bert_config cfg;
    int rc = KD_EXIT_RUNTIME;
    struct finetune f;
    memset(&f, 0, sizeof f);
    if ((job->data.task == DATA_TASK_TSV && job->data.dev[0] && !dev) ||
        stage_teacher_config(job, src, tokenizer_vocab_size(sd.tok), sd.num_labels, &cfg,
                             &err)) {
        log_error("stage \"%s\": %s", st->name, err.msg);
        goto out;
    }
    if (st->dropout >= 0)
        cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = st->dropout;
    if (job->teacher.pipeline_stages > 1) {
        rc = finetune_pipeline(ctx, &sd, dev, &cfg, src);
        goto out;
    }
    struct bert_opts o = {.B = trainer_max_micro_rows(job, st, c->size),
                          .T = job->data.max_seq_len, .heads = BERT_HEAD_CLASSIFIER,
                          .backward = 1, .param_grads = 1, .optimizer = 1,
                          .seed = (uint64_t)job->job.seed};
    if (stage_model_open(&f.m, &cfg, &o, src, (uint64_t)job->job.seed, &err)) {
        log_error("stage \"%s\": teacher: %s", st->name, err.msg);
        goto out;
    }
    log_info0("stage \"%s\": teacher %lld layers, hidden %lld, %lld heads, FFN %lld, "
              "%.2fM parameters (%s), %d data-parallel replica%s", st->name,
              (long long)cfg.num_hidden_layers, (long long)cfg.hidden_size,
              (long long)cfg.num_attention_heads, (long long)cfg.intermediate_size,
              (double)f.m.ptab.floats / 1e6, src ? src : "random initialisation", c->size,
              c->size == 1 ? "" : "s");
    struct optim_segment *segs = bert_optim_segments(&f.m);
    if (grad_sync_init(&f.gs, c, &f.m, &err)) {
        log_error("stage \"%s\": %s", st->name, err.msg);
        free(segs);
        bert_free(&f.m);
        goto out;
    }
    dev_eval_init(&f.dev, &f.m, dev, c);
    struct trainer tr = {
        .job = job, .st = st, .comm = c, .train = &sd.split[DATASET_SPLIT_TRAIN],
        .shard = c->rank, .n_shards = c->size, .loss_comm = c->world, .n_groups = 1,
        .sync = grad_sync_hooks(&f.gs), .n_terms = 1, .term_names = {"hard"},
        .hooks = {.micro_step = micro_step, .evaluate = dev ? evaluate : NULL, .ctx = &f}};
    tr.group[0] = (struct trainer_group){.name = "teacher",
                                         .params = (float *)(void *)f.m.params_arena.base,
                                         .grads = (float *)(void *)f.m.grads_arena.base,
                                         .m = f.m.adam_m, .v = f.m.adam_v,
                                         .count = f.m.ptab.floats, .segs = segs,
                                         .nseg = (size_t)f.m.ptab.n};
    timers_reset();
    const double t0 = wall_seconds();
    if (trainer_init(&tr, &err) || trainer_checkpoints(&tr, ctx, -1, c->rank == 0, &err)) {
        log_error("stage \"%s\": %s", st->name, err.msg);
    } else {
        rc = trainer_run(&tr, &err);
        if (rc == KD_EXIT_RUNTIME)
            log_error("stage \"%s\": %s", st->name, err.msg);
    }
    timers_report(c, st->name, wall_seconds() - t0, NULL);
    if (rc == KD_EXIT_OK) {
        char *dir = stage_out_path(job, "teacher");
        if (stage_model_save(&f.m, dir, sd.vocab_path, &sd.split[DATASET_SPLIT_TRAIN].map, c,
                             &err)) {
            log_error("stage \"%s\": %s", st->name, err.msg);
            rc = KD_EXIT_RUNTIME;
        } else {
            log_info0("stage \"%s\": teacher saved to %s (dev %.4f after %lld steps)",
                      st->name, dir, tr.last_metric, (long long)tr.steps_done);
        }
        free(dir);
    }
    if (rc == KD_EXIT_OK)
        trainer_checkpoints_done(&tr);
    else
        free(tr.ckpt_path);
    dev_eval_free(&f.dev);
    grad_sync_free(&f.gs);
    free(segs);
    bert_free(&f.m);
out:
    free(src);
    stage_data_close(&sd);
    return rc;
}

static int files(const struct stage_ctx *ctx, struct stage_files *in, struct stage_files *out,
                 struct kd_err *err)
{
    stage_data_inputs(ctx->job, in);
    if (ctx->job->teacher.checkpoint[0] &&
        stage_files_add_user_dir(in, ctx->job->teacher.checkpoint, err))
        return -1;
    stage_hf_files(out, "teacher");
    return 0;
}

/* The teacher does not depend on the student: changing student.* must not
 * retrain it. */
static const char *const finetune_keys[] = {"job.seed", "data.", "teacher.", NULL};

const struct stage_impl stage_finetune = {.kind = STAGE_KIND_FINETUNE, .run = run,
                                          .files = files, .job_keys = finetune_keys};
