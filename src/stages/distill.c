/* distill.c: the distill stage. Offline (the default), the student trains
 * data-parallel on all ranks against the teacher store written by the
 * extract stage; online (stages/online.h), the last teacher_ranks ranks run
 * the teacher as pipelines and stream its outputs to the student ranks,
 * and no store is used. Either way the student trains with the stage's
 * loss terms (kd/loss_set.h) under the stage's method (all layers, PID or
 * SID: kd/schedule.h). A stage whose only loss is `hard` trains the same
 * student without distillation (the baseline the evaluate stage compares
 * against); it needs no teacher. The student is saved to
 * <output_dir>/students/<stage>.
 *
 * Online, a failure on a student rank after the teacher ranks started
 * ends the job (kd_die): they would otherwise wait for grants forever. */
#include "kd/job/stage.h"
#include "kd/cli/exit_codes.h"
#include "kd/core/fsutil.h"
#include "kd/core/log.h"
#include "kd/kd/loss_set.h"
#include "kd/parallel/timer_report.h"
#include "kd/stages/dev_eval.h"
#include "kd/stages/extract_common.h"
#include "kd/stages/grad_sync.h"
#include "kd/stages/online.h"
#include "kd/stages/projection_fit.h"
#include "kd/stages/stage_data.h"
#include "kd/stages/stage_model.h"
#include "kd/stages/stage_models.h"
#include "kd/stages/student_setup.h"
#include "kd/stages/teacher_reader.h"
#include "kd/stages/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct distill {
    const struct stage_cfg *st;
    struct bert_model m;
    struct kd_loss_set set;
    struct kd_sched sched;
    struct kd_active active;
    struct teacher_reader teacher;
    int have_teacher;
    struct online_student *online; /* online mode: the teacher's stream */
    int64_t micro;                 /* micro-batch of the current step */
    struct dev_eval dev;
    struct grad_sync gs;
    int64_t total_steps, global_batch;
    int failed;
    struct kd_err err;
};

static void begin_step(void *vctx, int64_t step, int64_t total, double last_loss)
{
    struct distill *d = vctx;
    d->micro = 0;
    if (d->online)
        online_student_begin(d->online, step);
    const int before = d->sched.phase;
    const int phase = kd_sched_update(&d->sched, step, last_loss);
    kd_sched_active(&d->active, d->st->method, phase, d->set.n_mapped, d->set.mapped);
    if (phase != before && d->st->method != DISTILL_METHOD_ALL)
        log_info0("stage \"%s\": step %lld/%lld: %s phase %d of %d (%s)", d->st->name,
                  (long long)step + 1, (long long)total,
                  d->st->method == DISTILL_METHOD_PID ? "PID" : "SID", phase + 1,
                  kd_sched_phases(d->st->method, d->set.n_mapped),
                  phase == d->set.n_mapped ? "output terms" : "internal terms");
}

/* The PID/SID state a threshold schedule needs to resume exactly. */
static void state_ints(void *vctx, struct train_state_int *v, size_t *n, int restore)
{
    struct distill *d = vctx;
    if (restore) {
        for (size_t i = 0; i < *n; i++)
            if (strcmp(v[i].name, "sched_phase") == 0)
                d->sched.phase = (int)v[i].value;
            else if (strcmp(v[i].name, "sched_phase_start") == 0)
                d->sched.phase_start = v[i].value;
        return;
    }
    v[0] = (struct train_state_int){"sched_phase", d->sched.phase};
    v[1] = (struct train_state_int){"sched_phase_start", d->sched.phase_start};
    *n = 2;
}

static double micro_step(void *vctx, const struct batch_rows *b, uint64_t first, int64_t step,
                         double row_weight, int last, double *terms)
{
    struct distill *d = vctx;
    struct kd_teacher_view tv;
    if (d->online) {
        if (online_student_view(d->online, step, d->micro++, b, &tv, &d->err))
            kd_die(1, "stage \"%s\": %s", d->st->name, d->err.msg);
    } else if (d->have_teacher) {
        if (teacher_reader_batch(&d->teacher, b, &tv, &d->err))
            kd_die(1, "stage \"%s\": %s", d->st->name, d->err.msg);
    } else {
        memset(&tv, 0, sizeof tv);
        tv.B = b->n, tv.T = b->t, tv.attention_mask = b->mask, tv.labels = b->labels;
        tv.labels_f32 = b->targets;
    }
    struct bert_batch batch = batch_rows_view(b, 1, first, (uint64_t)step);
    bert_forward(&d->m, &batch);
    struct kd_student_view sv;
    kd_student_view_from_bert(&sv, &d->m);
    const double norm = 1.0 / row_weight; /* the global batch */
    struct kd_step ks = {.step = step, .total_steps = d->total_steps, .active = &d->active,
                         .norm_examples = norm, .norm_labelled = norm};
    struct kd_values vals;
    struct bert_grad_in gin;
    memset(&gin, 0, sizeof gin);
    const double total = kd_loss_set_compute(&d->set, &sv, &tv, &ks, &vals, &gin);
    grad_sync_attach(&d->gs, &gin, last);
    bert_backward(&d->m, &gin);
    for (int i = 0; i < d->set.n; i++)
        terms[i] += vals.term[i];
    return total;
}

