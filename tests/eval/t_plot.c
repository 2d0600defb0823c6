/* t_plot.c: gnuplot PNGs of a curve CSV. With the real gnuplot: both PNGs
 * exist, start with the PNG signature and no temp file is left (these points
 * alone skip when gnuplot is not installed: Debian package gnuplot-nox).
 * Always, with stand-in executables: a missing gnuplot is a warning and no
 * failure; the generated scripts (log y axis only for positive losses, the
 * dev datablock holds only evaluated steps, quoting of titles); a failing
 * gnuplot is an error that keeps the script; an output that is not a PNG is
 * refused. */
#include "kd/eval/plot.h"
#include "kd/eval/curves.h"
#include "kd/core/fsutil.h"
#include "../tap.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static char *in_dir(const char *name)
{
    return fs_path_join(dir, name);
}

/* A curve CSV of n steps; dev every dev_every steps (0: never); the hidden
 * term goes negative at step 4 when negative is set (a cosine-style loss). */
static char *make_csv(const char *name, int n, int dev_every, int negative)
{
    static const char *const terms[] = {"soft", "hidden"};
    char *p = in_dir(name);
    struct curve_log c;
    struct kd_err err;
    if (curve_log_open(&c, p, terms, 2, "accuracy", CURVE_LOG_FRESH, 8, &err) != 0)
        bail_out("%s", err.msg);
    for (int s = 1; s <= n; s++) {
        double t[2] = {3.0 * exp(-0.1 * s), negative && s == 4 ? -0.5 : 1.0 / s};
        struct curve_row r = {.step = s, .epoch = s / 10.0, .lr = 1e-4, .terms = t,
                              .total = t[0] + t[1],
                              .has_dev = dev_every && s % dev_every == 0,
                              .dev = 0.5 + 0.01 * s};
        if (curve_log_append(&c, &r, &err) != 0)
            bail_out("%s", err.msg);
    }
    curve_log_close(&c, &err);
    return p;
}

static int is_png(const char *path)
{
    unsigned char head[8];
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    size_t n = fread(head, 1, 8, f);
    fclose(f);
    return n == 8 && !memcmp(head, "\x89PNG\r\n\x1a\n", 8);
}

