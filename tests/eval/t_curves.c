/* t_curves.c: the training-curve CSV: its exact text, flushing, reading it
 * back, and resume: a run interrupted after step 7 (with half a row 8 on
 * disk) and resumed from a checkpoint at step 5 ends with the same bytes as
 * an uninterrupted run; plus the resume errors (changed header, steps out of
 * order, a step written twice) and bad term names. */
#include "kd/eval/curves.h"
#include "kd/core/fsutil.h"
#include "../tap.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];
static const char *const terms[] = {"soft", "hidden"};

static char *path_in(const char *name)
{
    return fs_path_join(dir, name);
}

static char *slurp(const char *path)
{
    char *buf;
    size_t len;
    struct kd_err err;
    if (fs_file_read(path, &buf, &len, &err) != 0)
        return kd_strdup("(unreadable)");
    return buf;
}

/* The values of step s in every run of this test: exact in binary, so the
 * expected text below is exact too. Dev every 5 steps, a NaN term at 3. */
static void write_steps(struct curve_log *c, int64_t from, int64_t to)
{
    struct kd_err err;
    for (int64_t s = from; s <= to; s++) {
        double t[2] = {2.0 / (double)s, s == 3 ? NAN : 0.25 * (double)s};
        struct curve_row r = {.step = s, .epoch = (double)s / 4.0, .lr = 5e-05 * (double)s,
                              .terms = t, .total = t[0] + (s == 3 ? 0.0 : t[1]),
                              .has_dev = s % 5 == 0, .dev = 0.5 + 0.03125 * (double)s};
        if (curve_log_append(c, &r, &err) != 0)
            bail_out("append step %lld: %s", (long long)s, err.msg);
    }
}

static const char want_text[] =
    "step,epoch,lr,loss_soft,loss_hidden,loss_total,dev_accuracy\n"
    "1,0.25,5e-05,2,0.25,2.25,\n"
    "2,0.5,0.0001,1,0.5,1.5,\n"
    "3,0.75,0.00015,0.666666667,nan,0.666666667,\n"
    "4,1,0.0002,0.5,1,1.5,\n"
    "5,1.25,0.00025,0.4,1.25,1.65,0.65625\n"
    "6,1.5,0.0003,0.333333333,1.5,1.83333333,\n"
    "7,1.75,0.00035,0.285714286,1.75,2.03571429,\n"
    "8,2,0.0004,0.25,2,2.25,\n"
    "9,2.25,0.00045,0.222222222,2.25,2.47222222,\n"
    "10,2.5,0.0005,0.2,2.5,2.7,0.8125\n";

static void test_fresh_and_read(void)
{
    struct curve_log c;
    struct kd_err err;
    char *p = path_in("full.csv");
    if (curve_log_open(&c, p, terms, 2, "accuracy", CURVE_LOG_FRESH, 1, &err) != 0)
        bail_out("open: %s", err.msg);
    char *text = slurp(p);
    ok_str(text, "step,epoch,lr,loss_soft,loss_hidden,loss_total,dev_accuracy\n",
           "a new file holds the header at once");
    free(text);
    write_steps(&c, 1, 10);
    ok(curve_log_close(&c, &err) == 0 && c.f == NULL, "close");
    text = slurp(p);
    ok_str(text, want_text, "exact text: %%.9g values, nan, empty dev where not evaluated");
    free(text);

    struct curve_table t;
    if (!ok(curve_table_read(&t, p, &err) == 0, "read back"))
        diag("%s", err.msg);
    int dev = curve_table_column(&t, "dev_accuracy"), soft = curve_table_column(&t, "loss_soft");
    ok(t.n_cols == 7 && t.n_rows == 10 && dev == 6 && soft == 3 &&
       curve_table_column(&t, "nope") == -1, "10 rows, 7 named columns");
    ok(isnan(t.v[0 * 7 + dev]) && t.v[4 * 7 + dev] == 0.65625 && t.v[9 * 7 + 0] == 10.0 &&
       isnan(t.v[2 * 7 + 4]) && t.v[1 * 7 + soft] == 1.0,
       "empty dev is NaN, values parsed (dev 0.65625 at step 5, nan loss at step 3)");
    curve_table_free(&t);

    /* replacing: a fresh open truncates an existing file */
    if (curve_log_open(&c, p, terms, 2, "accuracy", CURVE_LOG_FRESH, 1, &err) != 0)
        bail_out("reopen: %s", err.msg);
    curve_log_close(&c, &err);
    text = slurp(p);
    ok_str(text, "step,epoch,lr,loss_soft,loss_hidden,loss_total,dev_accuracy\n",
           "CURVE_LOG_FRESH replaces an old file");
    free(text);
    free(p);
}

