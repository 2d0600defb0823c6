/* t_job_config.c: job-file reading and validation.
 * - every file in tests/job/bad/ must fail with exactly the messages listed
 *   in its "# expect:" lines (FILE = the file's path), in order;
 * - every job in jobs/ must be valid;
 * - --set overrides, defaults, and the resolved-file round trip. */
#include "kd/job/job.h"
#include "kd/job/keys.h"
#include "../tap.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *srcdir(void)
{
    const char *s = getenv("KD_SRCDIR");
    return s ? s : ".";
}

/* Expected messages from the "# expect: " lines of a bad job file. */
static int read_expectations(const char *path, char lines[][4096], int max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char buf[2048];
    int n = 0;
    while (fgets(buf, sizeof buf, f) && n < max) {
        const char *tag = "# expect: ";
        if (strncmp(buf, tag, strlen(tag)) != 0)
            continue;
        buf[strcspn(buf, "\n")] = '\0';
        /* FILE stands for the path the job was opened with */
        const char *rest = buf + strlen(tag);
        if (strncmp(rest, "FILE", 4) == 0)
            snprintf(lines[n++], 4096, "%.2000s%.2000s", path, rest + 4);
        else
            snprintf(lines[n++], 4096, "%.4000s", rest);
    }
    fclose(f);
    return n;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted list of *.cfg in a directory. */
static int list_cfgs(const char *dir, char ***out)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char **names = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len > 4 && strcmp(e->d_name + len - 4, ".cfg") == 0) {
            names = realloc(names, (size_t)(n + 1) * sizeof *names);
            names[n] = malloc(strlen(dir) + len + 2);
            sprintf(names[n++], "%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    *out = names;
    return n;
}

static void test_bad_files(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/job/bad", srcdir());
    char **files;
    int n = list_cfgs(dir, &files);
    ok(n >= 20, "at least 20 malformed job files (found %d)", n);
    static char want[32][4096];
    for (int i = 0; i < n; i++) {
        int nw = read_expectations(files[i], want, 32);
        struct job job;
        struct job_errors errs = {0};
        int rc = job_load(&job, files[i], NULL, 0, &errs);
        int same = rc == -1 && nw > 0 && errs.n == nw;
        for (int k = 0; same && k < nw; k++)
            same = strcmp(errs.msgs[k], want[k]) == 0;
        const char *base = strrchr(files[i], '/') + 1;
        if (!ok(same, "%s: rejected with the %d expected message(s)", base, nw)) {
            for (int k = 0; k < nw; k++)
                diag("want: %s", want[k]);
            for (int k = 0; k < errs.n; k++)
                diag("got:  %s", errs.msgs[k]);
        }
        job_errors_free(&errs);
        job_free(&job);
        free(files[i]);
    }
    free(files);
}

static void test_good_jobs(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/jobs", srcdir());
    char **files;
    int n = list_cfgs(dir, &files);
    ok(n >= 3, "jobs/ holds the shipped jobs (found %d)", n);
    for (int i = 0; i < n; i++) {
        struct job job;
        struct job_errors errs = {0};
        int rc = job_load(&job, files[i], NULL, 0, &errs);
        if (!ok(rc == 0 && errs.n == 0, "%s is valid", strrchr(files[i], '/') + 1))
            for (int k = 0; k < errs.n; k++)
                diag("%s", errs.msgs[k]);
        job_errors_free(&errs);
        job_free(&job);
        free(files[i]);
    }
    free(files);
}

static int load_demo(struct job *job, const char *const *sets, int n, struct job_errors *errs)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/jobs/demo.cfg", srcdir());
    return job_load(job, path, sets, n, errs);
}

