/* job_check.c: validation across keys (every key is already well-typed and
 * in range): stage names, required data, model shapes, layer maps, stage
 * order. Checks that need the rank count or the teacher checkpoint happen
 * when the job is planned (plan.c). */
#include "kd/job/job_read.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct check {
    const struct job *job;
    const config_t *cfg;
    struct job_errors *errs;
};

/* "FILE:LINE" of the setting at `path`, or of its nearest existing parent. */
static void loc_of(const struct check *c, const char *path, char *buf, size_t n)
{
    char p[256];
    snprintf(p, sizeof p, "%s", path);
    for (;;) {
        const config_setting_t *s = config_lookup(c->cfg, p);
        if (s) {
            setting_location(s, c->job->path, buf, n);
            return;
        }
        char *dot = strrchr(p, '.');
        if (!dot)
            break;
        *dot = '\0';
    }
    snprintf(buf, n, "%s:1", c->job->path);
}

static void fail(const struct check *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(const struct check *c, const char *path, const char *fmt, ...)
{
    char loc[512], msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    loc_of(c, path, loc, sizeof loc);
    job_errors_add(c->errs, "%s: setting %s: %s", loc, path, msg);
}

static void check_data(const struct check *c)
{
    const struct job *j = c->job;
    if (j->data.task == DATA_TASK_TSV) {
        if (!j->data.train[0])
            fail(c, "data.train", "required for data.task \"tsv\" (a training TSV file)");
        if (!j->data.dev[0])
            fail(c, "data.dev", "required for data.task \"tsv\" (a development TSV file)");
        if (!j->data.vocab[0] && !j->teacher.checkpoint[0])
            fail(c, "data.vocab", "required when teacher.checkpoint is \"\" "
                                  "(no checkpoint vocab.txt to fall back on)");
    }
    if (j->data.problem == DATA_PROBLEM_REGRESSION && j->data.num_labels > 1)
        fail(c, "data.num_labels", "expected 0 or 1 for data.problem \"regression\", got %lld",
             (long long)j->data.num_labels);
}

/* "lstsq" fits the learned projections of hidden losses: there must be one
 * to fit (a hidden loss, between different widths when the teacher's width
 * is known from the job). */
static void check_init_projections(const struct check *c)
{
    const struct job *j = c->job;
    if (j->student.init_projections != PROJECTION_INIT_LSTSQ)
        return;
    int hidden = 0;
    for (int i = 0; i < j->n_stages; i++)
        for (int l = 0; j->stages[i].kind == STAGE_KIND_DISTILL && l < j->stages[i].n_losses;
             l++)
            hidden |= j->stages[i].losses[l].kind == LOSS_KIND_HIDDEN;
    if (!hidden)
        fail(c, "student.init_projections", "\"lstsq\" fits the projections of hidden "
             "losses, but no distill stage has a hidden loss; expected \"random\"");
    else if (!j->teacher.checkpoint[0] && j->student.hidden == j->teacher.hidden)
        fail(c, "student.init_projections", "\"lstsq\" fits the projections of hidden "
             "losses, but student.hidden = teacher.hidden = %lld needs none; expected "
             "\"random\"", (long long)j->student.hidden);
}

static void check_model(const struct check *c)
{
    const struct job *j = c->job;
    if (j->student.hidden % j->student.heads)
        fail(c, "student.heads", "expected a divisor of student.hidden (%lld), got %lld",
             (long long)j->student.hidden, (long long)j->student.heads);
    if (!j->teacher.checkpoint[0] && j->teacher.hidden % j->teacher.heads)
        fail(c, "teacher.heads", "expected a divisor of teacher.hidden (%lld), got %lld",
             (long long)j->teacher.hidden, (long long)j->teacher.heads);
    if (j->teacher.pipeline_stages > j->teacher.layers && !j->teacher.checkpoint[0])
        fail(c, "teacher.pipeline_stages",
             "expected at most teacher.layers (%lld) stages, got %lld",
             (long long)j->teacher.layers, (long long)j->teacher.pipeline_stages);
    const struct int_list *il = &j->student.init_layers;
    if (j->student.init == STUDENT_INIT_TEACHER_LAYERS) {
        if (il->n && il->n != j->student.layers)
            fail(c, "student.init_layers",
                 "expected %lld teacher layers (one per student layer), got %d",
                 (long long)j->student.layers, il->n);
        if (!j->teacher.checkpoint[0] && j->student.hidden != j->teacher.hidden)
            fail(c, "student.init", "\"teacher_layers\" needs student.hidden == teacher.hidden "
                 "(%lld), got %lld; use \"pca\" for a narrower student",
                 (long long)j->teacher.hidden, (long long)j->student.hidden);
    } else if (il->n) {
        fail(c, "student.init_layers", "only used with student.init = \"teacher_layers\"");
    }
    for (int i = 0; i < il->n; i++)
        if (!j->teacher.checkpoint[0] && il->v[i] > j->teacher.layers)
            fail(c, "student.init_layers", "element %d: expected a teacher layer in [1, %lld], "
                 "got %lld", i, (long long)j->teacher.layers, (long long)il->v[i]);
    check_init_projections(c);
}

static void check_layer_list(const struct check *c, const char *path,
                             const struct int_list *l, int64_t max, const char *what)
{
    for (int i = 0; i < l->n; i++)
        if (l->v[i] > max)
            fail(c, path, "element %d: expected a %s layer in [%d, %lld], got %lld", i, what,
                 strcmp(what, "student") == 0 ? 1 : 0, (long long)max, (long long)l->v[i]);
}

static void check_loss(const struct check *c, const struct stage_cfg *st, int si, int li)
{
    const struct job *j = c->job;
    const struct loss_cfg *l = &st->losses[li];
    char path[128];
    snprintf(path, sizeof path, "stages.[%d].losses.[%d]", si, li);
    char p2[160];
    if (l->kind == LOSS_KIND_HIDDEN || l->kind == LOSS_KIND_ATTENTION) {
        if (l->map == LAYER_MAP_EXPLICIT) {
            snprintf(p2, sizeof p2, "%s.teacher_layers", path);
            if (!l->student_layers.n || l->student_layers.n != l->teacher_layers.n)
                fail(c, p2, "expected as many entries as student_layers (%d, at least 1), "
                     "got %d", l->student_layers.n, l->teacher_layers.n);
            snprintf(p2, sizeof p2, "%s.student_layers", path);
            check_layer_list(c, p2, &l->student_layers, j->student.layers, "student");
            if (!j->teacher.checkpoint[0]) {
                snprintf(p2, sizeof p2, "%s.teacher_layers", path);
                check_layer_list(c, p2, &l->teacher_layers, j->teacher.layers, "teacher");
            }
        } else if (l->student_layers.n || l->teacher_layers.n) {
            snprintf(p2, sizeof p2, "%s.map", path);
            fail(c, p2, "student_layers/teacher_layers are given, so expected \"explicit\"");
        }
    }
    if (l->kind == LOSS_KIND_ATTENTION && !j->teacher.checkpoint[0] &&
        j->student.heads != j->teacher.heads) {
        snprintf(p2, sizeof p2, "%s.kind", path);
        fail(c, p2, "attention maps need equal head counts, but student.heads = %lld and "
             "teacher.heads = %lld", (long long)j->student.heads, (long long)j->teacher.heads);
    }
    if (l->kind == LOSS_KIND_SOFT && l->temperature_schedule == TEMP_SCHEDULE_CONSTANT &&
        l->temperature_end != 1.0 && l->temperature_end != l->temperature) {
        snprintf(p2, sizeof p2, "%s.temperature_end", path);
        fail(c, p2, "only used with temperature_schedule = \"linear\"");
    }
}

static void check_stages(const struct check *c)
{
    const struct job *j = c->job;
    const config_setting_t *list = config_lookup(c->cfg, "stages");
    if (j->n_stages == 0 && list)
        fail(c, "stages", "expected at least one stage");
    for (int i = 0; i < j->n_stages; i++) {
        const struct stage_cfg *st = &j->stages[i];
        char path[96];
        snprintf(path, sizeof path, "stages.[%d].name", i);
        for (int k = 0; st->name && k < i; k++)
            if (j->stages[k].name && strcmp(j->stages[k].name, st->name) == 0)
                fail(c, path, "duplicate stage name \"%s\" (first used by stages.[%d])",
                     st->name, k);
        if (st->name && (!st->name[0] || strchr(st->name, '/') || strchr(st->name, ' ')))
            fail(c, path, "expected a non-empty name without '/' or spaces, got \"%s\"",
                 st->name);
        if (st->kind == STAGE_KIND_DISTILL) {
            snprintf(path, sizeof path, "stages.[%d].losses", i);
            if (st->n_losses == 0)
                fail(c, path, "a distill stage needs at least one loss term");
            for (int l = 0; l < st->n_losses; l++)
                check_loss(c, st, i, l);
            int has_internal = 0;
            for (int l = 0; l < st->n_losses; l++)
                has_internal |= st->losses[l].kind == LOSS_KIND_HIDDEN ||
                                st->losses[l].kind == LOSS_KIND_ATTENTION;
            snprintf(path, sizeof path, "stages.[%d].method", i);
            if (st->method != DISTILL_METHOD_ALL && !has_internal)
                fail(c, path, "PID/SID schedule internal losses, but the stage has no "
                              "hidden or attention loss");
            snprintf(path, sizeof path, "stages.[%d].teacher_ranks", i);
            if (st->mode == DISTILL_MODE_ONLINE &&
                (st->teacher_ranks == 0 || st->teacher_ranks % j->teacher.pipeline_stages))
                fail(c, path, "online mode needs a positive multiple of "
                     "teacher.pipeline_stages (%lld), got %lld",
                     (long long)j->teacher.pipeline_stages, (long long)st->teacher_ranks);
        }
        if (st->kind == STAGE_KIND_EXTRACT && !j->teacher.checkpoint[0]) {
            snprintf(path, sizeof path, "stages.[%d].hidden_layers", i);
            check_layer_list(c, path, &st->hidden_layers, j->teacher.layers, "teacher");
            snprintf(path, sizeof path, "stages.[%d].attention_layers", i);
            check_layer_list(c, path, &st->attention_layers, j->teacher.layers, "teacher");
        }
        if (st->kind == STAGE_KIND_FINETUNE && i > 0) {
            for (int k = 0; k < i; k++)
                if (j->stages[k].kind == STAGE_KIND_EXTRACT ||
                    j->stages[k].kind == STAGE_KIND_DISTILL) {
                    snprintf(path, sizeof path, "stages.[%d].kind", i);
                    fail(c, path, "a finetune stage must come before the extract/distill "
                         "stages that use the teacher (stages.[%d] is \"%s\")", k,
                         stage_kind_name(j->stages[k].kind));
                    break;
                }
        }
    }
}

void job_check(const struct job *job, const config_t *cfg, struct job_errors *errs)
{
    struct check c = {job, cfg, errs};
    check_data(&c);
    check_model(&c);
    check_stages(&c);
}