static void test_resume_equals_uninterrupted(void)
{
    struct curve_log c;
    struct kd_err err;
    char *p = path_in("resumed.csv");
    /* first run: steps 1..7, then killed while writing row 8 */
    if (curve_log_open(&c, p, terms, 2, "accuracy", CURVE_LOG_FRESH, 3, &err) != 0)
        bail_out("open: %s", err.msg);
    write_steps(&c, 1, 7);
    curve_log_close(&c, &err);
    FILE *f = fopen(p, "a");
    fputs("8,2,0.0004,0.2", f);
    fclose(f);
    /* the last checkpoint was at step 5 */
    if (!ok(curve_log_open(&c, p, terms, 2, "accuracy", 5, 3, &err) == 0,
            "resume at step 5"))
        bail_out("%s", err.msg);
    ok(c.last_step == 5, "rows after step 5 and the torn row are cut");
    char *text = slurp(p);
    ok(strlen(text) == (size_t)(strstr(want_text, "6,1.5") - want_text) &&
       !strncmp(text, want_text, strlen(text)), "on disk: header and steps 1..5");
    free(text);
    struct curve_row again = {.step = 5, .terms = (double[2]){0, 0}};
    ok(curve_log_append(&c, &again, &err) == -1 &&
       strstr(err.msg, "expected a step after 5, got 5"), "a step is not logged twice: %s",
       err.msg);
    write_steps(&c, 6, 10);
    curve_log_close(&c, &err);
    text = slurp(p);
    ok_str(text, want_text, "resumed file equals the uninterrupted run byte for byte");
    free(text);

    /* resuming at the last step cuts nothing and appends in place */
    if (curve_log_open(&c, p, terms, 2, "accuracy", 10, 1, &err) != 0)
        bail_out("%s", err.msg);
    ok(c.last_step == 10, "resume at the last step keeps every row");
    write_steps(&c, 11, 11);
    curve_log_close(&c, &err);
    text = slurp(p);
    ok(!strncmp(text, want_text, strlen(want_text)) &&
       !strcmp(text + strlen(want_text), "11,2.75,0.00055,0.181818182,2.75,2.93181818,\n"),
       "and continues with step 11");
    free(text);

    /* resume at step 0 (a checkpoint before any step) keeps the header only */
    if (curve_log_open(&c, p, terms, 2, "accuracy", 0, 1, &err) != 0)
        bail_out("%s", err.msg);
    curve_log_close(&c, &err);
    text = slurp(p);
    ok_str(text, "step,epoch,lr,loss_soft,loss_hidden,loss_total,dev_accuracy\n",
           "resume at step 0 keeps only the header");
    free(text);
    free(p);
}