static void test_overrides(void)
{
    struct job job;
    struct job_errors errs = {0};
    const char *sets[] = {"stages.[3].lr=2e-4", "stages.distill.epochs=7",
                          "data.max_seq_len=48", "job.name=renamed",
                          "stages.distill.losses.[1].temperature=3.5"};
    int rc = load_demo(&job, sets, 5, &errs);
    ok(rc == 0, "demo with five --set overrides is valid");
    const struct stage_cfg *d = job_find_stage(&job, "distill");
    ok(d && d->lr == 2e-4, "--set stages.[3].lr=2e-4 sets the lr by index");
    ok(d && d->epochs == 7.0, "--set stages.distill.epochs=7 addresses a stage by name");
    ok(job.data.max_seq_len == 48, "--set data.max_seq_len=48");
    ok_str(job.job.name, "renamed", "--set job.name=renamed takes a bare word as a string");
    ok(d && d->n_losses == 4 && d->losses[1].temperature == 3.5,
       "--set reaches into a loss term");
    ok_str(job.job.output_dir, "runs/demo", "output_dir from the file is kept");
    job_errors_free(&errs);
    job_free(&job);

    const char *bad[] = {"stages.[2].lr=fast", "data.max_seqlen=3", "nonsense",
                         "stages.[9].lr=1", "teacher.heads=[1,2]"};
    rc = load_demo(&job, bad, 5, &errs);
    ok(rc == -1 && errs.n == 5, "five bad --set values give five errors (got %d)", errs.n);
    const char *want[] = {
        "--set stages.[2].lr=fast: setting stages.[2].lr: expected number in [0, 10], got "
        "string \"fast\"",
        "--set data.max_seqlen=3: setting data.max_seqlen: unknown key; did you mean "
        "data.max_seq_len?",
        "--set nonsense: expected PATH=VALUE, e.g. --set stages.[1].lr=1e-4",
        "--set stages.[9].lr=1: \"[9]\" names no entry of the list here",
        "--set teacher.heads=[1,2]: setting teacher.heads: expected integer in [1, 1024], got "
        "an array [ ... ]"};
    for (int i = 0; i < 5; i++) {
        int found = 0;
        for (int k = 0; k < errs.n; k++)
            found |= strcmp(errs.msgs[k], want[i]) == 0;
        if (!ok(found, "--set error %d is reported as expected", i + 1)) {
            diag("want: %s", want[i]);
            for (int k = 0; k < errs.n; k++)
                diag("got:  %s", errs.msgs[k]);
        }
    }
    job_errors_free(&errs);
    job_free(&job);
}

static void test_defaults_and_resolved(void)
{
    struct job job;
    struct job_errors errs = {0};
    ok(load_demo(&job, NULL, 0, &errs) == 0, "demo job loads");
    ok(job.data.lowercase && job.job.checkpoint_every == 500 && job.stages[0].beta2 == 0.999,
       "defaults are filled in from the key table");
    ok(job.stages[1].outputs.n == 3 && job.stages[1].outputs.v[2] == EXTRACT_ATTENTION,
       "enum lists are read in order");
    char dir[] = "/tmp/kd_t_job_XXXXXX";
    ok(mkdtemp(dir) != NULL, "temporary directory");
    char p1[256], p2[256];
    snprintf(p1, sizeof p1, "%s/a.cfg", dir);
    snprintf(p2, sizeof p2, "%s/b.cfg", dir);
    char err[512];
    ok(job_write_resolved(&job, p1, err, sizeof err) == 0, "resolved configuration written");
    struct job again;
    struct job_errors errs2 = {0};
    int rc = job_load(&again, p1, NULL, 0, &errs2);
    if (!ok(rc == 0, "the resolved file is itself a valid job"))
        for (int k = 0; k < errs2.n; k++)
            diag("%s", errs2.msgs[k]);
    ok(job_write_resolved(&again, p2, err, sizeof err) == 0, "resolved file re-resolved");
    /* identical after the header comment that names the source file */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cmp -s <(tail -n +3 %s) <(tail -n +3 %s)", p1, p2);
    char sh[800];
    snprintf(sh, sizeof sh, "bash -c '%s'", cmd);
    ok(system(sh) == 0, "resolving is idempotent (same keys and values)");
    ok(again.stages[3].losses[1].temperature == 2.0 && again.teacher.pipeline_stages == 2,
       "values survive the round trip");
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp", dir);
    FILE *pp = popen(cmd, "r");
    int tmp_left = -1;
    if (pp) {
        if (fscanf(pp, "%d", &tmp_left) != 1)
            tmp_left = -1;
        pclose(pp);
    }
    ok(tmp_left == 0, "no temporary file left behind");
    unlink(p1);
    unlink(p2);
    rmdir(dir);
    job_errors_free(&errs2);
    job_free(&again);
    job_errors_free(&errs);
    job_free(&job);
}

