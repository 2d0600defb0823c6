/* evaluate.c: the evaluate stage: the teacher and every student the job's
 * distill stages produced, scored on the dev (or test) split with the
 * task's metrics, with parameters, stored size and evaluation tokens/s;
 * the table goes to the log and to <output_dir>/report.md and report.csv.
 * PNG plots of each training stage's curves go to <output_dir>/plots/.
 * Scoring is data-parallel: each rank predicts its shard, the logits are
 * gathered (stage_model_predict). */
#include "kd/job/stage.h"
#include "kd/cli/exit_codes.h"
#include "kd/core/atomic_file.h"
#include "kd/core/fsutil.h"
#include "kd/core/log.h"
#include "kd/eval/plot.h"
#include "kd/eval/report.h"
#include "kd/model/hf_config.h"
#include "kd/stages/stage_data.h"
#include "kd/stages/stage_model.h"
#include "kd/stages/stage_models.h"
#include "kd/stages/task_metric.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_ROWS 32

struct candidate {
    char *dir;
    char name[200];
};

/* The teacher (if any) and each distill stage's student, in job order. */
static int candidates(const struct job *job, int index, struct candidate *c)
{
    int n = 0;
    char *t = stage_teacher_dir(job, index);
    if (t) {
        c[n].dir = t;
        snprintf(c[n++].name, sizeof c->name, "teacher");
    }
    for (int i = 0; i < index && n < MAX_ROWS; i++) {
        const struct stage_cfg *st = &job->stages[i];
        if (st->kind != STAGE_KIND_DISTILL)
            continue;
        char kinds[120] = "";
        for (int k = 0; k < st->n_losses; k++)
            snprintf(kinds + strlen(kinds), sizeof kinds - strlen(kinds), "%s%s",
                     k ? "+" : "", loss_kind_name(st->losses[k].kind));
        c[n].dir = stage_student_dir(job, i);
        snprintf(c[n++].name, sizeof c->name, "student \"%s\" (%s)", st->name, kinds);
    }
    return n;
}

static int files(const struct stage_ctx *ctx, struct stage_files *in, struct stage_files *out,
                 struct kd_err *err)
{
    const char *od = ctx->job->job.output_dir;
    const size_t odn = strlen(od);
    struct candidate c[MAX_ROWS];
    const int n = candidates(ctx->job, ctx->index, c);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (strncmp(c[i].dir, od, odn) != 0 || c[i].dir[odn] != '/') {
            if (stage_files_add_user_dir(in, c[i].dir, err)) /* teacher.checkpoint */
                rc = -1;
        } else {
            char rel[700];
            snprintf(rel, sizeof rel, "%s/model.safetensors", c[i].dir + odn + 1);
            stage_files_add(in, rel);
        }
        free(c[i].dir);
    }
    stage_files_add(out, "report.md");
    stage_files_add(out, "report.csv");
    return rc;
}

static uint64_t file_size(const char *dir, const char *name)
{
    char *p = fs_path_join(dir, name);
    struct stat sb;
    uint64_t n = stat(p, &sb) == 0 ? (uint64_t)sb.st_size : 0;
    free(p);
    return n;
}

static int score(const struct candidate *cand, const struct dataset *d, const struct comm *c,
                 struct report_row *row, struct kd_err *err)
{
    char *cfg_path = fs_path_join(cand->dir, "config.json");
    struct bert_config cfg;
    int rc = hf_config_read(cfg_path, &cfg, NULL, err);
    free(cfg_path);
    if (rc)
        return -1;
    struct bert_opts o = {.B = 32, .T = d->max_seq_len, .heads = BERT_HEAD_CLASSIFIER};
    struct bert_model m;
    if (stage_model_open(&m, &cfg, &o, cand->dir, 0, err))
        return -1;
    const int64_t K = cfg.num_labels;
    float *logits = malloc((size_t)(d->n * K) * sizeof *logits);
    int32_t *pred = malloc((size_t)d->n * sizeof *pred);
    comm_barrier(c);
    const double t0 = wall_seconds();
    rc = !logits || !pred ? -1 : stage_model_predict(&m, d, c, logits, err);
    double secs = wall_seconds() - t0;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &secs, 1, MPI_DOUBLE, MPI_MAX, c->world));
    if (rc == 0) {
        int64_t tokens = 0;
        for (int64_t i = 0; i < d->n; i++)
            tokens += d->lengths[i];
        int64_t params = 0;
        for (int i = 0; i < m.ptab.n; i++)
            params += m.ptab.t[i].numel;
        *row = (struct report_row){.model = cand->name, .n_params = params,
                                   .size_bytes = file_size(cand->dir, "model.safetensors"),
                                   .tokens_per_s = secs > 0 ? (double)tokens / secs : 0.0};
        if (K == 1) {
            rc = eval_scores_compute(&row->scores, EVAL_TASK_REGRESSION, 1, NULL, NULL, logits,
                                     d->targets, d->n, err);
        } else {
            task_argmax(logits, d->n, K, pred);
            rc = eval_scores_compute(&row->scores, EVAL_TASK_CLASSIFICATION, (int)K, pred,
                                     d->labels, NULL, NULL, d->n, err);
        }
    }
    free(logits), free(pred);
    bert_free(&m);
    return rc;
}