/* Entries of dir whose name contains ".tmp." */
static int count_tmp(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

static char *slurp(const char *path)
{
    char *buf;
    size_t len;
    struct kd_err err;
    return fs_file_read(path, &buf, &len, &err) == 0 ? buf : kd_strdup("");
}

/* An executable shell script in dir. */
static char *make_exe(const char *name, const char *body)
{
    char *p = in_dir(name);
    FILE *f = fopen(p, "w");
    if (!f)
        bail_out("cannot write %s", p);
    fputs(body, f);
    fclose(f);
    chmod(p, 0755);
    return p;
}

static void test_real_gnuplot(void)
{
    unsetenv("KD_GNUPLOT");
    char *exe = plot_find_gnuplot();
    if (!exe) {
        skip(4, "gnuplot not installed (Debian package gnuplot-nox)");
        return;
    }
    diag("gnuplot: %s", exe);
    free(exe);
    char *csv = make_csv("run.csv", 40, 10, 0);
    char *loss = in_dir("loss.png"), *dev = in_dir("dev.png");
    struct plot_outcome o;
    struct kd_err err;
    int rc = plot_training_curves(csv, loss, dev, "distill 'x'", &o, &err);
    if (!ok(rc == 0 && o.loss_png && o.dev_png && !o.gnuplot_missing,
            "real gnuplot: both plots made"))
        diag("%s", err.msg);
    ok(is_png(loss) && is_png(dev), "loss.png and dev.png start with the PNG signature");
    ok(count_tmp() == 0, "no temp PNG or script left");
    remove(loss);
    remove(dev);

    /* without any dev value only the loss plot is made */
    char *nodev = make_csv("nodev.csv", 5, 0, 1);
    rc = plot_training_curves(nodev, loss, dev, NULL, &o, &err);
    ok(rc == 0 && o.loss_png && !o.dev_png && is_png(loss) && !fs_file_exists(dev),
       "no dev value: loss plot only (with a negative loss: linear axis)");
    remove(loss);
    remove(csv);
    remove(nodev);
    free(csv);
    free(nodev);
    free(loss);
    free(dev);
}

static void test_missing_gnuplot(void)
{
    char *csv = make_csv("missing.csv", 5, 5, 0);
    char *loss = in_dir("m_loss.png"), *dev = in_dir("m_dev.png");
    setenv("KD_GNUPLOT", "/nonexistent/gnuplot", 1);
    struct plot_outcome o;
    struct kd_err err;
    ok(plot_find_gnuplot() == NULL, "KD_GNUPLOT names a missing program: not found");
    ok(plot_training_curves(csv, loss, dev, NULL, &o, &err) == 0 && o.gnuplot_missing &&
       !o.loss_png && !o.dev_png && !fs_file_exists(loss) && !fs_file_exists(dev),
       "gnuplot missing: 0 (a warning naming gnuplot-nox), no PNG");
    /* PATH search: an empty PATH directory list finds nothing */
    unsetenv("KD_GNUPLOT");
    char *old = getenv("PATH") ? kd_strdup(getenv("PATH")) : NULL;
    setenv("PATH", "/nonexistent", 1);
    char *exe = plot_find_gnuplot();
    ok(exe == NULL, "PATH without gnuplot: not found");
    free(exe);
    if (old) {
        setenv("PATH", old, 1);
        free(old);
    }
    remove(csv);
    free(csv);
    free(loss);
    free(dev);
}

/* A stand-in that keeps a copy of each script and writes a PNG signature to
 * the script's output name (read from its "set output" line). */
static const char fake_ok[] =
    "#!/bin/sh\n"
    "test \"$1\" = -d || exit 3\n"
    "n=$(ls \"$FAKE_DIR\" | grep -c '^script')\n"
    "cp \"$2\" \"$FAKE_DIR/script$n.gp\"\n"
    "out=$(sed -n \"s/^set output '\\(.*\\)'\\$/\\1/p\" \"$2\")\n"
    "printf '\\211PNG\\r\\n\\032\\n' > \"$out\"\n";

static void test_scripts(void)
{
    char *fake = make_exe("fake_gnuplot", fake_ok);
    char fake_dir[128];
    snprintf(fake_dir, sizeof fake_dir, "%s/scripts", dir);
    mkdir(fake_dir, 0755);
    setenv("FAKE_DIR", fake_dir, 1);
    setenv("KD_GNUPLOT", fake, 1);
    char *csv = make_csv("s.csv", 12, 5, 0), *neg = make_csv("neg.csv", 6, 0, 1);
    char *loss = in_dir("s_loss.png"), *dev = in_dir("s_dev.png");
    struct plot_outcome o;
    struct kd_err err;
    int rc = plot_training_curves(csv, loss, dev, "it's", &o, &err);
    if (!ok(rc == 0 && o.loss_png && o.dev_png && is_png(loss) && is_png(dev),
            "stand-in gnuplot: both outputs renamed into place"))
        diag("%s", err.msg);
    char p0[160], p1[160];
    snprintf(p0, sizeof p0, "%s/script0.gp", fake_dir);
    snprintf(p1, sizeof p1, "%s/script1.gp", fake_dir);
    char *s0 = slurp(p0), *s1 = slurp(p1);
    ok(strstr(s0, "set terminal pngcairo size 960,600") && strstr(s0, "set terminal png ") &&
       strstr(s0, "set title 'it''s: training loss'") && strstr(s0, "set logscale y\n"),
       "loss script: pngcairo with png fallback, quoted title, log y for positive losses");
    ok(strstr(s0, "\n1 2.71451225 1 3.71451225\n") &&
       strstr(s0, "title 'soft', $loss using 1:3 with lines lw 1 title 'hidden', $loss "
                  "using 1:4 with lines lw 2 title 'total'"),
       "loss script: every loss column, the total drawn thicker");
    ok(strstr(s1, "$dev << EOD\n5 0.55\n10 0.6\nEOD\n") &&
       strstr(s1, "set title 'it''s: dev accuracy'"),
       "dev script: only the evaluated steps (5, 10), so the line is unbroken");
    free(s0);
    free(s1);
    remove(p0);
    remove(p1);

    rc = plot_training_curves(neg, loss, NULL, NULL, &o, &err);
    s0 = slurp(p0);
    ok(rc == 0 && o.loss_png && !o.dev_png && !strstr(s0, "logscale") &&
       strstr(s0, "set title 'training loss'") && strstr(s0, "\n4 2.01096014 -0.5 1.51096014\n"),
       "a negative loss value: linear y axis; no title prefix without a title");
    free(s0);
    remove(p0);
    remove(loss);
    remove(dev);

    /* gnuplot fails: error with its message, script kept, no output */
    char *bad = make_exe("bad_gnuplot", "#!/bin/sh\necho 'line 7: undefined variable: x' >&2\n"
                                        "exit 1\n");
    setenv("KD_GNUPLOT", bad, 1);
    rc = plot_training_curves(csv, loss, NULL, NULL, &o, &err);
    ok(rc == -1 && strstr(err.msg, "exit status 1: line 7: undefined variable: x") &&
       strstr(err.msg, "s_loss.png.tmp.") && !o.loss_png && !fs_file_exists(loss),
       "failing gnuplot: -1 with its stderr and the kept script's name");
    ok(count_tmp() == 1, "only the script is kept");

    /* output that is not a PNG is refused */
    char *junk = make_exe("junk_gnuplot",
                          "#!/bin/sh\nout=$(sed -n \"s/^set output '\\(.*\\)'\\$/\\1/p\" \"$2\")\n"
                          "echo text > \"$out\"\n");
    setenv("KD_GNUPLOT", junk, 1);
    rc = plot_training_curves(csv, loss, NULL, NULL, &o, &err);
    ok(rc == -1 && strstr(err.msg, "is not a PNG") && !fs_file_exists(loss),
       "output without the PNG signature: -1, nothing renamed");
    ok(plot_training_curves("/nonexistent.csv", loss, NULL, NULL, &o, &err) == -1 &&
       strstr(err.msg, "/nonexistent.csv: cannot open"), "missing CSV: %s", err.msg);
    unsetenv("KD_GNUPLOT");

    /* clean up everything this test made */
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            !strcmp(e->d_name, "scripts"))
            continue;
        char *p = in_dir(e->d_name);
        remove(p);
        free(p);
    }
    if (d)
        closedir(d);
    rmdir(fake_dir);
    free(fake);
    free(bad);
    free(junk);
    free(csv);
    free(neg);
    free(loss);
    free(dev);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/t_plot.XXXXXX");
    if (!mkdtemp(dir))
        bail_out("mkdtemp failed");
    test_real_gnuplot();
    test_missing_gnuplot();
    test_scripts();
    if (rmdir(dir) != 0)
        diag("left %s behind", dir);
    return done_testing();
}