/* The soft loss's form, the attention loss's rows and the projection
 * initialisation: defaults, --set, and the resolved-file round trip. */
static void test_loss_forms(void)
{
    struct job job;
    struct job_errors errs = {0};
    ok(load_demo(&job, NULL, 0, &errs) == 0, "demo job loads");
    const struct stage_cfg *d = job_find_stage(&job, "distill");
    ok(d && d->losses[1].form == SOFT_FORM_KL && d->losses[3].rows == ATTENTION_ROWS_REAL &&
           job.student.init_projections == PROJECTION_INIT_RANDOM,
       "defaults: form \"kl\", rows \"real\", init_projections \"random\"");
    job_errors_free(&errs);
    job_free(&job);

    const char *sets[] = {"stages.distill.losses.[1].form=ce",
                          "stages.distill.losses.[3].rows=all",
                          "student.init_projections=lstsq"};
    int rc = load_demo(&job, sets, 3, &errs);
    if (!ok(rc == 0, "--set form=ce, rows=all, init_projections=lstsq is valid"))
        for (int k = 0; k < errs.n; k++)
            diag("%s", errs.msgs[k]);
    d = job_find_stage(&job, "distill");
    ok(d && d->losses[1].form == SOFT_FORM_CE, "form = \"ce\" reaches the soft loss");
    ok(d && d->losses[3].rows == ATTENTION_ROWS_ALL, "rows = \"all\" reaches the attention loss");
    ok(job.student.init_projections == PROJECTION_INIT_LSTSQ, "init_projections = \"lstsq\"");
    char dir[] = "/tmp/kd_t_job_XXXXXX";
    ok(mkdtemp(dir) != NULL, "temporary directory");
    char p1[256], err[512];
    snprintf(p1, sizeof p1, "%s/r.cfg", dir);
    ok(job_write_resolved(&job, p1, err, sizeof err) == 0, "resolved configuration written");
    struct job again;
    struct job_errors errs2 = {0};
    rc = job_load(&again, p1, NULL, 0, &errs2);
    const struct stage_cfg *a = rc == 0 ? job_find_stage(&again, "distill") : NULL;
    ok(a && a->losses[1].form == SOFT_FORM_CE && a->losses[3].rows == ATTENTION_ROWS_ALL &&
           again.student.init_projections == PROJECTION_INIT_LSTSQ,
       "form, rows and init_projections survive the resolved file");
    unlink(p1);
    rmdir(dir);
    job_errors_free(&errs2);
    job_free(&again);
    job_errors_free(&errs);
    job_free(&job);
}

static void test_suggestions(void)
{
    ok(edit_distance("kitten", "sitting") == 3, "edit distance kitten/sitting = 3");
    const struct key_def *k = key_suggest("stages.[].temprature");
    ok(!k || strcmp(k->path, "stages.[].losses.[].temperature") != 0,
       "suggestions stay within the section");
    k = key_suggest("stages.[].losses.[].temprature");
    ok(k && strcmp(k->path, "stages.[].losses.[].temperature") == 0,
       "temprature -> temperature");
    ok(key_suggest("data.completely_unrelated") == NULL, "no suggestion for a far-off key");
}

int main(void)
{
    test_bad_files();
    test_good_jobs();
    test_overrides();
    test_defaults_and_resolved();
    test_loss_forms();
    test_suggestions();
    return done_testing();
}
