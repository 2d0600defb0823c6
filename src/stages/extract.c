/* extract.c: the extract stage: teacher inference over the training split
 * into the teacher store <output_dir>/teacher.h5 (io/teacher_store.h).
 * With teacher.pipeline_stages = 1 every rank runs the whole teacher on
 * its shard of the examples (layout_shard, dataset order) and writes them
 * into the one file with parallel HDF5; with S > 1 each pipeline replica
 * takes a shard and its last stage writes (extract_pipeline.c). */
#include "kd/job/stage.h"
#include "kd/cli/exit_codes.h"
#include "kd/core/fsutil.h"
#include "kd/core/log.h"
#include "kd/core/timers.h"
#include "kd/model/hf_config.h"
#include "kd/parallel/layout.h"
#include "kd/parallel/timer_report.h"
#include "kd/stages/batch_rows.h"
#include "kd/stages/extract_common.h"
#include "kd/stages/stage_data.h"
#include "kd/stages/stage_model.h"
#include "kd/stages/stage_models.h"
#include "kd/stages/teacher_outputs.h"

#include <stdlib.h>
#include <string.h>

/* Forward over this rank's rows [begin, end) in batches of B, writing each. */
static int write_shard(struct bert_model *m, const struct dataset *d,
                       const struct store_spec *spec, store_writer_t *w, int64_t begin,
                       int64_t end, int64_t n_calls, struct kd_err *err)
{
    const int64_t B = m->opts.B;
    struct extract_bufs eb;
    struct batch_rows br;
    int64_t *rows = malloc((size_t)B * sizeof *rows);
    if (!rows || extract_bufs_alloc(&eb, spec, B) || batch_rows_alloc(&br, B, d->max_seq_len)) {
        kd_errf(err, "out of memory for the extract buffers");
        return -1;
    }
    struct progress prog;
    progress_begin(&prog, "extract", "examples (rank 0)", end - begin, 10.0);
    int rc = 0;
    for (int64_t c = 0, pos = begin; c < n_calls && rc == 0; c++) {
        const int64_t n = pos + B <= end ? B : end - pos;
        struct store_batch sb = {.first = pos, .count = n};
        if (n > 0) {
            for (int64_t i = 0; i < n; i++)
                rows[i] = pos + i;
            batch_rows_gather(&br, d, rows, n);
            struct bert_batch b = batch_rows_view(&br, 0, 0, 0);
            timer_start(TIMER_COMPUTE);
            bert_forward(m, &b);
            extract_fill(&eb, spec, m, d, pos, n, br.t, &sb);
            timer_stop(TIMER_COMPUTE);
        }
        timer_start(TIMER_IO);
        rc = store_write_batch(w, &sb, err);
        timer_stop(TIMER_IO);
        pos += n;
        progress_update(&prog, pos - begin, NULL);
    }
    batch_rows_free(&br);
    extract_bufs_free(&eb);
    free(rows);
    return rc;
}

static int run(const struct stage_ctx *ctx)
{
    const struct job *job = ctx->job;
    const struct stage_cfg *st = ctx->stage;
    const struct comm *c = ctx->comm;
    const int index = stage_index(job, st);
    struct kd_err err = {0};
    struct stage_data sd;
    if (stage_data_open(&sd, job, c, &err)) {
        log_error("stage \"%s\": %s", st->name, err.msg);
        return KD_EXIT_RUNTIME;
    }
    const struct dataset *d = &sd.split[DATASET_SPLIT_TRAIN];
    char *dir = stage_teacher_dir(job, index);
    int rc = KD_EXIT_RUNTIME;
    struct bert_config cfg;
    struct store_spec spec;
    struct extract_prov prov = {0};
    char *path = stage_out_path(job, "teacher.h5");
    if (!dir) {
        log_error("stage \"%s\": there is no teacher: set teacher.checkpoint or put a finetune "
                  "stage before this one", st->name);
        goto out;
    }
    if (stage_teacher_config(job, dir, tokenizer_vocab_size(sd.tok), sd.num_labels, &cfg,
                             &err) ||
        teacher_outputs_spec(job, index, &cfg, d, &spec, &err) ||
        extract_provenance(&prov, dir, &cfg, sd.vocab_path, d, &err)) {
        log_error("stage \"%s\": %s", st->name, err.msg);
        goto out;
    }
    extract_log_plan(st->name, &spec, path);
    timers_reset();
    const double t0 = wall_seconds();
    if (job->teacher.pipeline_stages > 1) {
        rc = extract_pipeline(ctx, d, &cfg, dir, &spec, &prov.p, path);
    } else {
        struct bert_opts o = {.B = job->teacher.micro_batch, .T = job->data.max_seq_len,
                              .heads = BERT_HEAD_CLASSIFIER, .seed = (uint64_t)job->job.seed};
        struct bert_model m;
        if (stage_model_open(&m, &cfg, &o, dir, (uint64_t)job->job.seed, &err)) {
            log_error("stage \"%s\": teacher %s: %s", st->name, dir, err.msg);
            goto out;
        }
        store_writer_t *w = NULL;
        if (store_create(&w, path, c, &spec, &prov.p, &err)) {
            log_error("stage \"%s\": %s", st->name, err.msg);
            bert_free(&m);
            goto out;
        }
        long long begin, end;
        layout_shard(d->n, c->rank, c->size, &begin, &end);
        /* shards differ by at most one example: the largest has ceil(N/W) */
        const int64_t most = (d->n + c->size - 1) / c->size;
        const int64_t calls = (most + o.B - 1) / o.B;
        if (write_shard(&m, d, &spec, w, begin, end, calls, &err)) {
            log_error("stage \"%s\": %s", st->name, err.msg);
            store_abort(w);
        } else if (store_finish(w, &err)) {
            log_error("stage \"%s\": %s", st->name, err.msg);
        } else {
            rc = KD_EXIT_OK;
        }
        bert_free(&m);
    }
    timers_report(c, st->name, wall_seconds() - t0, NULL);
    if (rc == KD_EXIT_OK)
        log_info0("stage \"%s\": %lld examples written to %s", st->name,
                  (long long)d->n, path);
out:
    extract_provenance_free(&prov);
    free(dir), free(path);
    stage_data_close(&sd);
    return rc;
}

static int files(const struct stage_ctx *ctx, struct stage_files *in, struct stage_files *out,
                 struct kd_err *err)
{
    stage_data_inputs(ctx->job, in);
    if (stage_teacher_inputs(ctx->job, ctx->index, in, err))
        return -1;
    stage_files_add(out, "teacher.h5");
    return 0;
}

const struct stage_impl stage_extract = {.kind = STAGE_KIND_EXTRACT, .run = run,
                                         .files = files,
                                         .config_extra = teacher_outputs_config};
