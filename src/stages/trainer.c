/* trainer.c: the training loop of trainer.h. */
#include "kd/stages/trainer.h"
#include "kd/cli/exit_codes.h"
#include "kd/core/log.h"
#include "kd/core/signals.h"
#include "kd/core/timers.h"
#include "kd/job/stage.h"
#include "kd/eval/curves.h"
#include "kd/core/fsutil.h"
#include "kd/core/atomic_file.h"
#include "kd/model/lr_schedule.h"
#include "kd/stages/batch_plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int64_t steps_per_epoch(const struct trainer *t)
{
    return (t->train->n + t->st->batch - 1) / t->st->batch;
}

int64_t trainer_max_micro_rows(const struct job *job, const struct stage_cfg *st, int n_shards)
{
    (void)job;
    return batch_plan_max_micro_rows(st, n_shards);
}

int trainer_init(struct trainer *t, struct kd_err *err)
{
    const struct stage_cfg *st = t->st;
    struct optim_config oc;
    optim_config_default(&oc, st->optimizer == OPTIMIZER_ADAM ? OPTIM_KIND_ADAM
                                                              : OPTIM_KIND_ADAMW);
    oc.beta1 = st->beta1, oc.beta2 = st->beta2, oc.eps = st->eps;
    oc.weight_decay = st->weight_decay;
    for (int g = 0; g < t->n_groups; g++) {
        struct trainer_group *gr = &t->group[g];
        if (optim_init(&gr->opt, &oc, gr->segs, gr->nseg, gr->m, gr->v, gr->count, err)) {
            kd_errf(err, "stage \"%s\": optimizer of the %s parameters: %s", st->name,
                    gr->name, err->msg);
            return -1;
        }
    }
    t->total_steps = batch_plan_total_steps(st, t->train->n);
    return 0;
}

/* The state description shared by save and load: group 0 as the main
 * block, the other groups' parameters and moments as named blocks. */
struct state_desc {
    struct train_state s;
    struct train_state_block blocks[3 * TRAINER_MAX_GROUPS];
    struct train_state_int ints[8];
    char names[3 * TRAINER_MAX_GROUPS][64];
};

static void describe(struct trainer *t, struct state_desc *d, int64_t steps_done)
{
    memset(d, 0, sizeof *d);
    const struct trainer_group *g0 = &t->group[0];
    d->s = (struct train_state){.stage = t->st->name, .fingerprint = t->fingerprint,
                                .global_step = steps_done, .opt_step = g0->opt.step,
                                .n_params = g0->count, .params = g0->params,
                                .adam_m = g0->opt.m, .adam_v = g0->opt.v};
    const int64_t per_epoch = steps_per_epoch(t);
    d->s.epoch = steps_done / per_epoch;
    d->s.epoch_pos = (steps_done % per_epoch) * t->st->batch;
    size_t nb = 0;
    for (int g = 1; g < t->n_groups; g++) {
        struct trainer_group *gr = &t->group[g];
        float *arr[3] = {gr->params, gr->opt.m, gr->opt.v};
        static const char *const what[3] = {"params", "adam_m", "adam_v"};
        for (int k = 0; k < 3; k++, nb++) {
            snprintf(d->names[nb], sizeof d->names[nb], "%s.%s", gr->name, what[k]);
            d->blocks[nb] = (struct train_state_block){d->names[nb], arr[k], gr->count};
        }
    }
    d->s.blocks = d->blocks, d->s.n_blocks = nb;
    size_t ni = 0;
    if (t->hooks.state_ints)
        t->hooks.state_ints(t->hooks.ctx, d->ints, &ni, 0);
    d->s.ints = d->ints, d->s.n_ints = ni;
}

static int save_state(struct trainer *t, int64_t steps_done, struct kd_err *err)
{
    int rc = 0;
    if (t->ckpt_write) {
        struct state_desc d;
        describe(t, &d, steps_done);
        rc = train_state_save(t->ckpt_path, &d.s, err);
    }
    if (comm_agree_max(t->comm, rc ? 1 : 0)) {
        if (!rc)
            kd_errf(err, "another rank could not write its checkpoint");
        return -1;
    }
    log_info0("stage \"%s\": checkpoint after step %lld written to %s", t->st->name,
              (long long)steps_done, t->ckpt_path);
    return 0;
}

int trainer_resume(struct trainer *t, struct kd_err *err)
{
    struct state_desc d;
    describe(t, &d, 0);
    int rc = train_state_load(t->ckpt_path, &d.s, err);
    if (comm_agree_max(t->comm, rc ? 1 : 0)) {
        if (!rc)
            kd_errf(err, "another rank could not read its checkpoint");
        return -1;
    }
    if (t->hooks.state_ints)
        t->hooks.state_ints(t->hooks.ctx, d.ints, &d.s.n_ints, 1);
    for (int g = 0; g < t->n_groups; g++)
        if (optim_state_restore(&t->group[g].opt, d.s.opt_step, err))
            return -1;
    t->start_step = d.s.global_step;
    log_info0("stage \"%s\": resumed from %s after step %lld of %lld", t->st->name,
              t->ckpt_path, (long long)t->start_step, (long long)t->total_steps);
    return 0;
}