static void test_resume_errors(void)
{
    struct curve_log c;
    struct kd_err err;
    char *p = path_in("errors.csv");
    if (curve_log_open(&c, p, terms, 2, "accuracy", CURVE_LOG_FRESH, 1, &err) != 0)
        bail_out("%s", err.msg);
    write_steps(&c, 1, 3);
    curve_log_close(&c, &err);

    const char *const other[] = {"soft"};
    ok(curve_log_open(&c, p, other, 1, "accuracy", 2, 1, &err) == -1 &&
       strstr(err.msg, "errors.csv:1: expected the header 'step,epoch,lr,loss_soft,loss_total,"
                       "dev_accuracy', got 'step,epoch,lr,loss_soft,loss_hidden,loss_total,"
                       "dev_accuracy'\nHINT: the loss terms or the dev metric changed"),
       "changed loss terms: header mismatch with a HINT");
    ok(curve_log_open(&c, p, terms, 2, "pearson", 2, 1, &err) == -1 &&
       strstr(err.msg, "expected the header"), "changed dev metric: header mismatch");

    FILE *f = fopen(p, "a");
    fputs("2,0,0,0,0,0,\n", f);
    fclose(f);
    ok(curve_log_open(&c, p, terms, 2, "accuracy", 9, 1, &err) == -1 &&
       strstr(err.msg, "errors.csv:5: expected steps in increasing order, got step 2 after 3"),
       "steps out of order: %s", err.msg);
    f = fopen(p, "w");
    fputs("step,epoch,lr,loss_soft,loss_hidden,loss_total,dev_accuracy\nx,1\n", f);
    fclose(f);
    ok(curve_log_open(&c, p, terms, 2, "accuracy", 9, 1, &err) == -1 &&
       strstr(err.msg, "errors.csv:2: expected a step number at the start of the row, got "
                       "'x,1'"), "malformed step: %s", err.msg);
    struct curve_table t;
    ok(curve_table_read(&t, p, &err) == -1 &&
       strstr(err.msg, "errors.csv:2: expected 7 comma-separated fields as in the header, "
                       "got 2"), "reader: short row: %s", err.msg);
    free(p);

    /* a resumed run whose curve file was lost starts a new one (warning) */
    p = path_in("lost.csv");
    ok(curve_log_open(&c, p, terms, 2, "accuracy", 7, 1, &err) == 0 && c.last_step == -1,
       "resume without a file: a new file (warning printed)");
    write_steps(&c, 8, 8);
    curve_log_close(&c, &err);
    char *text = slurp(p);
    ok(!strncmp(text, want_text, strlen("step,epoch,lr,loss_soft,loss_hidden,loss_total,"
                                        "dev_accuracy\n")) && strstr(text, "\n8,2,"),
       "the new file has the header and the steps written after the resume");
    free(text);
    free(p);

    const char *const bad1[] = {"soft", "so ft"}, *const bad2[] = {"total"},
                      *const bad3[] = {"soft", "soft"};
    p = path_in("bad.csv");
    ok(curve_log_open(&c, p, bad1, 2, "accuracy", CURVE_LOG_FRESH, 1, &err) == -1 &&
       strstr(err.msg, "got 'so ft'"), "term with a space rejected");
    ok(curve_log_open(&c, p, bad2, 1, "accuracy", CURVE_LOG_FRESH, 1, &err) == -1 &&
       strstr(err.msg, "other than 'total'"), "term 'total' rejected");
    ok(curve_log_open(&c, p, bad3, 2, "accuracy", CURVE_LOG_FRESH, 1, &err) == -1 &&
       strstr(err.msg, "'soft' appears twice"), "duplicate term rejected");
    ok(curve_log_open(&c, p, terms, 2, "dev,x", CURVE_LOG_FRESH, 1, &err) == -1 &&
       strstr(err.msg, "dev metric name"), "dev metric with a comma rejected");
    ok(!fs_file_exists(p), "no file left by a rejected open");
    free(p);
}

/* Rows reach the file every flush_every rows, and at once when they carry
 * a dev value, without closing. */
static void test_flush(void)
{
    struct curve_log c;
    struct kd_err err;
    char *p = path_in("flush.csv");
    if (curve_log_open(&c, p, terms, 2, "accuracy", CURVE_LOG_FRESH, 3, &err) != 0)
        bail_out("%s", err.msg);
    size_t header = strlen("step,epoch,lr,loss_soft,loss_hidden,loss_total,dev_accuracy\n");
    write_steps(&c, 1, 2);
    char *text = slurp(p);
    ok(strlen(text) == header, "2 rows with flush_every 3: still buffered");
    free(text);
    write_steps(&c, 3, 3);
    text = slurp(p);
    ok(strstr(text, "\n3,0.75,") != NULL, "third row: flushed");
    free(text);
    write_steps(&c, 4, 5);
    text = slurp(p);
    ok(strstr(text, "\n5,1.25,") != NULL, "a row with a dev value is flushed at once");
    free(text);
    curve_log_close(&c, &err);
    free(p);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/t_curves.XXXXXX");
    if (!mkdtemp(dir))
        bail_out("mkdtemp failed");
    test_fresh_and_read();
    test_resume_equals_uninterrupted();
    test_resume_errors();
    test_flush();
    const char *names[] = {"full.csv", "resumed.csv", "errors.csv", "lost.csv", "flush.csv"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *p = path_in(names[i]);
        remove(p);
        free(p);
    }
    if (rmdir(dir) != 0)
        diag("left %s behind", dir);
    return done_testing();
}
