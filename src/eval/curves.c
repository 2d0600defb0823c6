/* curves.c: writing the training-curve CSV, and cutting it back to the
 * resumed step (format and contract in include/kd/eval/curves.h). The
 * reader is curves_read.c. */
#include "kd/eval/curves.h"
#include "kd/core/fsutil.h"
#include "kd/core/log.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int valid_term(const char *s)
{
    if (!s || !*s)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_'))
            return 0;
    return 1;
}

/* The header line with its '\n' (free()). */
static char *make_header(const char *const *terms, int n_terms, const char *dev)
{
    size_t len = 64 + strlen(dev);
    for (int i = 0; i < n_terms; i++)
        len += strlen(terms[i]) + 8;
    char *h = kd_malloc(len);
    size_t at = (size_t)snprintf(h, len, "step,epoch,lr");
    for (int i = 0; i < n_terms; i++)
        at += (size_t)snprintf(h + at, len - at, ",loss_%s", terms[i]);
    snprintf(h + at, len - at, ",loss_total,dev_%s\n", dev);
    return h;
}

/* "%.9g", except that non-finite values get one spelling on every libc
 * ("-nan" vs "nan" would break resume equality). */
static void put_value(FILE *f, double v)
{
    if (isnan(v))
        fputs("nan", f);
    else if (isinf(v))
        fputs(v > 0 ? "inf" : "-inf", f);
    else
        fprintf(f, "%.9g", v);
}

/* Keeps the rows of an existing file up to resume_step. On success *keep is
 * the byte length of the part to keep and *last the last kept step (-1 if
 * none). A last line without '\n' is an interrupted write and is dropped. */
static int scan_rows(const char *path, const char *buf, size_t len, const char *header,
                     int64_t resume_step, size_t *keep, int64_t *last, struct kd_err *err)
{
    size_t hlen = strlen(header);
    if (len < hlen || memcmp(buf, header, hlen) != 0) {
        const char *nl = memchr(buf, '\n', len);
        int got = (int)(nl ? (size_t)(nl - buf) : len);
        return kd_errf(err, "%s:1: expected the header '%.*s', got '%.*s'\nHINT: the loss "
                       "terms or the dev metric changed since this run started; run the "
                       "stage afresh (or move the old curve file away)",
                       path, (int)hlen - 1, header, got > 200 ? 200 : got, buf);
    }
    *keep = hlen;
    *last = -1;
    int64_t line = 1;
    for (size_t at = hlen; at < len;) {
        line++;
        const char *nl = memchr(buf + at, '\n', len - at);
        if (!nl)
            break; /* interrupted write: dropped */
        size_t row_len = (size_t)(nl - (buf + at));
        char *end;
        errno = 0;
        long long step = strtoll(buf + at, &end, 10);
        if (end == buf + at || *end != ',' || errno != 0 || step < 0)
            return kd_errf(err, "%s:%lld: expected a step number at the start of the row, "
                           "got '%.*s'", path, (long long)line,
                           (int)(row_len > 40 ? 40 : row_len), buf + at);
        if (step <= *last)
            return kd_errf(err, "%s:%lld: expected steps in increasing order, got step %lld "
                           "after %lld", path, (long long)line, step, (long long)*last);
        if (step > resume_step)
            break;
        *last = step;
        at = (size_t)(nl - buf) + 1;
        *keep = at;
    }
    return 0;
}

/* Writes the header alone (new run) or the kept prefix (resume), through a
 * temp name and a rename, then opens the file for appending. */
static int reopen(struct curve_log *c, const char *content, size_t len, struct kd_err *err)
{
    if (fs_file_write_atomic(c->path, content, len, err) != 0)
        return -1;
    c->f = fopen(c->path, "a");
    if (!c->f)
        return kd_errf(err, "%s: cannot open for appending: %s", c->path, strerror(errno));
    return 0;
}

