/* extract_pipeline.c: extract with the teacher's layers split over
 * teacher.pipeline_stages = S ranks. Each of the W/S replicas takes a
 * contiguous shard of the examples (layout_shard, dataset order) and runs
 * it through its pipeline (GPipe) in rounds of PIPE_ROUND micro-batches;
 * the taps the store needs are sent to the last stage
 * (parallel/pipeline.h), and the last stages of all replicas write the
 * store together (parallel HDF5 over their own communicator). Every writer
 * makes the same number of store_write_batch calls (count 0 when its shard
 * is done), as the store requires. */
#include "kd/stages/extract_common.h"
#include "kd/cli/exit_codes.h"
#include "kd/core/log.h"
#include "kd/core/timers.h"
#include "kd/parallel/layout.h"
#include "kd/parallel/pipeline.h"
#include "kd/stages/batch_rows.h"
#include "kd/stages/pipe_comms.h"

#include <stdlib.h>
#include <string.h>

#define PIPE_ROUND 8 /* micro-batches per pipeline_forward: fills the pipeline */

struct writer_ctx {
    store_writer_t *w;
    const struct store_spec *spec;
    const struct dataset *d;
    struct extract_bufs eb;
    const struct batch_rows *b[PIPE_ROUND];
    int64_t first[PIPE_ROUND];
    int64_t calls;
};

static int write_micro(void *vctx, const struct bert_model *m, int micro,
                       const struct pipeline_tap_view *taps, struct kd_err *err)
{
    struct writer_ctx *wc = vctx;
    const struct batch_rows *b = wc->b[micro];
    struct store_batch sb;
    timer_start(TIMER_COMPUTE);
    extract_fill_from(&wc->eb, wc->spec, taps->hidden, taps->probs, bert_logits(m),
                      m->cfg.num_labels, wc->d, wc->first[micro], b->n, b->t, &sb);
    timer_stop(TIMER_COMPUTE);
    timer_start(TIMER_IO);
    int rc = store_write_batch(wc->w, &sb, err);
    timer_stop(TIMER_IO);
    wc->calls++;
    return rc;
}

int extract_pipeline(const struct stage_ctx *ctx, const struct dataset *d,
                     const struct bert_config *cfg, const char *teacher_dir,
                     const struct store_spec *spec, const struct store_provenance *prov,
                     const char *path)
{
    const struct job *job = ctx->job;
    const struct stage_cfg *st = ctx->stage;
    const struct comm *c = ctx->comm;
    struct kd_err err = {0};
    struct pipe_comms pc;
    pipe_comms_init(&pc, c, (int)job->teacher.pipeline_stages);
    const int64_t mb = job->teacher.micro_batch;
    int64_t hid[STORE_MAX_LAYERS], prb[STORE_MAX_LAYERS];
    for (int i = 0; i < spec->n_hidden_layers; i++)
        hid[i] = spec->hidden_layers[i];
    for (int i = 0; i < spec->n_attention_layers; i++)
        prb[i] = spec->attention_layers[i] - 1;
    struct pipeline_opts po = {.model = {.B = mb, .T = job->data.max_seq_len,
                                         .heads = BERT_HEAD_CLASSIFIER,
                                         .seed = (uint64_t)job->job.seed},
                               .checkpoint_dir = teacher_dir,
                               .init_seed = (uint64_t)job->job.seed,
                               .taps = {hid, spec->n_hidden_layers, prb,
                                        spec->n_attention_layers}};
    struct pipeline pp;
    if (pipeline_init(&pp, cfg, pc.stages, pc.replicas, &po, &err)) {
        log_error("stage \"%s\": %s", st->name, err.msg);
        pipe_comms_free(&pc);
        return KD_EXIT_RUNTIME;
    }
    const int last = pipeline_is_last(&pp);
    MPI_Comm wcomm;
    MPI_CHECK(MPI_Comm_split(c->world, last ? 0 : MPI_UNDEFINED, pc.replica, &wcomm));
    struct comm writers = {0};
    struct writer_ctx wc = {.spec = spec, .d = d};
    int rc = 0;
    if (last) {
        comm_sub(&writers, wcomm);
        rc = store_create(&wc.w, path, &writers, spec, prov, &err);
        if (!rc && extract_bufs_alloc(&wc.eb, spec, mb)) {
            kd_errf(&err, "out of memory for the extract buffers");
            store_abort(wc.w);
            wc.w = NULL;
            rc = -1;
        }
    }
    if (comm_agree_max(c, rc ? 1 : 0)) {
        if (rc)
            log_error("stage \"%s\": %s", st->name, err.msg);
        if (last) {
            comm_sub_free(&writers);
            MPI_Comm_free(&wcomm);
        }
        pipeline_free(&pp);
        pipe_comms_free(&pc);
        return KD_EXIT_RUNTIME;
    }
    long long begin, end;
    layout_shard(d->n, pc.replica, pc.R, &begin, &end);
    /* shards differ by at most one example: the largest has ceil(N/R) */
    const int64_t most = (d->n + pc.R - 1) / pc.R;
    const int64_t total_calls = (most + mb - 1) / mb;
    struct batch_rows br[PIPE_ROUND];
    int64_t *rows = malloc((size_t)mb * sizeof *rows);
    for (int k = 0; k < PIPE_ROUND; k++)
        KD_ASSERT(batch_rows_alloc(&br[k], mb, d->max_seq_len) == 0, "out of memory");
    struct progress prog;
    progress_begin(&prog, "extract", "examples (replica 0)", end - begin, 10.0);
    for (long long pos = begin; pos < end && rc == 0;) {
        struct bert_batch micro[PIPE_ROUND];
        int n = 0;
        for (; n < PIPE_ROUND && pos < end; n++) {
            const int64_t rows_n = pos + mb <= end ? mb : end - pos;
            for (int64_t i = 0; i < rows_n; i++)
                rows[i] = pos + i;
            batch_rows_gather(&br[n], d, rows, rows_n);
            micro[n] = batch_rows_view(&br[n], 0, 0, 0);
            wc.b[n] = &br[n];
            wc.first[n] = pos;
            pos += rows_n;
        }
        rc = pipeline_forward(&pp, micro, n, write_micro, &wc, &err);
        progress_update(&prog, pos - begin, NULL);
    }
    /* writers whose shard ended early keep the collective call count */
    while (rc == 0 && last && wc.calls < total_calls) {
        struct store_batch empty = {.first = 0, .count = 0};
        rc = store_write_batch(wc.w, &empty, &err);
        wc.calls++;
    }
    if (last) {
        if (rc == 0) {
            timer_start(TIMER_IO);
            rc = store_finish(wc.w, &err);
            timer_stop(TIMER_IO);
        } else {
            store_abort(wc.w);
        }
    }
    if (rc)
        log_error("stage \"%s\": %s", st->name, err.msg);
    rc = comm_agree_max(c, rc ? 1 : 0);
    for (int k = 0; k < PIPE_ROUND; k++)
        batch_rows_free(&br[k]);
    free(rows);
    if (last) {
        extract_bufs_free(&wc.eb);
        comm_sub_free(&writers);
        MPI_Comm_free(&wcomm);
    }
    pipeline_free(&pp);
    pipe_comms_free(&pc);
    return rc ? KD_EXIT_RUNTIME : KD_EXIT_OK;
}
