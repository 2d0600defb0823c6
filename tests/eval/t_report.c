/* t_report.c: the evaluation report's exact Markdown and CSV text (a
 * binary classification report of three models, a regression one with a
 * model name that needs Markdown escaping and CSV quoting), the atomic
 * files, the log copy (rank 0 only), and the consistency errors. The
 * expected text was written by hand from the formats in report.h. */
#include "kd/eval/report.h"
#include "kd/core/fsutil.h"
#include "kd/core/log.h"
#include "../tap.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct eval_scores binary(double acc, double f1, double mcc)
{
    struct eval_scores s = {.task = EVAL_TASK_CLASSIFICATION, .num_classes = 2, .n = 872,
                            .n_metrics = 3,
                            .metric = {EVAL_METRIC_ACCURACY, EVAL_METRIC_F1, EVAL_METRIC_MCC},
                            .value = {acc, f1, mcc}};
    return s;
}

static void glue_rows(struct report_row r[3])
{
    r[0] = (struct report_row){"teacher", 109483778, 437935112u, 812.34,
                               binary(0.924311927, 0.925110132, 0.848606446)};
    r[1] = (struct report_row){"student (distilled)", 14350874, 57403496u, 9876.4,
                               binary(0.9, 0.9022, 0.80034)};
    r[2] = (struct report_row){"student (no KD)", 14350874, 57403496u, 9901.3,
                               binary(0.85, 0.86, 0.7)};
}

static const char want_md[] =
    "## SST-2 dev\n"
    "\n"
    "| model               | parameters | size (MB) | tokens/s | accuracy* |     F1 |    MCC |\n"
    "|---------------------|-----------:|----------:|---------:|----------:|-------:|-------:|\n"
    "| teacher             |  109483778 |     437.9 |      812 |    0.9243 | 0.9251 | 0.8486 |\n"
    "| student (distilled) |   14350874 |      57.4 |     9876 |    0.9000 | 0.9022 | 0.8003 |\n"
    "| student (no KD)     |   14350874 |      57.4 |     9901 |    0.8500 | 0.8600 | 0.7000 |\n"
    "\n"
    "\\* primary metric. 872 examples; MB = 10^6 bytes.\n";

static const char want_csv[] =
    "model,parameters,size_mb,tokens_per_s,accuracy,f1,mcc,examples\n"
    "teacher,109483778,437.935112,812.3,0.924311927,0.925110132,0.848606446,872\n"
    "student (distilled),14350874,57.403496,9876.4,0.9,0.9022,0.80034,872\n"
    "student (no KD),14350874,57.403496,9901.3,0.85,0.86,0.7,872\n";

static void test_text(void)
{
    struct report_row r[3];
    struct kd_err err;
    glue_rows(r);
    char *md = report_markdown(r, 3, "SST-2 dev", &err);
    ok_str(md ? md : err.msg, want_md, "Markdown: padded table, primary marked, footnote");
    free(md);
    char *csv = report_csv(r, 3, &err);
    ok_str(csv ? csv : err.msg, want_csv, "CSV: exact sizes, %%.9g metrics, example count");
    free(csv);

    /* regression, computed scores, and a name that needs escaping */
    const float x[] = {0.5f, 2.0f, 1.0f, 3.5f, 2.0f, 4.0f, 0.0f, 2.5f};
    const float y[] = {1.0f, 1.5f, 1.0f, 3.0f, 2.5f, 5.0f, -1.0f, 2.0f};
    struct report_row g = {"a|b, \"c\"", 1000, 4000u, 1.5e6, {0}};
    if (eval_scores_compute(&g.scores, EVAL_TASK_REGRESSION, 1, NULL, NULL, x, y, 8, &err))
        bail_out("%s", err.msg);
    md = report_markdown(&g, 1, NULL, &err);
    ok_str(md ? md : err.msg,
           "| model     | parameters | size (MB) | tokens/s | Pearson* | Spearman |\n"
           "|-----------|-----------:|----------:|---------:|---------:|---------:|\n"
           "| a\\|b, \"c\" |       1000 |       0.0 |  1500000 |   0.9307 |   0.9518 |\n"
           "\n"
           "\\* primary metric. 8 examples; MB = 10^6 bytes.\n",
           "Markdown: regression columns, '|' escaped, no title line");
    free(md);
    csv = report_csv(&g, 1, &err);
    ok_str(csv ? csv : err.msg,
           "model,parameters,size_mb,tokens_per_s,pearson,spearman,examples\n"
           "\"a|b, \"\"c\"\"\",1000,0.004000,1500000.0,0.930700324,0.951807229,8\n",
           "CSV: regression columns, RFC 4180 quoting of the name");
    free(csv);
}