int trainer_checkpoints(struct trainer *t, const struct stage_ctx *ctx, int pipe_stage,
                        int writer, struct kd_err *err)
{
    char *dir = fs_path_join(t->job->job.output_dir, "checkpoints");
    char e[512];
    int rc = writer && fs_mkdir_p(dir, e, sizeof e) ? -1 : 0;
    if (rc)
        kd_errf(err, "%s", e);
    t->ckpt_path = train_state_path(dir, t->st->name, pipe_stage);
    t->ckpt_write = writer;
    t->fingerprint = ctx->fingerprint;
    free(dir);
    if (comm_agree_max(t->comm, rc ? 1 : 0)) {
        if (!rc)
            kd_errf(err, "another rank could not create the checkpoint directory");
        return -1;
    }
    return ctx->resume ? trainer_resume(t, err) : 0;
}

void trainer_checkpoints_done(struct trainer *t)
{
    if (t->ckpt_path && t->ckpt_write)
        remove(t->ckpt_path);
    free(t->ckpt_path);
    t->ckpt_path = NULL;
}

/* Reduces the gradients, clips by the norm over every group and updates.
 * Returns 0 after an update, 1 for a skipped (non-finite) step, -1 on a
 * hook failure. */
static int update(struct trainer *t, double lr, struct kd_err *err)
{
    const struct optim_grad_sync *sync = t->sync;
    double sumsq = 0.0;
    if (sync && sync->reduce_grads) {
        timer_start(TIMER_ALLREDUCE);
        int rc = sync->reduce_grads(sync->ctx, t->group[0].grads, t->group[0].count, err);
        timer_stop(TIMER_ALLREDUCE);
        if (rc)
            return -1;
    }
    for (int g = 0; g < t->n_groups; g++) {
        struct trainer_group *gr = &t->group[g];
        sumsq += optim_grad_sumsq(gr->grads, gr->segs, gr->nseg);
    }
    if (sync && sync->reduce_sumsq && sync->reduce_sumsq(sync->ctx, &sumsq, err))
        return -1;
    const double norm = sqrt(sumsq);
    if (!isfinite(norm))
        return 1;
    const float scale = (float)optim_grad_clip_coef(norm, t->st->grad_clip);
    for (int g = 0; g < t->n_groups; g++) {
        struct trainer_group *gr = &t->group[g];
        optim_step(&gr->opt, gr->params, gr->grads, lr, scale);
    }
    return 0;
}

