/* curves.h: the training-curve log, a CSV that a training stage appends to
 * one row per logged step (eval layer; no MPI: rank 0 alone opens and
 * writes it, the other ranks never touch it).
 *
 * Format (one header line, then one row per logged step, '\n' endings):
 *   step,epoch,lr,loss_<term1>,...,loss_<termK>,loss_total,dev_<metric>
 *   1,0.0125,5e-05,1.38629436,0.5,1.88629436,
 *   ...
 *   80,1,4.5e-05,0.21,0.12,0.33,0.9125
 * step is an integer; every other value is printed with "%.9g" (so float32
 * values round-trip); a non-finite loss is written "nan", "inf" or "-inf";
 * the dev column is empty on rows where the dev set was not evaluated.
 * Term names are the loss terms' names from the job (e.g. "soft", "hidden")
 * and may hold only [A-Za-z0-9_], so no field ever needs CSV quoting.
 *
 * Resume: a run restarted from a checkpoint at step S reopens the file with
 * resume_step = S. The header must match (same terms, same dev metric),
 * rows with step > S are cut, and so is a last line without its '\n' (a
 * crash mid-write); the run then appends from step S+1. Because rows are
 * printed from the same values by the same format, the resumed file equals
 * byte for byte the one an uninterrupted run writes. The cut is written
 * through a temp name and a rename, so a crash during resume leaves either
 * the old file or the cut one.
 *
 * Rows are flushed (fflush) every flush_every rows and on every row that
 * carries a dev value, so `tail -f` and a crash lose at most a few steps;
 * curve_log_close also fsyncs. */
#ifndef KD_EVAL_CURVES_H
#define KD_EVAL_CURVES_H

#include <stdint.h>
#include <stdio.h>

#include "kd/core/error.h"

/* resume_step value for a new run: any existing file is replaced. */
#define CURVE_LOG_FRESH ((int64_t)-1)
#define CURVE_LOG_MAX_TERMS 32

struct curve_log {
    FILE *f;            /* open for appending; NULL when closed */
    char *path;
    int n_terms;        /* loss terms, without the total */
    int64_t last_step;  /* step of the last row in the file; -1 if none */
    int flush_every;    /* rows between flushes (>= 1) */
    int since_flush;
};

/* One row. terms[n_terms] in the order given to curve_log_open. */
struct curve_row {
    int64_t step;       /* > the previous row's step */
    double epoch;       /* fractional epochs done at this step */
    double lr;
    const double *terms;
    double total;
    int has_dev;        /* 0: the dev column stays empty */
    double dev;
};

/* Opens (creates or resumes) the log at path. terms: the loss-term names
 * (n_terms <= CURVE_LOG_MAX_TERMS, names [A-Za-z0-9_]+, none "total");
 * dev_metric: the dev column's metric name, e.g. eval_metric_name() of the
 * task's primary metric. resume_step: CURVE_LOG_FRESH, or the step of the
 * checkpoint being resumed (see above; a missing file then is started anew
 * with a warning, since losing the curve must not stop training). flush_every
 * <= 0 means 1. Errors: a header that differs from the expected one ("expected
 * ... got ..." with a HINT), a malformed or out-of-order step, I/O. */
int curve_log_open(struct curve_log *c, const char *path, const char *const *terms,
                   int n_terms, const char *dev_metric, int64_t resume_step,
                   int flush_every, struct kd_err *err);

/* Appends one row. Error if row->step <= the last step already in the file
 * (a resumed run must not write a step twice) or on I/O failure. */
int curve_log_append(struct curve_log *c, const struct curve_row *row, struct kd_err *err);

/* fflush now (e.g. before a checkpoint). */
int curve_log_flush(struct curve_log *c, struct kd_err *err);

/* Flushes, fsyncs and closes; safe to call on a closed log. */
int curve_log_close(struct curve_log *c, struct kd_err *err);

/* The file read back as numbers, for plots and tests. */
struct curve_table {
    int n_cols;
    char **names;       /* header columns, e.g. "step", "loss_soft", "dev_accuracy" */
    int64_t n_rows;
    double *v;          /* [n_rows, n_cols] row-major; an empty field is NaN */
};

/* Reads a curve CSV; every row must have the header's number of fields,
 * each empty or a number ("path:line: expected ... got ..." otherwise). */
int curve_table_read(struct curve_table *t, const char *path, struct kd_err *err);
void curve_table_free(struct curve_table *t);
/* Index of the column with this name, or -1. */
int curve_table_column(const struct curve_table *t, const char *name);

#endif
