/* stage.c: the stage registry and the runner (job layer). The rules the
 * runner applies are in docs/runner.md; the manifest is manifest.c.
 *
 * Every decision is taken on rank 0, which alone reads the manifest and
 * probes files, and is broadcast as one fixed-size record, so all ranks
 * run the same stages with the same flags and leave through the same exit
 * code. The manifest is rewritten when a stage starts (status "running":
 * a crash never leaves an old "finished" entry next to half-replaced
 * outputs) and when it ends. */
#include "config.h"
#include "kd/job/stage.h"
#include "kd/cli/exit_codes.h"
#include "kd/core/atomic_file.h"
#include "kd/core/log.h"
#include "kd/core/signals.h"
#include "kd/job/manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One line per implemented stage kind, e.g. `&stage_extract,`. */
static const struct stage_impl *const registry[] = {
    &stage_finetune,
    &stage_extract,
    &stage_distill,
    &stage_evaluate,
    &stage_export,
};

enum action { ACT_RUN, ACT_SKIP, ACT_UNAVAILABLE, ACT_NOT_SELECTED, ACT_ERROR };

/* Rank 0's decision for one stage, broadcast as bytes. */
struct decision {
    int action;
    int resume;
    int rc;                                /* ACT_ERROR: the exit code */
    char fingerprint[FS_SHA256_HEX_LEN];
    char why[512];
    char msg[KD_ERR_MSG_MAX];              /* ACT_ERROR: the message */
};

/* What rank 0 keeps between deciding and recording a stage. */
struct pending {
    char *config;
    struct manifest_file *inputs;
    int n_inputs;
    struct stage_files outputs;
};

struct runner {
    const struct job *job;
    const struct job_plan *plan;
    const struct comm *comm;
    const struct stage_run_args *args;
    const struct stage_impl *const *reg;
    size_t n_reg;
    char *manifest_path;
    struct manifest man; /* rank 0 */
};

static const struct stage_impl *find_impl(const struct runner *r, int kind)
{
    for (size_t i = 0; i < r->n_reg; i++)
        if (r->reg[i] && r->reg[i]->kind == kind)
            return r->reg[i];
    return NULL;
}

static struct stage_ctx make_ctx(const struct runner *r, int i, int resume, const char *fp)
{
    struct stage_ctx c = {
        .job = r->job, .plan = r->plan, .comm = r->comm, .stage = &r->job->stages[i],
        .resume = resume, .force = r->args->force, .output_dir = r->job->job.output_dir,
        .index = i, .fingerprint = fp};
    return c;
}

/* Rank 0's status and message become every rank's. */
static int share0(const struct comm *c, int rc, struct kd_err *err)
{
    struct {
        int rc;
        char msg[KD_ERR_MSG_MAX];
    } s = {rc, ""};
    if (c->rank == 0 && rc)
        memcpy(s.msg, err->msg, sizeof s.msg);
    comm_bcast_bytes(c, &s, sizeof s, 0);
    if (s.rc)
        memcpy(err->msg, s.msg, sizeof s.msg);
    return s.rc;
}

static void pending_free(struct pending *p)
{
    free(p->config);
    manifest_files_free(p->inputs, p->n_inputs);
    stage_files_free(&p->outputs);
    memset(p, 0, sizeof *p);
}

/* ---- rank 0: looking at files ------------------------------------------ */

/* The recorded output of any finished stage with this name, so inputs that
 * are products of earlier stages need not be hashed again. */
static const struct manifest_file *recorded_output(const struct manifest *m,
                                                   const struct manifest_file *f)
{
    for (int i = 0; i < m->n; i++) {
        const struct manifest_entry *e = &m->entries[i];
        if (e->status != MANIFEST_STATUS_FINISHED)
            continue;
        for (int k = 0; k < e->n_outputs; k++)
            if (e->outputs[k].user == f->user && strcmp(e->outputs[k].name, f->name) == 0)
                return &e->outputs[k];
    }
    return NULL;
}

/* The stage (other than `self`) that declares f as an output, or -1. */
static int producer_of(const struct runner *r, int self, const struct stage_file *f)
{
    int found = -1;
    for (int j = 0; j < r->job->n_stages && found < 0; j++) {
        const struct stage_impl *impl = find_impl(r, r->job->stages[j].kind);
        if (j == self || !impl || !impl->files)
            continue;
        struct stage_files in = {0}, out = {0};
        struct kd_err ignored;
        struct stage_ctx c = make_ctx(r, j, 0, "");
        if (impl->files(&c, &in, &out, &ignored) == 0)
            for (int k = 0; k < out.n; k++)
                if (out.v[k].user == f->user && strcmp(out.v[k].name, f->name) == 0)
                    found = j;
        stage_files_free(&in);
        stage_files_free(&out);
    }
    return found;
}