int trainer_run(struct trainer *t, struct kd_err *err)
{
    const struct stage_cfg *st = t->st;
    const int64_t per_epoch = steps_per_epoch(t);
    const int64_t total = t->total_steps;
    const int nterms = t->n_terms;
    struct lr_schedule sched = {st->decay == LR_DECAY_COSINE     ? LR_SCHEDULE_COSINE
                                : st->decay == LR_DECAY_CONSTANT ? LR_SCHEDULE_CONSTANT
                                                                 : LR_SCHEDULE_LINEAR,
                                st->lr, 0.0,
                                lr_schedule_warmup_from_fraction(st->warmup, total), total};
    const int64_t mb_cap = trainer_max_micro_rows(t->job, st, t->n_shards);
    struct batch_rows br;
    struct batch_plan plan;
    if (batch_plan_init(&plan, st, t->train, (uint64_t)t->job->job.seed, t->n_shards)) {
        kd_errf(err, "out of memory for the training batches");
        return KD_EXIT_RUNTIME;
    }
    if (batch_rows_alloc(&br, mb_cap, t->train->max_seq_len)) {
        batch_plan_free(&plan);
        kd_errf(err, "out of memory for the training batches");
        return KD_EXIT_RUNTIME;
    }
    const int64_t eval_every = st->eval_every > 0 ? st->eval_every : per_epoch;
    char what[160];
    snprintf(what, sizeof what, "stage \"%s\"", st->name);
    struct progress prog;
    progress_begin(&prog, what, "steps", total, 10.0);
    int rc = KD_EXIT_OK;
    /* KD_INTERRUPT_AFTER_STEP=N acts as a signal after step N of every
     * training stage: how the tests interrupt a run at an exact step */
    const char *ia = getenv("KD_INTERRUPT_AFTER_STEP");
    const int64_t stop_after = ia && t->start_step == 0 ? strtoll(ia, NULL, 10) : -1;
    /* training curves: rank 0 appends one row per step to
     * <output_dir>/curves/<stage>.csv (continued on resume) */
    struct curve_log curves = {0};
    int have_curves = 0;
    if (t->comm->rank == 0) {
        char rel[300], e[512];
        snprintf(rel, sizeof rel, "curves/%s.csv", st->name);
        char *dir = fs_path_join(t->job->job.output_dir, "curves");
        char *path = fs_path_join(t->job->job.output_dir, rel);
        struct kd_err cerr = {0};
        if (fs_mkdir_p(dir, e, sizeof e))
            log_warn("%s: no training curves: %s", what, e);
        else if (curve_log_open(&curves, path, t->term_names, nterms,
                                t->train->targets ? "pearson" : "accuracy",
                                t->start_step > 0 ? t->start_step : CURVE_LOG_FRESH, 50,
                                &cerr))
            log_warn("%s: no training curves: %s", what, cerr.msg);
        else
            have_curves = 1;
        free(dir), free(path);
    }
    double t0 = wall_seconds(), examples = 0.0;
    double loss_prev = NAN;
    for (int64_t step = t->start_step; step < total; step++) {
        batch_plan_step(&plan, step);
        if (t->hooks.begin_step)
            t->hooks.begin_step(t->hooks.ctx, step, total, loss_prev);
        const int64_t b = plan.b;
        const int64_t n_micro = batch_plan_micro_count(&plan, step, t->shard);
        for (int g = 0; g < t->n_groups; g++)
            optim_grad_zero(t->group[g].grads, t->group[g].count);
        double sums[1 + TRAINER_MAX_TERMS] = {0};
        timer_start(TIMER_COMPUTE);
        for (int64_t j = 0; j < n_micro; j++) {
            const int64_t *mrows;
            int64_t n;
            uint64_t first;
            batch_plan_micro(&plan, t->shard, j, &mrows, &n, &first);
            batch_rows_gather(&br, t->train, mrows, n);
            sums[0] += t->hooks.micro_step(t->hooks.ctx, &br, first, step, 1.0 / (double)b,
                                           j + 1 == n_micro, sums + 1);
        }
        timer_stop(TIMER_COMPUTE);
        double global[1 + TRAINER_MAX_TERMS];
        MPI_CHECK(MPI_Allreduce(sums, global, 1 + nterms, MPI_DOUBLE, MPI_SUM, t->loss_comm));
        const double lr = lr_schedule_at(&sched, t->group[0].opt.step);
        timer_start(TIMER_COMPUTE);
        int u = update(t, lr, err);
        timer_stop(TIMER_COMPUTE);
        if (u < 0) {
            rc = KD_EXIT_RUNTIME;
            break;
        }
        if (u > 0) {
            t->skipped_steps++;
            log_warn0("%s: step %lld has a non-finite gradient norm; update skipped", what,
                      (long long)step + 1);
        }
        examples += (double)b;
        t->last_loss = loss_prev = global[0];
        for (int k = 0; k < nterms; k++)
            t->last_terms[k] = global[1 + k];
        t->steps_done = step + 1;
        double metric = NAN;
        if (t->hooks.evaluate && ((step + 1) % eval_every == 0 || step + 1 == total)) {
            metric = t->last_metric = t->hooks.evaluate(t->hooks.ctx);
            log_info0("%s: step %lld/%lld, epoch %.2f: loss %.4f, dev %.4f", what,
                      (long long)step + 1, (long long)total,
                      (double)(step + 1) / (double)per_epoch, global[0], metric);
        }
        if (have_curves) {
            struct curve_row row = {.step = step + 1,
                                    .epoch = (double)(step + 1) / (double)per_epoch,
                                    .lr = lr, .terms = global + 1, .total = global[0],
                                    .has_dev = !isnan(metric), .dev = metric};
            struct kd_err cerr;
            if (curve_log_append(&curves, &row, &cerr)) {
                log_warn("%s: training curves: %s", what, cerr.msg);
                curve_log_close(&curves, &cerr);
                have_curves = 0;
            }
        }
        if (t->hooks.after_step)
            t->hooks.after_step(t->hooks.ctx, step + 1, (double)(step + 1) / (double)per_epoch,
                                lr, global[0], global + 1, metric);
        char extra[96];
        snprintf(extra, sizeof extra, "loss %.4f, lr %.2e", global[0], lr);
        progress_update(&prog, step + 1, extra);
        const int interrupted =
            comm_agree_max(t->comm, signals_interrupted() || step + 1 == stop_after ? 1 : 0);
        const int64_t every = t->job->job.checkpoint_every;
        if (t->ckpt_path && step + 1 < total &&
            (interrupted || (every > 0 && (step + 1) % every == 0))) {
            timer_start(TIMER_IO);
            int c = save_state(t, step + 1, err);
            timer_stop(TIMER_IO);
            if (c) {
                rc = KD_EXIT_RUNTIME;
                break;
            }
        }
        if (interrupted) {
            log_warn0("%s: interrupted after step %lld of %lld; --resume continues from "
                      "there", what, (long long)step + 1, (long long)total);
            rc = KD_EXIT_INTERRUPTED;
            break;
        }
    }
    if (have_curves) {
        struct kd_err cerr;
        if (curve_log_close(&curves, &cerr))
            log_warn("%s: training curves: %s", what, cerr.msg);
    }
    const double secs = wall_seconds() - t0;
    t->examples_per_s = secs > 0 ? examples / secs : 0.0;
    batch_rows_free(&br);
    batch_plan_free(&plan);
    return rc;
}