static double evaluate(void *vctx)
{
    struct distill *d = vctx;
    return dev_eval_metric(&d->dev);
}

/* Only hard terms: no teacher needed. */
static int needs_teacher(const struct stage_cfg *st)
{
    for (int i = 0; i < st->n_losses; i++)
        if (st->losses[i].kind != LOSS_KIND_HARD)
            return 1;
    return 0;
}

static int open_teacher(struct distill *d, const struct stage_ctx *ctx, struct stage_data *sd,
                        const struct kd_needs *needs)
{
    const struct job *job = ctx->job;
    char *path = stage_out_path(job, "teacher.h5");
    char *tdir = stage_teacher_dir(job, ctx->index);
    char tsha[65] = "", vsha[65] = "", dsha[65] = "";
    struct store_expect ex = {0};
    int rc = -1;
    if (tdir && extract_teacher_sha256(tdir, tsha, &d->err) == 0)
        ex.teacher_sha256 = tsha;
    if (fs_file_sha256(sd->vocab_path, vsha, &d->err) == 0)
        ex.vocab_sha256 = vsha;
    if (stage_dataset_sha256(&sd->split[DATASET_SPLIT_TRAIN], dsha, &d->err) == 0)
        ex.data_sha256 = dsha;
    rc = teacher_reader_open(&d->teacher, path, &ex, needs, d->m.opts.B, job->data.max_seq_len,
                             ctx->stage->name, &d->err);
    free(path), free(tdir);
    if (comm_agree_max(ctx->comm, rc ? 1 : 0)) {
        if (!rc) {
            teacher_reader_close(&d->teacher);
            kd_errf(&d->err, "another rank could not open the teacher store");
        }
        return -1;
    }
    d->have_teacher = 1;
    return 0;
}

/* Logs (rank 0) each layer-wise term's resolved map and projections, e.g.
 * "losses.[2] (hidden, line 41) maps student -> teacher layers 1 -> 2,
 * 2 -> 4 through learned 128 -> 384 projections", so a run's log says
 * what was compared with what. */
static void log_maps(const struct stage_cfg *st, const struct kd_loss_set *set)
{
    for (int i = 0; i < set->n; i++) {
        const struct kd_term *t = &set->term[i];
        if (!t->ops->uses_map || t->map.n == 0)
            continue;
        char where[96], pairs[512] = "";
        size_t used = 0;
        for (int k = 0; k < t->map.n && used < sizeof pairs; k++)
            used += (size_t)snprintf(pairs + used, sizeof pairs - used, "%s%d -> %d",
                                     k ? ", " : "", (int)t->map.pair[k].student,
                                     (int)t->map.pair[k].teacher);
        kd_loss_where(where, sizeof where, t->index, &t->cfg);
        const long long Cs = (long long)set->dims.student.hidden_size;
        const long long Ct = (long long)set->dims.teacher.hidden;
        char proj[80] = "";
        if (t->n_tensors)
            snprintf(proj, sizeof proj, " through learned %lld -> %lld projections", Cs, Ct);
        log_info0("stage \"%s\": %s maps student -> teacher layers %s%s", st->name, where,
                  pairs, proj);
    }
}

/* What both roles know before they split. */
struct distill_setup {
    struct stage_data sd;
    const struct dataset *dev;
    struct bert_config tcfg, scfg;
    struct kd_needs needs;
    char *tdir;
    const struct online_layout *ol; /* online mode, else NULL */
    MPI_Comm oc;                    /* online mode: the stream's communicator */
};

/* A student-side failure: logged, and fatal to the job when teacher ranks
 * are waiting (see the file comment). */