int curve_log_open(struct curve_log *c, const char *path, const char *const *terms,
                   int n_terms, const char *dev_metric, int64_t resume_step,
                   int flush_every, struct kd_err *err)
{
    *c = (struct curve_log){.last_step = -1, .flush_every = flush_every > 0 ? flush_every : 1};
    if (n_terms < 0 || n_terms > CURVE_LOG_MAX_TERMS)
        return kd_errf(err, "%s: expected 0..%d loss terms, got %d", path,
                       CURVE_LOG_MAX_TERMS, n_terms);
    for (int i = 0; i < n_terms; i++) {
        if (!valid_term(terms[i]) || !strcmp(terms[i], "total"))
            return kd_errf(err, "%s: expected loss-term names of [A-Za-z0-9_] other than "
                           "'total', got '%s'", path, terms[i] ? terms[i] : "(null)");
        for (int j = 0; j < i; j++)
            if (!strcmp(terms[i], terms[j]))
                return kd_errf(err, "%s: loss term '%s' appears twice; expected distinct "
                               "names", path, terms[i]);
    }
    if (!valid_term(dev_metric))
        return kd_errf(err, "%s: expected a dev metric name of [A-Za-z0-9_], got '%s'", path,
                       dev_metric ? dev_metric : "(null)");
    c->path = kd_strdup(path);
    c->n_terms = n_terms;
    char *header = make_header(terms, n_terms, dev_metric);
    int rc = -1;
    char *old = NULL;
    size_t old_len = 0;
    if (resume_step != CURVE_LOG_FRESH && !fs_file_exists(path)) {
        log_warn("%s: resuming at step %lld but the curve file is missing; starting a new "
                 "one (steps up to %lld are not in it)", path, (long long)resume_step,
                 (long long)resume_step);
        resume_step = CURVE_LOG_FRESH;
    }
    if (resume_step == CURVE_LOG_FRESH) {
        rc = reopen(c, header, strlen(header), err);
        goto done;
    }
    if (resume_step < 0) {
        kd_errf(err, "%s: expected a resume step >= 0 or CURVE_LOG_FRESH, got %lld", path,
                (long long)resume_step);
        goto done;
    }
    if (fs_file_read(path, &old, &old_len, err) != 0)
        goto done;
    size_t keep = 0;
    if (scan_rows(path, old, old_len, header, resume_step, &keep, &c->last_step, err) != 0)
        goto done;
    if (keep == old_len) {
        /* nothing to cut: append in place */
        c->f = fopen(path, "a");
        rc = c->f ? 0 : kd_errf(err, "%s: cannot open for appending: %s", path,
                                strerror(errno));
    } else {
        rc = reopen(c, old, keep, err);
    }
done:
    free(header);
    free(old);
    if (rc != 0) {
        free(c->path);
        c->path = NULL;
    }
    return rc;
}

int curve_log_append(struct curve_log *c, const struct curve_row *row, struct kd_err *err)
{
    KD_ASSERT(c->f, "curve log is not open");
    if (row->step <= c->last_step)
        return kd_errf(err, "%s: expected a step after %lld, got %lld (a step is logged once)",
                       c->path, (long long)c->last_step, (long long)row->step);
    FILE *f = c->f;
    fprintf(f, "%lld,", (long long)row->step);
    put_value(f, row->epoch);
    fputc(',', f);
    put_value(f, row->lr);
    for (int i = 0; i < c->n_terms; i++) {
        fputc(',', f);
        put_value(f, row->terms[i]);
    }
    fputc(',', f);
    put_value(f, row->total);
    fputc(',', f);
    if (row->has_dev)
        put_value(f, row->dev);
    fputc('\n', f);
    if (ferror(f))
        return kd_errf(err, "%s: write failed: %s", c->path, strerror(errno));
    c->last_step = row->step;
    if (++c->since_flush >= c->flush_every || row->has_dev)
        return curve_log_flush(c, err);
    return 0;
}

int curve_log_flush(struct curve_log *c, struct kd_err *err)
{
    c->since_flush = 0;
    if (c->f && fflush(c->f) != 0)
        return kd_errf(err, "%s: write failed: %s", c->path, strerror(errno));
    return 0;
}

int curve_log_close(struct curve_log *c, struct kd_err *err)
{
    int rc = 0;
    if (c->f) {
        int bad = fflush(c->f) != 0 || fsync(fileno(c->f)) != 0;
        int e = errno;
        if (fclose(c->f) != 0 && !bad) {
            bad = 1;
            e = errno;
        }
        if (bad)
            rc = kd_errf(err, "%s: write failed: %s", c->path, strerror(e));
        c->f = NULL;
    }
    free(c->path);
    c->path = NULL;
    return rc;
}
