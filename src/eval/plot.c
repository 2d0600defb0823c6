/* plot.c: loss and dev-metric PNGs from a training-curve CSV by a generated
 * gnuplot script (contract in include/kd/eval/plot.h). */
#include "kd/eval/plot.h"
#include "kd/eval/curves.h"
#include "kd/core/fsutil.h"
#include "kd/core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define PLOT_PACKAGE "gnuplot-nox"

char *plot_find_gnuplot(void)
{
    const char *env = getenv("KD_GNUPLOT");
    if (env && env[0])
        return access(env, X_OK) == 0 ? kd_strdup(env) : NULL;
    const char *path = getenv("PATH");
    if (!path || !path[0])
        path = "/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        char *dir = kd_malloc(n + 1);
        memcpy(dir, p, n);
        dir[n] = '\0';
        char *exe = fs_path_join(n ? dir : ".", "gnuplot");
        free(dir);
        if (access(exe, X_OK) == 0 && fs_file_exists(exe))
            return exe;
        free(exe);
        if (!colon)
            return NULL;
        p = colon + 1;
    }
}

/* A gnuplot single-quoted string: only ' needs escaping (as ''), and a
 * newline would end the command, so it becomes a space. */
static void put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("''", f);
        else
            fputc(*s == '\n' || *s == '\r' ? ' ' : *s, f);
    }
    fputc('\'', f);
}

static void put_value(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, " %.9g", v);
    else
        fputs(" NaN", f); /* declared missing below: the point is skipped */
}

/* Terminal, output and the common settings. */
static void script_head(FILE *f, const char *tmp_png, const char *title, const char *what,
                        const char *ylabel)
{
    fputs("if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {\n"
          "  set terminal pngcairo size 960,600 noenhanced\n"
          "} else {\n"
          "  set terminal png size 960,600 noenhanced\n"
          "}\n", f);
    fputs("set output ", f);
    put_quoted(f, tmp_png);
    fputs("\nset title ", f);
    char *t = kd_malloc(strlen(title ? title : "") + strlen(what) + 3);
    sprintf(t, "%s%s%s", title && title[0] ? title : "", title && title[0] ? ": " : "", what);
    put_quoted(f, t);
    free(t);
    fputs("\nset xlabel 'step'\nset ylabel ", f);
    put_quoted(f, ylabel);
    fputs("\nset grid\nset key top right\nset datafile missing 'NaN'\n", f);
}

/* Loss script: one datablock with step and every loss_* column. */
static int loss_script(FILE *f, const struct curve_table *t, int step_col, const char *tmp_png,
                       const char *title)
{
    int cols[CURVE_LOG_MAX_TERMS + 1], n = 0, positive = 1, any = 0;
    for (int j = 0; j < t->n_cols && n < CURVE_LOG_MAX_TERMS + 1; j++)
        if (!strncmp(t->names[j], "loss_", 5))
            cols[n++] = j;
    if (n == 0 || t->n_rows == 0)
        return 0;
    for (int64_t i = 0; i < t->n_rows; i++)
        for (int k = 0; k < n; k++) {
            double v = t->v[i * t->n_cols + cols[k]];
            if (isfinite(v)) {
                any = 1;
                positive &= v > 0.0;
            }
        }
    if (!any)
        return 0;
    script_head(f, tmp_png, title, "training loss", positive ? "loss (log scale)" : "loss");
    if (positive)
        fputs("set logscale y\n", f);
    fputs("$loss << EOD\n", f);
    for (int64_t i = 0; i < t->n_rows; i++) {
        const double *row = t->v + i * t->n_cols;
        fprintf(f, "%.0f", row[step_col]);
        for (int k = 0; k < n; k++)
            put_value(f, row[cols[k]]);
        fputc('\n', f);
    }
    fputs("EOD\nplot ", f);
    for (int k = 0; k < n; k++) {
        const char *name = t->names[cols[k]] + 5;
        int total = !strcmp(name, "total");
        fprintf(f, "%s$loss using 1:%d with lines lw %d title ", k ? ", " : "", k + 2,
                total ? 2 : 1);
        put_quoted(f, name);
    }
    fputc('\n', f);
    return 1;
}

/* Dev script: only the rows with a dev value, so the line is unbroken. */
static int dev_script(FILE *f, const struct curve_table *t, int step_col, const char *tmp_png,
                      const char *title)
{
    int col = -1;
    for (int j = 0; j < t->n_cols; j++)
        if (!strncmp(t->names[j], "dev_", 4))
            col = j;
    if (col < 0)
        return 0;
    int64_t have = 0;
    for (int64_t i = 0; i < t->n_rows; i++)
        have += isfinite(t->v[i * t->n_cols + col]);
    if (have == 0)
        return 0;
    const char *metric = t->names[col] + 4;
    char *what = kd_malloc(strlen(metric) + 8);
    sprintf(what, "dev %s", metric);
    script_head(f, tmp_png, title, what, what);
    free(what);
    fputs("$dev << EOD\n", f);
    for (int64_t i = 0; i < t->n_rows; i++) {
        const double *row = t->v + i * t->n_cols;
        if (isfinite(row[col]))
            fprintf(f, "%.0f %.9g\n", row[step_col], row[col]);
    }
    fputs("EOD\nplot $dev using 1:2 with linespoints pt 7 ps 0.6 title ", f);
    put_quoted(f, metric);
    fputc('\n', f);
    return 1;
}