static void student_failed(const struct distill *d, const struct distill_setup *su,
                           const char *what)
{
    if (su->ol)
        kd_die(KD_EXIT_RUNTIME, "stage \"%s\": %s%s", d->st->name, what, d->err.msg);
    log_error("stage \"%s\": %s%s", d->st->name, what, d->err.msg);
}

/* The student's side on the ranks of c (all ranks offline; the student
 * ranks online). */
static int run_student(const struct stage_ctx *ctx, const struct comm *c,
                       struct distill_setup *su)
{
    const struct job *job = ctx->job;
    const struct stage_cfg *st = ctx->stage;
    struct distill *d = calloc(1, sizeof *d);
    struct online_student os;
    struct optim_segment *segs = NULL;
    float *pm = NULL, *pv = NULL;
    int rc = KD_EXIT_RUNTIME;
    d->st = st;
    struct bert_config scfg = su->scfg;
    const struct bert_config *tcfg = &su->tcfg;
    const struct dataset *train = &su->sd.split[DATASET_SPLIT_TRAIN];
    const char *init = job->student.checkpoint[0] ? job->student.checkpoint : NULL;
    struct bert_opts o = {.B = trainer_max_micro_rows(job, st, c->size),
                          .T = job->data.max_seq_len, .heads = BERT_HEAD_CLASSIFIER,
                          .backward = 1, .param_grads = 1, .optimizer = 1,
                          .seed = (uint64_t)job->job.seed};
    if (stage_model_open(&d->m, &scfg, &o, init, (uint64_t)job->job.seed, &d->err)) {
        student_failed(d, su, "student: ");
        goto out;
    }
    if (!init && student_setup(&d->m, job, su->tdir, train, c, &d->err)) {
        student_failed(d, su, "");
        goto out_model;
    }
    if (!su->ol && needs_teacher(st) && open_teacher(d, ctx, &su->sd, &su->needs)) {
        student_failed(d, su, "");
        goto out_model;
    }
    const struct kd_teacher_dims td = {tcfg->num_hidden_layers, tcfg->hidden_size,
                                       tcfg->num_attention_heads, tcfg->num_labels};
    if (kd_loss_set_init(&d->set, st->losses, st->n_losses, NULL, &scfg, &td, o.B, o.T,
                         (uint64_t)job->job.seed, &d->err)) {
        student_failed(d, su, "");
        goto out_teacher;
    }
    log_maps(st, &d->set);
    if (job->student.init_projections == PROJECTION_INIT_LSTSQ) {
        const struct projection_fit_opts po = {.batch = o.B, .ridge = -1};
        if (!d->have_teacher) {
            log_warn0("stage \"%s\": student.init_projections = \"lstsq\" needs the teacher "
                      "store (offline mode); the projections start random", st->name);
        } else if (projection_fit(&d->set, &d->m, train, c, projection_fit_teacher_reader,
                                  &d->teacher, &po, NULL, &d->err)) {
            student_failed(d, su, "");
            kd_loss_set_free(&d->set);
            goto out_teacher;
        }
    }
    segs = bert_optim_segments(&d->m);
    if (grad_sync_init(&d->gs, c, &d->m, &d->err)) {
        student_failed(d, su, "");
        kd_loss_set_free(&d->set);
        goto out_teacher;
    }
    dev_eval_init(&d->dev, &d->m, su->dev, c);
    struct trainer tr = {
        .job = job, .st = st, .comm = c, .train = train,
        .shard = c->rank, .n_shards = c->size, .loss_comm = c->world, .n_groups = 1,
        .sync = grad_sync_hooks(&d->gs), .n_terms = d->set.n,
        .hooks = {.micro_step = micro_step, .begin_step = begin_step,
                  .state_ints = state_ints,
                  .evaluate = su->dev ? evaluate : NULL, .ctx = d}};
    for (int i = 0; i < d->set.n && i < TRAINER_MAX_TERMS; i++)
        tr.term_names[i] = loss_kind_name(st->losses[i].kind);
    tr.group[0] = (struct trainer_group){.name = "student",
                                         .params = (float *)(void *)d->m.params_arena.base,
                                         .grads = (float *)(void *)d->m.grads_arena.base,
                                         .m = d->m.adam_m, .v = d->m.adam_v,
                                         .count = d->m.ptab.floats, .segs = segs,
                                         .nseg = (size_t)d->m.ptab.n};
    float *pp, *pg;
    size_t pcount, pnseg;
    const struct optim_segment *psegs;
    kd_loss_set_params(&d->set, &pp, &pg, &pcount, &psegs, &pnseg);
    if (pp && pcount) {
        pm = calloc(pcount, sizeof *pm), pv = calloc(pcount, sizeof *pv);
        tr.group[tr.n_groups++] = (struct trainer_group){
            .name = "projections", .params = pp, .grads = pg, .m = pm, .v = pv,
            .count = pcount, .segs = (struct optim_segment *)psegs, .nseg = pnseg};
        if (grad_sync_add_block(&d->gs, pg, pcount, "loss projections", &d->err))
            kd_die(1, "stage \"%s\": %s", st->name, d->err.msg);
    }
    log_info0("stage \"%s\": student %lld layers, hidden %lld, %lld heads, FFN %lld "
              "(%.2fM parameters%s), teacher %lld layers / hidden %lld, %d loss term%s, "
              "method %s, %d data-parallel replica%s", st->name,
              (long long)scfg.num_hidden_layers, (long long)scfg.hidden_size,
              (long long)scfg.num_attention_heads, (long long)scfg.intermediate_size,
              (double)d->m.ptab.floats / 1e6, init ? ", from student.checkpoint" : "",
              (long long)tcfg->num_hidden_layers, (long long)tcfg->hidden_size, d->set.n,
              d->set.n == 1 ? "" : "s",
              st->method == DISTILL_METHOD_PID   ? "PID"
              : st->method == DISTILL_METHOD_SID ? "SID"
                                                 : "all",
              c->size, c->size == 1 ? "" : "s");
    timers_reset();
    const double t0 = wall_seconds();
    if (trainer_init(&tr, &d->err) ||
        kd_sched_init(&d->sched, st->method, d->set.n_mapped > 0 ? d->set.n_mapped : 1,
                      tr.total_steps, st->switch_threshold, &d->err) ||
        trainer_checkpoints(&tr, ctx, -1, c->rank == 0, &d->err)) {
        student_failed(d, su, "");
    } else {
        d->total_steps = tr.total_steps;
        if (su->ol) {
            struct online_dims dims;
            online_dims_of(&dims, &su->needs, tcfg, o.B, o.T);
            if (online_student_open(&os, su->oc, su->ol, &dims, st, train,
                                    (uint64_t)job->job.seed, ONLINE_DEFAULT_DEPTH, &d->err))
                student_failed(d, su, "");
            d->online = &os;
            log_info0("stage \"%s\": online: %d teacher pipeline%s of %d stage%s feed %d "
                      "student rank%s, at most %d steps in flight (%.2f MB per message at most)",
                      st->name, su->ol->R, su->ol->R == 1 ? "" : "s", su->ol->S,
                      su->ol->S == 1 ? "" : "s", su->ol->students,
                      su->ol->students == 1 ? "" : "s", os.depth,
                      (double)os.slot_floats * 4e-6);
        }
        rc = trainer_run(&tr, &d->err);
        if (d->online)
            online_student_close(d->online);
        if (rc == KD_EXIT_RUNTIME)
            student_failed(d, su, "");
    }
    timers_report(c, st->name, wall_seconds() - t0, NULL);
    if (rc == KD_EXIT_OK) {
        char *dir = stage_student_dir(job, ctx->index);
        if (stage_model_save(&d->m, dir, su->sd.vocab_path, &train->map, c, &d->err)) {
            log_error("stage \"%s\": %s", st->name, d->err.msg);
            rc = KD_EXIT_RUNTIME;
        } else {
            log_info0("stage \"%s\": student saved to %s (dev %.4f after %lld steps)",
                      st->name, dir, tr.last_metric, (long long)tr.steps_done);
        }
        free(dir);
    }
    if (rc == KD_EXIT_OK)
        trainer_checkpoints_done(&tr);
    else
        free(tr.ckpt_path);
    dev_eval_free(&d->dev);
    grad_sync_free(&d->gs);
    kd_loss_set_free(&d->set);
out_teacher:
    if (d->have_teacher)
        teacher_reader_close(&d->teacher);
out_model:
    bert_free(&d->m);
out:
    free(segs), free(pm), free(pv);
    free(d);
    return rc;
}