/* Fills d with the refusal for a missing input. */
static void refuse_missing(const struct runner *r, int i, const struct stage_file *f,
                           struct decision *d)
{
    const struct stage_cfg *st = &r->job->stages[i];
    char where[1024]; /* the message holds it twice at most */
    if (f->user)
        snprintf(where, sizeof where, "%s", f->name);
    else
        snprintf(where, sizeof where, "%s (in %s)", f->name, r->job->job.output_dir);
    int p = producer_of(r, i, f);
    d->action = ACT_ERROR;
    d->rc = KD_EXIT_CONFIG;
    if (p < 0)
        snprintf(d->msg, sizeof d->msg, "stage \"%s\": input %s does not exist%s", st->name,
                 where, f->user ? "" : " and no stage of this job writes it");
    else if (r->args->only)
        snprintf(d->msg, sizeof d->msg,
                 "stage \"%s\" cannot run on its own: its input %s does not exist yet; it is "
                 "written by stage \"%s\" (run the whole job, or --stage %s first)", st->name,
                 where, r->job->stages[p].name, r->job->stages[p].name);
    else
        snprintf(d->msg, sizeof d->msg,
                 "stage \"%s\": input %s does not exist; it is written by stage \"%s\"%s",
                 st->name, where, r->job->stages[p].name,
                 find_impl(r, r->job->stages[p].kind) ? ", which did not run"
                                                     : ", which is not available in this build");
}

/* Checks the outputs of a finished entry against the disk. 0: intact;
 * 1: a reason to re-run is in why; -1: error. */
static int outputs_intact(const struct runner *r, const struct manifest_entry *e,
                          const struct stage_files *declared, char *why, size_t len,
                          struct kd_err *err)
{
    for (int k = 0; k < declared->n; k++) {
        struct manifest_file f = {.name = declared->v[k].name, .user = declared->v[k].user};
        const struct manifest_file *rec = NULL;
        for (int j = 0; j < e->n_outputs && !rec; j++)
            if (e->outputs[j].user == f.user && strcmp(e->outputs[j].name, f.name) == 0)
                rec = &e->outputs[j];
        int pr = manifest_file_probe(r->job->job.output_dir, &f, rec, err);
        if (pr < 0)
            return -1;
        if (pr == 1) {
            snprintf(why, len, "its output %s was deleted since it finished; re-running",
                     f.name);
            return 1;
        }
        if (!rec) {
            snprintf(why, len, "its output %s is not in the manifest; re-running", f.name);
            return 1;
        }
        if (strcmp(rec->sha256, f.sha256) != 0) {
            snprintf(why, len, "its output %s changed since it finished (sha256 %.12s... -> "
                     "%.12s...); re-running", f.name, rec->sha256, f.sha256);
            return 1;
        }
    }
    return 0;
}

/* ---- rank 0: the decision ------------------------------------------------ */