/* Plots of every training stage's curves (warnings only). */
static void plot_curves(const struct job *job)
{
    char *dir = stage_out_path(job, "plots");
    char e[512];
    if (fs_mkdir_p(dir, e, sizeof e)) {
        log_warn("no plots: %s", e);
        free(dir);
        return;
    }
    for (int i = 0; i < job->n_stages; i++) {
        const struct stage_cfg *st = &job->stages[i];
        char rel[400];
        snprintf(rel, sizeof rel, "curves/%s.csv", st->name);
        char *csv = stage_out_path(job, rel);
        if (fs_file_exists(csv)) {
            char loss[600], dev[600];
            snprintf(loss, sizeof loss, "%s/%s_loss.png", dir, st->name);
            snprintf(dev, sizeof dev, "%s/%s_dev.png", dir, st->name);
            struct plot_outcome po;
            struct kd_err err;
            if (plot_training_curves(csv, loss, dev, st->name, &po, &err))
                log_warn("plots of stage \"%s\": %s", st->name, err.msg);
            else if (!po.gnuplot_missing)
                log_info("stage \"%s\" curves plotted: %s%s%s", st->name,
                         po.loss_png ? loss : "", po.dev_png ? ", " : "",
                         po.dev_png ? dev : "");
        }
        free(csv);
    }
    free(dir);
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
    const int split = st->split == EVAL_SPLIT_TEST ? DATASET_SPLIT_TEST : DATASET_SPLIT_DEV;
    const struct dataset *d = stage_data_split(&sd, job, c, split, &err);
    int rc = KD_EXIT_RUNTIME;
    struct candidate cand[MAX_ROWS];
    const int n = candidates(job, ctx->index, cand);
    struct report_row rows[MAX_ROWS];
    int n_rows = 0;
    if (!d) {
        log_error("stage \"%s\": %s", st->name, err.msg);
        goto out;
    }
    if (!d->labels && !d->targets) {
        log_error("stage \"%s\": the %s split has no labels to score against", st->name,
                  split == DATASET_SPLIT_TEST ? "test" : "dev");
        goto out;
    }
    if (n == 0) {
        log_error("stage \"%s\": nothing to evaluate: no teacher and no distill stage before "
                  "it", st->name);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (score(&cand[i], d, c, &rows[n_rows], &err)) {
            log_error("stage \"%s\": %s: %s", st->name, cand[i].name, err.msg);
            goto out;
        }
        n_rows++;
    }
    char title[300];
    snprintf(title, sizeof title, "%s: %s split, %lld examples", job->job.name,
             split == DATASET_SPLIT_TEST ? "test" : "dev", (long long)d->n);
    int w = 0;
    if (c->rank == 0) {
        char *md = stage_out_path(job, "report.md"), *csv = stage_out_path(job, "report.csv");
        report_log(rows, n_rows, title, &err);
        w = report_write(md, csv, rows, n_rows, title, &err);
        if (w)
            log_error("stage \"%s\": %s", st->name, err.msg);
        else
            log_info("stage \"%s\": report written to %s and %s", st->name, md, csv);
        free(md), free(csv);
        plot_curves(job);
    }
    rc = comm_agree_max(c, w ? 1 : 0) ? KD_EXIT_RUNTIME : KD_EXIT_OK;
out:
    for (int i = 0; i < n; i++)
        free(cand[i].dir);
    stage_data_close(&sd);
    return rc;
}

const struct stage_impl stage_evaluate = {.kind = STAGE_KIND_EVALUATE, .run = run,
                                          .files = files};
