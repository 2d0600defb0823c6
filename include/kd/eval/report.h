/* report.h: the evaluation report, one row per model (teacher, distilled
 * student, student trained without KD, ...), as a Markdown table, a CSV and
 * the same table in the log (eval layer; no MPI: rank 0 writes it from
 * scores it has gathered).
 *
 * Markdown (columns padded so the file and the log read as a table; the
 * primary metric is marked with '*'):
 *   ## SST-2 dev
 *
 *   | model               | parameters | size (MB) | tokens/s | accuracy* |     F1 |    MCC |
 *   |---------------------|-----------:|----------:|---------:|----------:|-------:|-------:|
 *   | teacher             |  109483778 |     437.9 |      812 |    0.9243 | 0.9251 | 0.8486 |
 *
 *   \* primary metric. 872 examples; MB = 10^6 bytes.
 * Values: parameters exact, size 1 decimal, tokens/s 0 decimals, metrics
 * 4 decimals. The title line is left out when title is NULL.
 *
 * CSV (RFC 4180: a model name holding ',' '"' or a line end is quoted):
 *   model,parameters,size_mb,tokens_per_s,accuracy,f1,mcc,examples
 *   teacher,109483778,437.935112,812.3,0.924311927,0.925110132,0.848606446,872
 * size_mb with 6 decimals (exact for a byte count), tokens/s with 1, metrics
 * "%.9g"; metric columns are eval_metric_name()s in eval_task_metrics order.
 *
 * Every row must carry scores of the same task, class count, metric list and
 * example count (one comparison on one data set); anything else is an error
 * naming the row. */
#ifndef KD_EVAL_REPORT_H
#define KD_EVAL_REPORT_H

#include <stdint.h>

#include "kd/core/error.h"
#include "kd/eval/metrics.h"

struct report_row {
    const char *model;         /* e.g. "teacher", "student (distilled)", "student (no KD)" */
    int64_t n_params;
    uint64_t size_bytes;       /* parameters as stored (e.g. model.safetensors' size) */
    double tokens_per_s;       /* evaluation throughput measured by the caller */
    struct eval_scores scores; /* eval_scores_compute */
};

/* The Markdown text described above (a new string, free()), or NULL with err. */
char *report_markdown(const struct report_row *rows, int n_rows, const char *title,
                      struct kd_err *err);
/* The CSV text described above (a new string, free()), or NULL with err. */
char *report_csv(const struct report_row *rows, int n_rows, struct kd_err *err);

/* Writes both files, each atomically (temp name + rename). Either path may
 * be NULL to skip it. */
int report_write(const char *md_path, const char *csv_path, const struct report_row *rows,
                 int n_rows, const char *title, struct kd_err *err);

/* Prints the Markdown table line by line with log_info0 (rank 0 only). */
int report_log(const struct report_row *rows, int n_rows, const char *title,
               struct kd_err *err);

#endif