/* Online mode: splits the ranks (stages/online.h); teacher ranks serve the
 * student ranks until they stop. */
static int run_online(const struct stage_ctx *ctx, struct distill_setup *su)
{
    const struct job *job = ctx->job;
    const struct stage_cfg *st = ctx->stage;
    const struct comm *c = ctx->comm;
    struct online_layout ol;
    struct kd_err err = {0};
    if (online_layout_plan(&ol, c->size, (int)st->teacher_ranks,
                           (int)job->teacher.pipeline_stages, &err)) {
        log_error("stage \"%s\": %s", st->name, err.msg);
        return KD_EXIT_RUNTIME;
    }
    const int teacher = online_is_teacher(&ol, c->rank);
    MPI_Comm split;
    MPI_CHECK(MPI_Comm_dup(c->world, &su->oc));
    MPI_CHECK(MPI_Comm_split(c->world, teacher, c->rank, &split));
    struct comm role;
    comm_sub(&role, split);
    MPI_Comm_free(&split);
    su->ol = &ol;
    int rc;
    if (teacher) {
        struct online_dims dims;
        online_dims_of(&dims, &su->needs, &su->tcfg,
                       trainer_max_micro_rows(job, st, ol.students), job->data.max_seq_len);
        timers_reset();
        const double t0 = wall_seconds();
        rc = online_teacher_run(ctx, su->oc, &role, &ol, &dims, &su->tcfg, su->tdir,
                                &su->sd.split[DATASET_SPLIT_TRAIN]);
        char what[300];
        snprintf(what, sizeof what, "%s (online teacher ranks)", st->name);
        timers_report(&role, what, wall_seconds() - t0, NULL);
    } else {
        rc = run_student(ctx, &role, su);
    }
    /* the students' outcome (e.g. an interrupt) is the stage's on every rank */
    MPI_CHECK(MPI_Bcast(&rc, 1, MPI_INT, 0, c->world));
    comm_sub_free(&role);
    MPI_Comm_free(&su->oc);
    return rc;
}

