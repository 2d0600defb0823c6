/* report.c: the evaluation report as Markdown, CSV and log lines (formats
 * in include/kd/eval/report.h). Text is built in memory (open_memstream)
 * and written in one piece through fs_file_write_atomic, so the log and the
 * file come from the same string. */
#include "kd/eval/report.h"
#include "kd/core/fsutil.h"
#include "kd/core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FIXED_COLS = 4 }; /* model, parameters, size, tokens/s */

/* All rows compare one thing: same task, classes, metrics and examples. */
static int check_rows(const struct report_row *rows, int n_rows, struct kd_err *err)
{
    if (n_rows < 1)
        return kd_errf(err, "report: expected at least one model row, got %d", n_rows);
    const struct eval_scores *a = &rows[0].scores;
    for (int r = 0; r < n_rows; r++) {
        const struct eval_scores *b = &rows[r].scores;
        const char *m = rows[r].model;
        if (!m || !m[0])
            return kd_errf(err, "report: row %d: expected a model name, got none", r + 1);
        for (const char *p = m; *p; p++)
            if ((unsigned char)*p < 0x20)
                return kd_errf(err, "report: row %d: expected a one-line model name, got a "
                               "control character in '%s'", r + 1, m);
        if (b->n_metrics < 1)
            return kd_errf(err, "report: row '%s': expected scores, got none (not computed?)",
                           m);
        if (b->task != a->task || b->num_classes != a->num_classes ||
            b->n_metrics != a->n_metrics ||
            memcmp(b->metric, a->metric, (size_t)a->n_metrics * sizeof a->metric[0]) != 0)
            return kd_errf(err, "report: row '%s': expected the task and metrics of row '%s' "
                           "(task %d, %d classes), got task %d, %d classes", m,
                           rows[0].model, a->task, a->num_classes, b->task, b->num_classes);
        if (b->n != a->n)
            return kd_errf(err, "report: row '%s': expected the %lld examples of row '%s', "
                           "got %lld", m, (long long)a->n, rows[0].model, (long long)b->n);
    }
    return 0;
}

/* Cell text for row r (r = -1: the header) and column j. */
static void cell(char *out, size_t len, const struct report_row *rows, int r, int j)
{
    const struct eval_scores *s = &rows[r < 0 ? 0 : r].scores;
    if (r < 0) {
        static const char *const fixed[FIXED_COLS] = {"model", "parameters", "size (MB)",
                                                      "tokens/s"};
        if (j < FIXED_COLS)
            snprintf(out, len, "%s", fixed[j]);
        else {
            enum eval_metric m = s->metric[j - FIXED_COLS];
            snprintf(out, len, "%s%s", eval_metric_title(m),
                     m == eval_task_primary(s->task) ? "*" : "");
        }
        return;
    }
    const struct report_row *row = &rows[r];
    switch (j) {
    case 0: {
        /* '|' would end the cell: Markdown's escape is "\|" */
        size_t o = 0;
        for (const char *p = row->model; *p && o + 3 < len; p++) {
            if (*p == '|')
                out[o++] = '\\';
            out[o++] = *p;
        }
        out[o] = '\0';
        break;
    }
    case 1: snprintf(out, len, "%lld", (long long)row->n_params); break;
    case 2: snprintf(out, len, "%.1f", (double)row->size_bytes / 1e6); break;
    case 3: snprintf(out, len, "%.0f", row->tokens_per_s); break;
    default: snprintf(out, len, "%.4f", s->value[j - FIXED_COLS]); break;
    }
}

char *report_markdown(const struct report_row *rows, int n_rows, const char *title,
                      struct kd_err *err)
{
    if (check_rows(rows, n_rows, err) != 0)
        return NULL;
    int n_cols = FIXED_COLS + rows[0].scores.n_metrics;
    enum { CELL = 256 };
    char buf[CELL];
    size_t width[FIXED_COLS + EVAL_METRIC_COUNT] = {0};
    for (int r = -1; r < n_rows; r++)
        for (int j = 0; j < n_cols; j++) {
            cell(buf, sizeof buf, rows, r, j);
            size_t w = strlen(buf);
            width[j] = w > width[j] ? w : width[j];
        }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    KD_ASSERT(f, "open_memstream failed");
    if (title)
        fprintf(f, "## %s\n\n", title);
    for (int r = -1; r < n_rows; r++) {
        for (int j = 0; j < n_cols; j++) {
            cell(buf, sizeof buf, rows, r, j);
            /* the model column is text (left), the others numbers (right) */
            fprintf(f, j == 0 ? "| %-*s " : "| %*s ", (int)width[j], buf);
        }
        fputs("|\n", f);
        if (r == -1) {
            for (int j = 0; j < n_cols; j++) {
                fputs("|", f);
                for (size_t k = 0; k < width[j] + (j ? 1 : 2); k++)
                    fputc('-', f);
                fputs(j ? ":" : "", f);
            }
            fputs("|\n", f);
        }
    }
    fprintf(f, "\n\\* primary metric. %lld examples; MB = 10^6 bytes.\n",
            (long long)rows[0].scores.n);
    fclose(f);
    return text;
}

/* RFC 4180 field: quoted (with "" for ") only when it has to be. */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

char *report_csv(const struct report_row *rows, int n_rows, struct kd_err *err)
{
    if (check_rows(rows, n_rows, err) != 0)
        return NULL;
    const struct eval_scores *s0 = &rows[0].scores;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    KD_ASSERT(f, "open_memstream failed");
    fputs("model,parameters,size_mb,tokens_per_s", f);
    for (int j = 0; j < s0->n_metrics; j++)
        fprintf(f, ",%s", eval_metric_name(s0->metric[j]));
    fputs(",examples\n", f);
    for (int r = 0; r < n_rows; r++) {
        const struct report_row *row = &rows[r];
        csv_field(f, row->model);
        /* bytes / 10^6 with 6 decimals is exact: the byte count survives */
        fprintf(f, ",%lld,%llu.%06llu,%.1f", (long long)row->n_params,
                (unsigned long long)(row->size_bytes / 1000000u),
                (unsigned long long)(row->size_bytes % 1000000u), row->tokens_per_s);
        for (int j = 0; j < row->scores.n_metrics; j++)
            fprintf(f, ",%.9g", row->scores.value[j]);
        fprintf(f, ",%lld\n", (long long)row->scores.n);
    }
    fclose(f);
    return text;
}

int report_write(const char *md_path, const char *csv_path, const struct report_row *rows,
                 int n_rows, const char *title, struct kd_err *err)
{
    if (md_path) {
        char *md = report_markdown(rows, n_rows, title, err);
        if (!md)
            return -1;
        int rc = fs_file_write_atomic(md_path, md, strlen(md), err);
        free(md);
        if (rc != 0)
            return -1;
    }
    if (csv_path) {
        char *csv = report_csv(rows, n_rows, err);
        if (!csv)
            return -1;
        int rc = fs_file_write_atomic(csv_path, csv, strlen(csv), err);
        free(csv);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int report_log(const struct report_row *rows, int n_rows, const char *title,
               struct kd_err *err)
{
    char *md = report_markdown(rows, n_rows, title, err);
    if (!md)
        return -1;
    for (char *line = md, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        *nl = '\0'; /* every line of report_markdown ends in '\n' */
        log_info0("%s", line);
    }
    free(md);
    return 0;
}