/* Runs `gnuplot -d script` with stdin from /dev/null and stderr into a
 * pipe; reads stderr to the end before waiting, so a chatty gnuplot cannot
 * block on a full pipe. Returns 0, or -1 with the status and stderr text. */
static int run_gnuplot(const char *exe, const char *script, struct kd_err *err)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return kd_errf(err, "gnuplot: pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    posix_spawn_file_actions_addclose(&fa, pfd[0]);
    posix_spawn_file_actions_addclose(&fa, pfd[1]);
    char *argv[] = {(char *)exe, "-d", (char *)script, NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, exe, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (rc != 0) {
        close(pfd[0]);
        return kd_errf(err, "%s: cannot start: %s", exe, strerror(rc));
    }
    char text[1024];
    size_t got = 0;
    for (;;) {
        char chunk[4096];
        ssize_t r = read(pfd[0], chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t take = (size_t)r < sizeof text - 1 - got ? (size_t)r : sizeof text - 1 - got;
        memcpy(text + got, chunk, take);
        got += take;
    }
    text[got] = '\0';
    close(pfd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return kd_errf(err, "%s: waitpid: %s", exe, strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        return kd_errf(err, "%s -d %s: exit status %d: %s", exe, script, WEXITSTATUS(status),
                       got ? text : "(no message)");
    return kd_errf(err, "%s -d %s: killed by signal %d", exe, script,
                   WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

static int has_png_signature(const char *path)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8];
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    return n == sizeof head && memcmp(head, sig, sizeof sig) == 0;
}

typedef int (*script_fn)(FILE *, const struct curve_table *, int, const char *, const char *);

/* One plot: script to a temp file, gnuplot, signature check, rename.
 * *made = 0 when the data give nothing to plot. */
static int plot_one(const char *exe, const struct curve_table *t, int step_col,
                    script_fn make, const char *png, const char *title, bool *made,
                    struct kd_err *err)
{
    *made = false;
    size_t n = strlen(png) + 48;
    char *tmp_png = kd_malloc(n), *gp = kd_malloc(n);
    snprintf(tmp_png, n, "%s.tmp.%ld.png", png, (long)getpid());
    snprintf(gp, n, "%s.tmp.%ld.gp", png, (long)getpid());
    int rc = -1;
    FILE *f = fopen(gp, "w");
    if (!f) {
        kd_errf(err, "%s: cannot create: %s", gp, strerror(errno));
        goto done;
    }
    int any = make(f, t, step_col, tmp_png, title);
    if (ferror(f) | (fclose(f) != 0)) {
        kd_errf(err, "%s: write failed: %s", gp, strerror(errno));
        remove(gp);
        goto done;
    }
    if (!any) {
        remove(gp);
        rc = 0;
        goto done;
    }
    if (run_gnuplot(exe, gp, err) != 0) {
        kd_err_prefix(err, "plot %s (script kept)", png);
        remove(tmp_png);
        goto done;
    }
    if (!has_png_signature(tmp_png)) {
        kd_errf(err, "plot %s: gnuplot succeeded but %s is not a PNG (script kept: %s)", png,
                tmp_png, gp);
        remove(tmp_png);
        goto done;
    }
    if (rename(tmp_png, png) != 0) {
        kd_errf(err, "%s: cannot rename %s: %s", png, tmp_png, strerror(errno));
        remove(tmp_png);
        goto done;
    }
    remove(gp);
    *made = true;
    rc = 0;
done:
    free(tmp_png);
    free(gp);
    return rc;
}

int plot_training_curves(const char *csv_path, const char *loss_png, const char *dev_png,
                         const char *title, struct plot_outcome *out, struct kd_err *err)
{
    struct plot_outcome local;
    if (!out)
        out = &local;
    *out = (struct plot_outcome){0};
    struct curve_table t;
    if (curve_table_read(&t, csv_path, err) != 0)
        return -1;
    int rc = -1, step_col = curve_table_column(&t, "step");
    char *exe = NULL;
    if (step_col < 0) {
        kd_errf(err, "%s:1: expected a 'step' column in the header, got none", csv_path);
        goto done;
    }
    exe = plot_find_gnuplot();
    if (!exe) {
        const char *env = getenv("KD_GNUPLOT");
        log_warn("plots of %s skipped: gnuplot not found (%s%s); install the Debian package "
                 PLOT_PACKAGE, csv_path, env && env[0] ? "KD_GNUPLOT=" : "searched PATH",
                 env && env[0] ? env : "");
        out->gnuplot_missing = true;
        rc = 0;
        goto done;
    }
    if (loss_png) {
        if (plot_one(exe, &t, step_col, loss_script, loss_png, title, &out->loss_png, err))
            goto done;
        if (!out->loss_png)
            log_info("%s: no loss values, %s not written", csv_path, loss_png);
    }
    if (dev_png) {
        if (plot_one(exe, &t, step_col, dev_script, dev_png, title, &out->dev_png, err))
            goto done;
        if (!out->dev_png)
            log_info("%s: no dev evaluation yet, %s not written", csv_path, dev_png);
    }
    rc = 0;
done:
    free(exe);
    curve_table_free(&t);
    return rc;
}
