/* job_echo.c: the resolved job as text: the start-up echo (every key, with
 * defaults marked) and the resolved libconfig file written into the run's
 * output directory. Both come from the key table. */
#include "kd/job/job.h"
#include "kd/job/keys.h"
#include "kd/core/error.h"
#include "kd/core/atomic_file.h"
#include "kd/core/log.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Formats the value of key k in base as job-file text. */
static void format_value(const struct key_def *k, const void *base, char *buf, size_t n)
{
    const void *p = (const char *)base + k->offset;
    char one[64];
    size_t used = 0;
    switch (k->type) {
    case KEY_INT: snprintf(buf, n, "%lld", (long long)*(const int64_t *)p); break;
    case KEY_FLOAT: {
        snprintf(buf, n, "%.9g", *(const double *)p);
        if (!strpbrk(buf, ".eEn"))
            strncat(buf, ".0", n - strlen(buf) - 1); /* keep it a libconfig float */
        break;
    }
    case KEY_BOOL: snprintf(buf, n, "%s", *(const bool *)p ? "true" : "false"); break;
    case KEY_STRING: {
        const char *s = *(char *const *)p;
        used = (size_t)snprintf(buf, n, "\"");
        for (; s && *s && used + 3 < n; s++) {
            if (*s == '"' || *s == '\\')
                buf[used++] = '\\';
            buf[used++] = *s;
        }
        snprintf(buf + used, n - used, "\"");
        break;
    }
    case KEY_ENUM:
        snprintf(buf, n, "\"%s\"", key_choice_name(k, *(const int *)p, one, sizeof one));
        break;
    case KEY_INT_LIST: {
        const struct int_list *l = p;
        used = (size_t)snprintf(buf, n, "[");
        for (int i = 0; i < l->n && used < n; i++)
            used += (size_t)snprintf(buf + used, n - used, "%s%lld", i ? ", " : "",
                                     (long long)l->v[i]);
        if (used < n)
            snprintf(buf + used, n - used, "]");
        break;
    }
    case KEY_ENUM_LIST: {
        const struct enum_list *l = p;
        used = (size_t)snprintf(buf, n, "[");
        for (int i = 0; i < l->n && used < n; i++)
            used += (size_t)snprintf(buf + used, n - used, "%s\"%s\"", i ? ", " : "",
                                     key_choice_name(k, l->v[i], one, sizeof one));
        if (used < n)
            snprintf(buf + used, n - used, "]");
        break;
    }
    case KEY_SECTION: buf[0] = '\0'; break;
    }
}

/* Does key k apply to a stage/loss of this kind? */
static int key_applies(const struct key_def *k, int kind)
{
    return !k->kinds || (kind >= 0 && (k->kinds & (1u << kind)));
}

static const char *leaf(const char *path)
{
    const char *d = strrchr(path, '.');
    return d ? d + 1 : path;
}

/* Calls emit(line, ctx) for every line of the resolved job. */
typedef void (*emit_fn)(const char *line, void *ctx);

static void emit_scope(enum key_scope scope, const char *section, const void *base, int kind,
                       const char *indent, emit_fn emit, void *ctx)
{
    char val[2048], line[2400];
    for (size_t i = 0; i < key_table_len; i++) {
        const struct key_def *k = &key_table[i];
        if (k->scope != scope || k->type == KEY_SECTION || !key_applies(k, kind))
            continue;
        if (section) {
            size_t ls = strlen(section);
            if (strncmp(k->path, section, ls) != 0 || k->path[ls] != '.')
                continue;
        }
        format_value(k, base, val, sizeof val);
        snprintf(line, sizeof line, "%s%s = %s;", indent, leaf(k->path), val);
        emit(line, ctx);
    }
}

static void emit_job(const struct job *job, emit_fn emit, void *ctx)
{
    static const char *const sections[] = {"job", "data", "teacher", "student"};
    char line[256];
    for (size_t s = 0; s < sizeof sections / sizeof *sections; s++) {
        snprintf(line, sizeof line, "%s = {", sections[s]);
        emit(line, ctx);
        emit_scope(KEY_SCOPE_JOB, sections[s], job, -1, "  ", emit, ctx);
        emit("};", ctx);
    }
    emit("stages = (", ctx);
    for (int i = 0; i < job->n_stages; i++) {
        const struct stage_cfg *st = &job->stages[i];
        emit("  {", ctx);
        emit_scope(KEY_SCOPE_STAGE, NULL, st, st->kind, "    ", emit, ctx);
        if (st->kind == STAGE_KIND_DISTILL) {
            emit("    losses = (", ctx);
            for (int l = 0; l < st->n_losses; l++) {
                emit("      {", ctx);
                emit_scope(KEY_SCOPE_LOSS, NULL, &st->losses[l], st->losses[l].kind,
                           "        ", emit, ctx);
                emit(l + 1 < st->n_losses ? "      }," : "      }", ctx);
            }
            emit("    );", ctx);
        }
        emit(i + 1 < job->n_stages ? "  }," : "  }", ctx);
    }
    emit(");", ctx);
}

static void emit_to_file(const char *line, void *ctx) { fprintf(ctx, "%s\n", line); }

static void emit_to_log(const char *line, void *ctx)
{
    (void)ctx;
    log_info0("  %s", line);
}

int job_write_resolved(const struct job *job, const char *path, char *err, size_t errlen)
{
    struct fs_atomic out;
    if (fs_atomic_open(&out, path, err, errlen))
        return -1;
    fprintf(out.f, "# Resolved configuration of %s (every key, defaults filled in).\n"
                   "# Re-run exactly with: kd_hpc THIS_FILE\n", job->path);
    emit_job(job, emit_to_file, out.f);
    return fs_atomic_commit(&out, err, errlen);
}

void job_echo(const struct job *job)
{
    log_info0("resolved configuration of %s:", job->path);
    emit_job(job, emit_to_log, NULL);
}
