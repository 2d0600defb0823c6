/* export.c: the export stage: the student of the last distill stage before
 * it, as a Hugging Face directory (config.json, model.safetensors,
 * vocab.txt) at stage.dir, or <output_dir>/student. The student is loaded
 * through the same checkpoint reader users' files go through and written
 * again, so what is exported is known to load. */
#include "kd/job/stage.h"
#include "kd/cli/exit_codes.h"
#include "kd/core/fsutil.h"
#include "kd/core/log.h"
#include "kd/model/hf_config.h"
#include "kd/stages/stage_model.h"
#include "kd/stages/stage_models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *export_dir(const struct job *job, const struct stage_cfg *st)
{
    return st->dir[0] ? strdup(st->dir) : stage_out_path(job, "student");
}

static const char *const hf_files[] = {"config.json", "model.safetensors", "vocab.txt"};

static int files(const struct stage_ctx *ctx, struct stage_files *in, struct stage_files *out,
                 struct kd_err *err)
{
    const int src = stage_last_distill(ctx->job, ctx->index);
    if (src < 0) {
        kd_errf(err, "%s:%d: stage \"%s\" (export) has no distill stage before it to export",
                ctx->job->path, ctx->stage->line, ctx->stage->name);
        return -1;
    }
    char rel[600];
    for (int i = 0; i < 3; i++) {
        snprintf(rel, sizeof rel, "students/%s/%s", ctx->job->stages[src].name, hf_files[i]);
        stage_files_add(in, rel);
        if (ctx->stage->dir[0]) {
            char *p = fs_path_join(ctx->stage->dir, hf_files[i]);
            stage_files_add_user(out, p);
            free(p);
        } else {
            snprintf(rel, sizeof rel, "student/%s", hf_files[i]);
            stage_files_add(out, rel);
        }
    }
    return 0;
}

static int run(const struct stage_ctx *ctx)
{
    const struct job *job = ctx->job;
    const struct stage_cfg *st = ctx->stage;
    struct kd_err err = {0};
    const int src = stage_last_distill(job, stage_index(job, st));
    if (src < 0) {
        log_error("stage \"%s\": there is no distill stage before it to export", st->name);
        return KD_EXIT_RUNTIME;
    }
    char *from = stage_student_dir(job, src), *to = export_dir(job, st);
    char *cfg_path = fs_path_join(from, "config.json"), *vocab = fs_path_join(from, "vocab.txt");
    struct bert_config cfg;
    struct hf_labels labels = {0};
    struct bert_model m;
    int rc = KD_EXIT_RUNTIME;
    if (hf_config_read(cfg_path, &cfg, &labels, &err)) {
        log_error("stage \"%s\": %s", st->name, err.msg);
        goto out;
    }
    struct bert_opts o = {.B = 1, .T = 1, .heads = BERT_HEAD_CLASSIFIER};
    if (stage_model_open(&m, &cfg, &o, from, (uint64_t)job->job.seed, &err)) {
        log_error("stage \"%s\": student %s: %s", st->name, from, err.msg);
        goto out;
    }
    int w = 0;
    if (ctx->comm->rank == 0)
        w = bert_save_dir(&m, to, vocab, &labels, &err);
    if (comm_agree_max(ctx->comm, w ? 1 : 0)) {
        log_error("stage \"%s\": %s", st->name,
                  ctx->comm->rank == 0 ? err.msg : "rank 0 could not write the export");
    } else {
        log_info0("stage \"%s\": student of stage \"%s\" exported to %s (%.2fM parameters)",
                  st->name, job->stages[src].name, to, (double)m.ptab.floats / 1e6);
        rc = KD_EXIT_OK;
    }
    bert_free(&m);
out:
    hf_labels_free(&labels);
    free(from), free(to), free(cfg_path), free(vocab);
    return rc;
}

const struct stage_impl stage_export = {.kind = STAGE_KIND_EXPORT, .run = run, .files = files};