static void decide(struct runner *r, int i, struct decision *d, struct pending *p)
{
    const struct stage_cfg *st = &r->job->stages[i];
    const struct stage_run_args *a = r->args;
    struct kd_err err = {""};
    struct stage_files in = {0};
    memset(d, 0, sizeof *d);
    if (a->only && strcmp(a->only, st->name) != 0) {
        d->action = ACT_NOT_SELECTED;
        snprintf(d->why, sizeof d->why, "not selected (--stage %s)", a->only);
        return;
    }
    const struct stage_impl *impl = find_impl(r, st->kind);
    if (!impl) {
        d->action = ACT_UNAVAILABLE;
        snprintf(d->why, sizeof d->why, "this kind of stage is not available in this build "
                 "of kd_hpc; skipped");
        return;
    }
    struct stage_ctx c = make_ctx(r, i, 0, "");
    if (impl->files && impl->files(&c, &in, &p->outputs, &err) < 0) {
        d->action = ACT_ERROR;
        d->rc = KD_EXIT_CONFIG;
        snprintf(d->msg, sizeof d->msg, "stage \"%s\": %s", st->name, err.msg);
        goto done;
    }
    /* inputs: exist, and their digests */
    p->inputs = in.n ? kd_calloc((size_t)in.n, sizeof *p->inputs) : NULL;
    for (int k = 0; k < in.n; k++) {
        struct manifest_file *f = &p->inputs[k];
        f->name = kd_strdup(in.v[k].name);
        f->user = in.v[k].user;
        p->n_inputs = k + 1;
        int pr = manifest_file_probe(r->job->job.output_dir, f,
                                     f->user ? NULL : recorded_output(&r->man, f), &err);
        if (pr == 1) {
            refuse_missing(r, i, &in.v[k], d);
            goto done;
        }
        if (pr < 0) {
            d->action = ACT_ERROR;
            d->rc = KD_EXIT_RUNTIME;
            snprintf(d->msg, sizeof d->msg, "stage \"%s\": %s", st->name, err.msg);
            goto done;
        }
    }
    p->config = manifest_stage_config(r->job, st, impl->job_keys);
    if (impl->config_extra) {
        char *extra = impl->config_extra(r->job, i);
        if (extra && extra[0]) {
            const size_t n_cfg = strlen(p->config), n_extra = strlen(extra);
            p->config = kd_realloc(p->config, n_cfg + n_extra + 1);
            memcpy(p->config + n_cfg, extra, n_extra + 1);
        }
        free(extra);
    }
    if (manifest_fingerprint(stage_kind_name(st->kind), p->config, p->inputs, p->n_inputs,
                             d->fingerprint, &err) < 0) {
        d->action = ACT_ERROR;
        d->rc = KD_EXIT_RUNTIME;
        snprintf(d->msg, sizeof d->msg, "stage \"%s\": %s", st->name, err.msg);
        goto done;
    }
    const struct manifest_entry *e = manifest_find(&r->man, st->name);
    int same = e && strcmp(e->fingerprint, d->fingerprint) == 0;
    int unfinished = e && e->status != MANIFEST_STATUS_FINISHED;
    d->action = ACT_RUN;
    if (a->force) {
        snprintf(d->why, sizeof d->why, "--force: running again");
    } else if (a->resume && unfinished && same) {
        d->resume = 1;
        snprintf(d->why, sizeof d->why, "resuming the %s run from its checkpoint",
                 manifest_status_name(e->status));
    } else if (a->resume && unfinished) {
        char change[512];
        manifest_explain_change(e, p->config, p->inputs, p->n_inputs, change, sizeof change);
        d->action = ACT_ERROR;
        d->rc = KD_EXIT_CONFIG;
        snprintf(d->msg, sizeof d->msg,
                 "stage \"%s\": --resume cannot continue its %s run: %s since then (its "
                 "checkpoint belongs to the old inputs). HINT: restore them, or run without "
                 "--resume to start the stage over", st->name,
                 manifest_status_name(e->status), change);
    } else if (a->only) {
        snprintf(d->why, sizeof d->why, "--stage %s: running", st->name);
    } else if (!e) {
        snprintf(d->why, sizeof d->why, "not run before");
    } else if (unfinished) {
        snprintf(d->why, sizeof d->why, "its last run is %s; starting over (--resume "
                 "continues from its checkpoint)", manifest_status_name(e->status));
    } else if (!same) {
        char change[480];
        manifest_explain_change(e, p->config, p->inputs, p->n_inputs, change, sizeof change);
        snprintf(d->why, sizeof d->why, "out of date: %s", change);
    } else {
        int ok = outputs_intact(r, e, &p->outputs, d->why, sizeof d->why, &err);
        if (ok < 0) {
            d->action = ACT_ERROR;
            d->rc = KD_EXIT_RUNTIME;
            snprintf(d->msg, sizeof d->msg, "stage \"%s\": %s", st->name, err.msg);
        } else if (ok == 0) {
            d->action = ACT_SKIP;
            snprintf(d->why, sizeof d->why, "up to date (finished %s); skipped", e->finished);
        }
    }
done:
    stage_files_free(&in);
}

/* ---- rank 0: recording ------------------------------------------------------- */

static int save(struct runner *r, struct kd_err *err)
{
    if (manifest_save(&r->man, r->manifest_path, r->job->job.name, err) < 0)
        return kd_err_prefix(err, "cannot update the manifest");
    return 0;
}

static int record_start(struct runner *r, int i, const struct decision *d,
                        const struct pending *p, struct kd_err *err)
{
    const struct stage_cfg *st = &r->job->stages[i];
    struct manifest_entry *e = manifest_put(&r->man, st->name);
    manifest_entry_reset(e);
    e->kind = kd_strdup(stage_kind_name(st->kind));
    e->status = MANIFEST_STATUS_RUNNING;
    memcpy(e->fingerprint, d->fingerprint, sizeof e->fingerprint);
    e->config = kd_strdup(p->config);
    manifest_files_copy(&e->inputs, &e->n_inputs, p->inputs, p->n_inputs);
    manifest_now(e->started);
    e->ranks = r->comm->size;
    e->kd_hpc_version = kd_strdup(PACKAGE_VERSION);
    return save(r, err);
}