static void test_errors(void)
{
    struct report_row r[3];
    struct kd_err err;
    glue_rows(r);
    ok(report_markdown(r, 0, NULL, &err) == NULL &&
       strstr(err.msg, "expected at least one model row, got 0"), "no rows: %s", err.msg);
    r[2].scores.n = 871;
    ok(report_csv(r, 3, &err) == NULL &&
       strstr(err.msg, "row 'student (no KD)': expected the 872 examples of row 'teacher', "
                       "got 871"), "different example counts: %s", err.msg);
    glue_rows(r);
    r[1].scores.num_classes = 3;
    r[1].scores.n_metrics = 2;
    r[1].scores.metric[1] = EVAL_METRIC_MCC;
    ok(report_markdown(r, 3, NULL, &err) == NULL &&
       strstr(err.msg, "row 'student (distilled)': expected the task and metrics of row "
                       "'teacher' (task 0, 2 classes), got task 0, 3 classes"),
       "different metrics: %s", err.msg);
    glue_rows(r);
    r[0].model = "two\nlines";
    ok(report_csv(r, 3, &err) == NULL && strstr(err.msg, "row 1: expected a one-line model "
                                                         "name"), "model name with a newline");
    glue_rows(r);
    r[2].scores.n_metrics = 0;
    ok(report_csv(r, 3, &err) == NULL && strstr(err.msg, "expected scores, got none"),
       "row without scores");
}

/* Number of entries in dir other than . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    if (d)
        closedir(d);
    return n;
}

static void test_files_and_log(void)
{
    char dir[] = "/tmp/t_report.XXXXXX";
    if (!mkdtemp(dir))
        bail_out("mkdtemp failed");
    char *md = fs_path_join(dir, "report.md"), *csv = fs_path_join(dir, "report.csv");
    struct report_row r[3];
    struct kd_err err;
    glue_rows(r);
    ok(report_write(md, csv, r, 3, "SST-2 dev", &err) == 0, "report_write");
    char *text;
    size_t len;
    ok(fs_file_read(md, &text, &len, &err) == 0 && !strcmp(text, want_md),
       "report.md holds the Markdown text");
    free(text);
    ok(fs_file_read(csv, &text, &len, &err) == 0 && !strcmp(text, want_csv),
       "report.csv holds the CSV text");
    free(text);
    ok(count_entries(dir) == 2, "no temp file left beside them");
    r[0].scores.n = 1;
    ok(report_write(md, csv, r, 3, NULL, &err) == -1 &&
       fs_file_read(md, &text, &len, &err) == 0 && !strcmp(text, want_md),
       "a rejected report leaves the old file as it was");
    free(text);
    glue_rows(r);

    /* the log copy: stdout into a file, timestamps off */
    char *logf = fs_path_join(dir, "log.txt");
    fflush(stdout);
    int saved = dup(1), fd = open(logf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (saved < 0 || fd < 0 || dup2(fd, 1) < 0)
        bail_out("cannot redirect stdout");
    log_set_timestamps(0);
    log_init(1, 2);
    int rc_other = report_log(r, 3, "SST-2 dev", &err);
    log_init(0, 2);
    int rc0 = report_log(r, 3, "SST-2 dev", &err);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    close(fd);
    ok(rc_other == 0 && rc0 == 0 && fs_file_read(logf, &text, &len, &err) == 0 &&
       !strcmp(text, want_md), "report_log prints the same table, on rank 0 only");
    free(text);
    remove(logf);
    remove(md);
    remove(csv);
    rmdir(dir);
    free(logf);
    free(md);
    free(csv);
}

int main(void)
{
    test_text();
    test_errors();
    test_files_and_log();
    return done_testing();
}
