/* curves_read.c: reading a training-curve CSV back as numbers (format in
 * include/kd/eval/curves.h), for the plots and the tests. Only the format
 * curves.c writes is accepted: no quoting, '\n' or "\r\n" line ends. */
#include "kd/eval/curves.h"
#include "kd/core/fsutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Splits line [s, e) at commas in place; returns the field count, storing up
 * to max field starts (each NUL-terminated). */
static int split_fields(char *s, char *e, char **fields, int max)
{
    int n = 0;
    for (char *p = s;; p++) {
        if (p == e || *p == ',') {
            int last = p == e;
            *p = '\0';
            if (n < max)
                fields[n] = s;
            n++;
            if (last)
                return n;
            s = p + 1;
        }
    }
}

/* Each line [s, e) without its '\n' and a trailing '\r'; *complete is 0
 * for a last line without '\n'. */
static char *next_line(char **at, char *end, char **line_end, int *complete)
{
    if (*at >= end)
        return NULL;
    char *s = *at, *nl = memchr(s, '\n', (size_t)(end - s));
    char *e = nl ? nl : end;
    *complete = nl != NULL;
    *at = nl ? nl + 1 : end;
    if (e > s && e[-1] == '\r')
        e--;
    *line_end = e;
    return s;
}

int curve_table_read(struct curve_table *t, const char *path, struct kd_err *err)
{
    *t = (struct curve_table){0};
    char *buf;
    size_t len;
    if (fs_file_read(path, &buf, &len, err) != 0)
        return -1;
    char *at = buf, *end = buf + len, *e;
    int complete;
    char *s = next_line(&at, end, &e, &complete);
    if (!s || s == e) {
        free(buf);
        return kd_errf(err, "%s:1: expected a header line (step,epoch,lr,...), got an empty "
                       "file", path);
    }
    enum { MAX_COLS = 3 + CURVE_LOG_MAX_TERMS + 2 };
    char *fields[MAX_COLS];
    int n_cols = split_fields(s, e, fields, MAX_COLS);
    if (n_cols > MAX_COLS) {
        free(buf);
        return kd_errf(err, "%s:1: expected at most %d columns, got %d", path, MAX_COLS,
                       n_cols);
    }
    t->n_cols = n_cols;
    t->names = kd_calloc((size_t)n_cols, sizeof *t->names);
    for (int j = 0; j < n_cols; j++)
        t->names[j] = kd_strdup(fields[j]);
    /* rows: at most one per remaining '\n' (+1 for a missing final one) */
    int64_t cap = 1;
    for (char *p = at; p < end; p++)
        cap += *p == '\n';
    t->v = kd_malloc((size_t)cap * (size_t)n_cols * sizeof *t->v);
    int64_t line = 1;
    while ((s = next_line(&at, end, &e, &complete)) != NULL) {
        line++;
        if (s == e)
            continue; /* blank line (e.g. a final "\r\n" pair) */
        int got = split_fields(s, e, fields, MAX_COLS);
        if (got != n_cols && !complete)
            break; /* a row cut short by a crash: plot what came before */
        if (got != n_cols) {
            kd_errf(err, "%s:%lld: expected %d comma-separated fields as in the header, got "
                    "%d", path, (long long)line, n_cols, got);
            goto fail;
        }
        double *row = t->v + t->n_rows * n_cols;
        for (int j = 0; j < n_cols; j++) {
            char *stop;
            if (!fields[j][0]) {
                row[j] = NAN;
                continue;
            }
            row[j] = strtod(fields[j], &stop);
            if (*stop) {
                kd_errf(err, "%s:%lld: expected a number or an empty field in column '%s', "
                        "got '%s'", path, (long long)line, t->names[j], fields[j]);
                goto fail;
            }
        }
        t->n_rows++;
    }
    free(buf);
    return 0;
fail:
    free(buf);
    curve_table_free(t);
    return -1;
}

void curve_table_free(struct curve_table *t)
{
    for (int j = 0; j < t->n_cols; j++)
        free(t->names[j]);
    free(t->names);
    free(t->v);
    *t = (struct curve_table){0};
}

int curve_table_column(const struct curve_table *t, const char *name)
{
    for (int j = 0; j < t->n_cols; j++)
        if (!strcmp(t->names[j], name))
            return j;
    return -1;
}