/* Status after the run; for a finished stage, every declared output must
 * exist and is hashed now (once: later starts trust size + mtime). */
static int record_end(struct runner *r, int i, int status, double seconds,
                      const struct pending *p, struct kd_err *err)
{
    const struct stage_cfg *st = &r->job->stages[i];
    struct manifest_entry *e = manifest_put(&r->man, st->name);
    e->seconds = seconds;
    e->status = status;
    if (status == MANIFEST_STATUS_FINISHED) {
        struct manifest_file *out =
            p->outputs.n ? kd_calloc((size_t)p->outputs.n, sizeof *out) : NULL;
        int n = 0, bad = 0;
        for (; n < p->outputs.n && !bad; n++) {
            out[n].name = kd_strdup(p->outputs.v[n].name);
            out[n].user = p->outputs.v[n].user;
            int pr = manifest_file_probe(r->job->job.output_dir, &out[n], NULL, err);
            if (pr == 1)
                kd_errf(err, "stage \"%s\" finished but did not write its declared output "
                        "%s", st->name, out[n].name);
            bad = pr != 0;
        }
        if (bad) {
            manifest_files_free(out, n);
            e->status = MANIFEST_STATUS_FAILED;
            struct kd_err ignored;
            save(r, &ignored);
            return -1;
        }
        manifest_files_free(e->outputs, e->n_outputs);
        e->outputs = out;
        e->n_outputs = n;
        manifest_now(e->finished);
    }
    return save(r, err);
}

/* ---- the loop ------------------------------------------------------------------ */

static void set_result(const struct runner *r, int i, int outcome, const struct decision *d)
{
    if (!r->args->results)
        return;
    struct stage_result *res = &r->args->results[i];
    res->outcome = outcome;
    res->resumed = d ? d->resume : 0;
    snprintf(res->why, sizeof res->why, "%s", d ? d->why : "");
}

/* Loads the manifest on rank 0 and shares the verdict. */
static int open_manifest(struct runner *r, struct kd_err *err)
{
    int rc = 0;
    r->manifest_path = fs_path_join(r->job->job.output_dir, MANIFEST_FILE);
    if (r->comm->rank == 0) {
        char msg[1024];
        if (fs_mkdir_p(r->job->job.output_dir, msg, sizeof msg) < 0) {
            kd_errf(err, "%s", msg);
            rc = KD_EXIT_RUNTIME;
        } else if (manifest_load(&r->man, r->manifest_path, err) < 0) {
            if (r->args->force) {
                log_warn0("%s; --force: every stage runs and the manifest is replaced",
                          err->msg);
            } else {
                kd_err_prefix(err, "cannot trust the manifest");
                size_t n = strlen(err->msg);
                snprintf(err->msg + n, sizeof err->msg - n,
                         ". HINT: repair or remove it, or run with --force to re-run every "
                         "stage");
                rc = KD_EXIT_CONFIG;
            }
        }
    }
    return share0(r->comm, rc, err);
}

/* Runs stage i (decision already shared). Returns a kd_exit code. */
static int run_one(struct runner *r, int i, const struct decision *d, struct pending *p,
                   struct kd_err *err)
{
    const struct stage_cfg *st = &r->job->stages[i];
    const struct stage_impl *impl = find_impl(r, st->kind);
    int rc = 0;
    if (r->comm->rank == 0 && record_start(r, i, d, p, err) < 0)
        rc = KD_EXIT_RUNTIME;
    if ((rc = share0(r->comm, rc, err)))
        return rc;
    double t0 = log_elapsed();
    struct stage_ctx c = make_ctx(r, i, d->resume, d->fingerprint);
    rc = comm_agree_max(r->comm, impl->run(&c));
    int signalled = comm_agree_max(r->comm, signals_interrupted() != 0);
    double secs = log_elapsed() - t0;
    int status = rc == KD_EXIT_OK            ? MANIFEST_STATUS_FINISHED
                 : rc == KD_EXIT_INTERRUPTED ? MANIFEST_STATUS_INTERRUPTED
                                             : MANIFEST_STATUS_FAILED;
    int rec = 0;
    if (r->comm->rank == 0 && record_end(r, i, status, secs, p, err) < 0)
        rec = KD_EXIT_RUNTIME;
    if ((rec = share0(r->comm, rec, err))) {
        set_result(r, i, STAGE_OUTCOME_FAILED, d);
        return rec;
    }
    if (rc == KD_EXIT_INTERRUPTED) {
        set_result(r, i, STAGE_OUTCOME_INTERRUPTED, d);
        kd_errf(err, "stage \"%s\" was interrupted after %.1f s; its checkpoint is kept: "
                "continue with --resume", st->name, secs);
        return rc;
    }
    if (rc) {
        set_result(r, i, STAGE_OUTCOME_FAILED, d);
        kd_errf(err, "stage \"%s\" failed (exit code %d)", st->name, rc);
        return rc;
    }
    set_result(r, i, STAGE_OUTCOME_RAN, d);
    log_info0("stage %d/%d \"%s\" (%s): finished in %.1f s", i + 1, r->job->n_stages,
              st->name, stage_kind_name(st->kind), secs);
    if (signalled) {
        kd_errf(err, "interrupted after stage \"%s\" finished (it is recorded); continue "
                "with --resume", st->name);
        return KD_EXIT_INTERRUPTED;
    }
    return KD_EXIT_OK;
}