static int run(const struct stage_ctx *ctx)
{
    const struct job *job = ctx->job;
    const struct stage_cfg *st = ctx->stage;
    const struct comm *c = ctx->comm;
    struct distill_setup su = {.ol = NULL};
    struct kd_err err = {0};
    int rc = KD_EXIT_RUNTIME;
    if (stage_data_open(&su.sd, job, c, &err)) {
        log_error("stage \"%s\": %s", st->name, err.msg);
        return KD_EXIT_RUNTIME;
    }
    su.dev = job->data.task == DATA_TASK_TSV && !job->data.dev[0]
                 ? NULL
                 : stage_data_split(&su.sd, job, c, DATASET_SPLIT_DEV, &err);
    /* the teacher's shape: its directory's config when there is one */
    su.tdir = stage_teacher_dir(job, ctx->index);
    if (stage_teacher_config(job, su.tdir, tokenizer_vocab_size(su.sd.tok), su.sd.num_labels,
                             &su.tcfg, &err) ||
        stage_student_config(job, &su.tcfg, &su.scfg, &err) ||
        kd_needs_of(&su.needs, st->losses, st->n_losses,
                    su.scfg.num_hidden_layers,
                    su.tcfg.num_hidden_layers, &err)) {
        log_error("stage \"%s\": %s", st->name, err.msg);
        goto out;
    }
    if (st->dropout >= 0)
        su.scfg.hidden_dropout_prob = su.scfg.attention_probs_dropout_prob = st->dropout;
    rc = st->mode == DISTILL_MODE_ONLINE ? run_online(ctx, &su) : run_student(ctx, c, &su);
out:
    free(su.tdir);
    stage_data_close(&su.sd);
    return rc;
}

static int files(const struct stage_ctx *ctx, struct stage_files *in, struct stage_files *out,
                 struct kd_err *err)
{
    const struct job *job = ctx->job;
    stage_data_inputs(job, in);
    if (needs_teacher(ctx->stage) && ctx->stage->mode != DISTILL_MODE_ONLINE)
        stage_files_add(in, "teacher.h5");
    /* the teacher's config sets the student's vocabulary and labels */
    if (stage_teacher_inputs(job, ctx->index, in, err))
        return -1;
    if (job->student.checkpoint[0] &&
        stage_files_add_user_dir(in, job->student.checkpoint, err))
        return -1;
    char rel[300];
    snprintf(rel, sizeof rel, "students/%s", ctx->stage->name);
    stage_hf_files(out, rel);
    return 0;
}

const struct stage_impl stage_distill = {.kind = STAGE_KIND_DISTILL, .run = run,
                                         .files = files};