int stage_runner_run(const struct job *job, const struct job_plan *plan,
                     const struct comm *comm, const struct stage_run_args *args,
                     struct kd_err *err)
{
    struct runner r = {.job = job, .plan = plan, .comm = comm, .args = args,
                       .reg = args->registry ? args->registry : registry,
                       .n_reg = args->registry ? args->n_registry
                                               : sizeof registry / sizeof *registry};
    int counts[STAGE_OUTCOME_NOT_REACHED + 1] = {0};
    int rc = open_manifest(&r, err);
    for (int i = 0; i < job->n_stages && args->results; i++)
        set_result(&r, i, STAGE_OUTCOME_NOT_REACHED, NULL);
    for (int i = 0; i < job->n_stages && rc == KD_EXIT_OK; i++) {
        const struct stage_cfg *st = &job->stages[i];
        struct decision d;
        struct pending p = {0};
        if (comm->rank == 0)
            decide(&r, i, &d, &p);
        comm_bcast_bytes(comm, &d, sizeof d, 0);
        switch (d.action) {
        case ACT_NOT_SELECTED:
            set_result(&r, i, STAGE_OUTCOME_NOT_SELECTED, &d);
            counts[STAGE_OUTCOME_NOT_SELECTED]++;
            break;
        case ACT_UNAVAILABLE:
        case ACT_SKIP:
            log_msg(d.action == ACT_SKIP ? LOG_LEVEL_INFO : LOG_LEVEL_WARN, 1,
                    "stage %d/%d \"%s\" (%s): %s", i + 1, job->n_stages, st->name,
                    stage_kind_name(st->kind), d.why);
            set_result(&r, i, d.action == ACT_SKIP ? STAGE_OUTCOME_UP_TO_DATE
                                                   : STAGE_OUTCOME_UNAVAILABLE, &d);
            counts[d.action == ACT_SKIP ? STAGE_OUTCOME_UP_TO_DATE
                                        : STAGE_OUTCOME_UNAVAILABLE]++;
            break;
        case ACT_ERROR:
            set_result(&r, i, STAGE_OUTCOME_FAILED, &d);
            kd_errf(err, "%s", d.msg);
            rc = d.rc;
            break;
        case ACT_RUN:
            log_info0("stage %d/%d \"%s\" (%s): %s", i + 1, job->n_stages, st->name,
                      stage_kind_name(st->kind), d.why);
            rc = run_one(&r, i, &d, &p, err);
            counts[STAGE_OUTCOME_RAN] += rc == KD_EXIT_OK;
            break;
        }
        pending_free(&p);
    }
    if (rc == KD_EXIT_OK)
        log_info0("job \"%s\": %d stage%s run, %d up to date, %d not available in this build",
                  job->job.name, counts[STAGE_OUTCOME_RAN],
                  counts[STAGE_OUTCOME_RAN] == 1 ? "" : "s", counts[STAGE_OUTCOME_UP_TO_DATE],
                  counts[STAGE_OUTCOME_UNAVAILABLE]);
    manifest_free(&r.man);
    free(r.manifest_path);
    return rc;
}

int stage_run_all(const struct job *job, const struct job_plan *plan, const struct comm *comm,
                  const char *only, int resume, int force)
{
    struct stage_run_args args = {.only = only, .resume = resume, .force = force};
    struct kd_err err = {""};
    int rc = stage_runner_run(job, plan, comm, &args, &err);
    if (rc && comm->rank == 0)
        log_error("%s", err.msg);
    return rc;
}
