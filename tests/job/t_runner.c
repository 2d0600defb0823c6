/* t_runner.c: the stage runner and its manifest (job/stage.h,
 * job/manifest.h), with fake stage implementations in a test registry:
 *   extract  reads a user file, writes teacher.txt (depends on its config)
 *   distill  reads teacher.txt, trains 10 "steps" with a training-state
 *            checkpoint (io/train_state.h), writes student.txt
 *   evaluate reads student.txt, writes eval.txt
 *   export   reads student.txt, writes export/student.txt
 * Checked: order; skip when up to date; a config change invalidates the
 * stage and, through its new output, its dependants; a changed input file
 * invalidates, a touched one does not; --stage runs one stage (even up to
 * date) and refuses when its input is missing, naming the producer;
 * --force; an interrupted stage is not recorded as finished and --resume
 * continues it (resume=1) to a bitwise-identical result; --resume refuses
 * after a config change; a deleted or edited output triggers a re-run; a
 * stage that does not write a declared output fails; a stage not in the
 * registry is reported and skipped; the manifest is valid JSON with the
 * recorded digests, no temp file is left, a failed write leaves the old
 * manifest byte for byte, a corrupted manifest is refused (and replaced
 * under --force); a real SIGUSR1 stops the job (last, since the signal
 * flag cannot be cleared). Runs on one rank (MPI singleton) and, through
 * tests/job/runner_mpi.sh, on two: rank 0 alone touches files (as real
 * stages do) and every rank checks the decisions it received, so a rank
 * that disagrees fails its own exit status; ranks > 0 keep their TAP
 * output to themselves. */
#include "kd/job/stage.h"
#include "kd/cli/exit_codes.h"
#include "kd/core/fsutil.h"
#include "kd/core/log.h"
#include "kd/core/signals.h"
#include "kd/io/train_state.h"
#include "kd/job/manifest.h"
#include "../tap.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static struct comm comm;
static char tmp[64], cfg_path[128], train_path[128], out_dir[128];

/* what the fakes did */
static char order[256];
static int interrupt_at = -1; /* distill returns KD_EXIT_INTERRUPTED at this step */
static int raise_at = -1;     /* distill raises SIGUSR1 at this step */
static int skip_eval_output;  /* evaluate "forgets" its output */
static int resumed_from = -1; /* step distill resumed from */

/* ---- helpers -------------------------------------------------------------- */

/* Every file the test or a fake stage writes or removes goes through
 * rank 0, as in the real stages; run_job's barrier orders it before the
 * next run on every rank. */
static void write_text(const char *path, const char *text)
{
    struct kd_err err;
    if (comm.rank == 0 && fs_file_write_atomic(path, text, strlen(text), &err))
        bail_out("%s", err.msg);
}

static void remove_out(const char *name)
{
    char *p = fs_path_join(out_dir, name);
    if (comm.rank == 0)
        unlink(p);
    free(p);
}

static char *read_text(const char *path)
{
    struct kd_err err;
    char *data;
    size_t len;
    if (fs_file_read(path, &data, &len, &err))
        return NULL;
    return data;
}

static char *out_path(const char *name) { return fs_path_join(out_dir, name); }

static int count_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

/* ---- fake stages ------------------------------------------------------------ */

static void note_run(const struct stage_ctx *ctx)
{
    strncat(order, ctx->stage->name, sizeof order - strlen(order) - 2);
    strcat(order, ",");
}

static int write_out(const struct stage_ctx *ctx, const char *name, const char *text)
{
    char *p = fs_path_join(ctx->output_dir, name);
    write_text(p, text);
    free(p);
    return KD_EXIT_OK;
}

static int extract_files(const struct stage_ctx *ctx, struct stage_files *in,
                         struct stage_files *out, struct kd_err *err)
{
    stage_files_add_user(in, train_path);
    stage_files_add(out, "teacher.txt");
    return 0;
}

static int extract_run(const struct stage_ctx *ctx)
{
    note_run(ctx);
    char *data = read_text(train_path), text[1024];
    snprintf(text, sizeof text, "teacher of [%s] precision %d seed %lld\n", data ? data : "",
             ctx->stage->precision, (long long)ctx->job->job.seed);
    free(data);
    return write_out(ctx, "teacher.txt", text);
}

static int distill_files(const struct stage_ctx *ctx, struct stage_files *in,
                         struct stage_files *out, struct kd_err *err)
{
    stage_files_add(in, "teacher.txt");
    stage_files_add(out, "student.txt");
    return 0;
}

/* Ten deterministic "optimizer steps" on 8 parameters, seeded by the
 * teacher file; checkpointed when told to stop. */
static int distill_run(const struct stage_ctx *ctx)
{
    note_run(ctx);
    enum { NP = 8, STEPS = 10 };
    float p[NP], m[NP], v[NP], proj[3] = {0};
    char *teacher = read_text(out_path("teacher.txt"));
    float seed = 0;
    for (const char *c = teacher; c && *c; c++)
        seed = seed * 0.9f + (float)*c * 1e-3f;
    free(teacher);
    for (int j = 0; j < NP; j++)
        p[j] = seed + (float)j, m[j] = v[j] = 0;
    struct train_state_block blk[1] = {{"proj", proj, 3}};
    struct train_state_real temp[1] = {{"temperature", 2.0}};
    struct train_state s = {.stage = ctx->stage->name, .fingerprint = ctx->fingerprint,
                            .n_params = NP, .params = p, .adam_m = m, .adam_v = v,
                            .n_blocks = 1, .blocks = blk, .n_reals = 1, .reals = temp};
    char *ck = train_state_path(ctx->output_dir, ctx->stage->name, -1);
    struct kd_err err;
    int rc = KD_EXIT_OK;
    if (ctx->resume) {
        if (train_state_load(ck, &s, &err)) {
            diag("distill: %s", err.msg);
            rc = KD_EXIT_RUNTIME;
            goto out;
        }
        resumed_from = (int)s.global_step;
    }
    for (int step = (int)s.global_step; step < STEPS; step++) {
        if (step == raise_at)
            raise(SIGUSR1);
        if (step == interrupt_at || signals_interrupted()) {
            s.global_step = step;
            if (ctx->comm->rank == 0 && train_state_save(ck, &s, &err))
                bail_out("%s", err.msg);
            rc = KD_EXIT_INTERRUPTED;
            goto out;
        }
        for (int j = 0; j < NP; j++) {
            float g = p[j] * 0.25f + (float)(step + 1) * 1e-2f;
            m[j] = 0.9f * m[j] + 0.1f * g;
            v[j] = 0.999f * v[j] + 0.001f * g * g;
            p[j] -= (float)ctx->stage->lr * m[j] / (sqrtf(v[j]) + 1e-8f);
        }
        proj[step % 3] += p[0];
        temp[0].value *= 0.97;
    }
    char text[1024];
    int k = snprintf(text, sizeof text, "student lr %.17g:", ctx->stage->lr);
    for (int j = 0; j < NP; j++) {
        unsigned u;
        memcpy(&u, &p[j], sizeof u);
        k += snprintf(text + k, sizeof text - (size_t)k, " %08x", u);
    }
    snprintf(text + k, sizeof text - (size_t)k, " proj %a %a %a temp %a\n", proj[0], proj[1],
             proj[2], temp[0].value);
    write_out(ctx, "student.txt", text);
out:
    free(ck);
    return rc;
}

static int eval_files(const struct stage_ctx *ctx, struct stage_files *in,
                      struct stage_files *out, struct kd_err *err)
{
    stage_files_add(in, "student.txt");
    stage_files_add(out, "eval.txt");
    return 0;
}

static int eval_run(const struct stage_ctx *ctx)
{
    note_run(ctx);
    if (skip_eval_output)
        return KD_EXIT_OK;
    char *s = read_text(out_path("student.txt")), text[2048];
    snprintf(text, sizeof text, "eval of %s", s ? s : "");
    free(s);
    return write_out(ctx, "eval.txt", text);
}

static int export_files(const struct stage_ctx *ctx, struct stage_files *in,
                        struct stage_files *out, struct kd_err *err)
{
    stage_files_add(in, "student.txt");
    stage_files_add(out, "export/student.txt");
    return 0;
}

static int export_run(const struct stage_ctx *ctx)
{
    note_run(ctx);
    char *d = out_path("export"), *s = read_text(out_path("student.txt"));
    if (ctx->comm->rank == 0)
        mkdir(d, 0777);
    write_out(ctx, "export/student.txt", s ? s : "");
    free(d), free(s);
    return KD_EXIT_OK;
}

/* designated initializers: the implementations under test name only what
 * they use, as the real ones do */
static const struct stage_impl fake_extract = {
    .kind = STAGE_KIND_EXTRACT, .run = extract_run, .files = extract_files};
static const struct stage_impl fake_distill = {
    .kind = STAGE_KIND_DISTILL, .run = distill_run, .files = distill_files};
static const struct stage_impl fake_eval = {
    .kind = STAGE_KIND_EVALUATE, .run = eval_run, .files = eval_files};
static const struct stage_impl fake_export = {
    .kind = STAGE_KIND_EXPORT, .run = export_run, .files = export_files};
static const struct stage_impl *const fakes[] = {&fake_extract, &fake_distill, &fake_eval,
                                                 &fake_export};

/* ---- running a job ---------------------------------------------------------------- */

struct run {
    int rc;
    char outcomes[8]; /* one letter per stage, see letter() */
    struct stage_result res[4];
    struct kd_err err;
};

static char letter(int outcome)
{
    switch (outcome) {
    case STAGE_OUTCOME_NOT_SELECTED: return 'n';
    case STAGE_OUTCOME_UNAVAILABLE: return 'a';
    case STAGE_OUTCOME_UP_TO_DATE: return 'u';
    case STAGE_OUTCOME_RAN: return 'R';
    case STAGE_OUTCOME_INTERRUPTED: return 'I';
    case STAGE_OUTCOME_FAILED: return 'F';
    default: return '-';
    }
}

/* Loads the job with `sets` overrides and runs it with the fake registry
 * (n_reg < 4 leaves the last kinds out). Outcome letters: R ran, u up to
 * date, n not selected, a unavailable, I interrupted, F failed, - not
 * reached. */
static struct run run_job(const char *const *sets, int n_sets, const char *only, int resume,
                          int force, size_t n_reg)
{
    struct run r;
    memset(&r, 0, sizeof r);
    comm_barrier(&comm); /* rank 0's file edits are done */
    struct job job;
    struct job_errors errs = {0};
    if (job_load(&job, cfg_path, sets, n_sets, &errs))
        bail_out("job_load: %s", errs.n ? errs.msgs[0] : "?");
    struct stage_run_args args = {.registry = fakes, .n_registry = n_reg, .only = only,
                                  .resume = resume, .force = force, .results = r.res};
    order[0] = '\0';
    r.rc = stage_runner_run(&job, NULL, &comm, &args, &r.err);
    for (int i = 0; i < 4; i++)
        r.outcomes[i] = letter(r.res[i].outcome);
    if (r.rc)
        diag("runner: exit %d: %s", r.rc, r.err.msg);
    job_free(&job);
    job_errors_free(&errs);
    return r;
}

#define NOSET NULL, 0

static cJSON *load_manifest_json(void)
{
    char *p = out_path(MANIFEST_FILE), *text = read_text(p);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(p), free(text);
    return j;
}

static const cJSON *entry(const cJSON *root, const char *name)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(root, "stages")) {
        const cJSON *n = cJSON_GetObjectItem(e, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
            return e;
    }
    return NULL;
}

static const char *status_of(const char *name)
{
    static char buf[32];
    cJSON *j = load_manifest_json();
    const cJSON *s = cJSON_GetObjectItem(entry(j, name), "status");
    snprintf(buf, sizeof buf, "%s", cJSON_IsString(s) ? s->valuestring : "(none)");
    cJSON_Delete(j);
    return buf;
}

/* ---- scenarios ---------------------------------------------------------------- */

static void check_manifest_json(void)
{
    cJSON *j = load_manifest_json();
    if (!ok(j != NULL, "manifest.json parses as JSON"))
        return;
    const cJSON *schema = cJSON_GetObjectItem(j, "schema");
    ok(cJSON_IsString(schema) && !strcmp(schema->valuestring, MANIFEST_SCHEMA) &&
       cJSON_IsString(cJSON_GetObjectItem(j, "schema_version")) &&
       cJSON_IsString(cJSON_GetObjectItem(j, "kd_hpc_version")),
       "manifest: schema, schema_version, kd_hpc_version");
    ok(cJSON_GetArraySize(cJSON_GetObjectItem(j, "stages")) == 4, "manifest: 4 stages");
    int all = 1;
    for (int i = 0; i < 4; i++) {
        static const char *names[] = {"extract", "distill", "eval", "export"};
        const cJSON *e = entry(j, names[i]);
        const cJSON *fp = cJSON_GetObjectItem(e, "fingerprint");
        const cJSON *st = cJSON_GetObjectItem(e, "status");
        const cJSON *sec = cJSON_GetObjectItem(e, "seconds");
        all &= e && cJSON_IsString(fp) && strlen(fp->valuestring) == 64 &&
               cJSON_IsString(st) && !strcmp(st->valuestring, "finished") &&
               cJSON_IsNumber(sec) && sec->valuedouble >= 0 &&
               cJSON_IsString(cJSON_GetObjectItem(e, "started")) &&
               cJSON_IsString(cJSON_GetObjectItem(e, "finished"));
    }
    ok(all, "manifest: every stage finished, with a 64-digit fingerprint and timings");
    /* recorded digests are the files' */
    const cJSON *out = cJSON_GetArrayItem(cJSON_GetObjectItem(entry(j, "distill"), "outputs"), 0);
    const cJSON *in = cJSON_GetArrayItem(cJSON_GetObjectItem(entry(j, "extract"), "inputs"), 0);
    char want[FS_SHA256_HEX_LEN], want_in[FS_SHA256_HEX_LEN];
    struct kd_err err;
    char *sp = out_path("student.txt");
    fs_file_sha256(sp, want, &err);
    fs_file_sha256(train_path, want_in, &err);
    free(sp);
    const cJSON *osha = cJSON_GetObjectItem(out, "sha256"), *isha = cJSON_GetObjectItem(in, "sha256");
    ok(cJSON_IsString(osha) && !strcmp(osha->valuestring, want) &&
       !strcmp(cJSON_GetObjectItem(out, "name")->valuestring, "student.txt"),
       "manifest: distill's output student.txt with its sha256");
    ok(cJSON_IsString(isha) && !strcmp(isha->valuestring, want_in) &&
       cJSON_IsTrue(cJSON_GetObjectItem(in, "user")),
       "manifest: extract's user input with its sha256");
    int has_lr = 0, has_seed = 0;
    const cJSON *line;
    cJSON_ArrayForEach(line, cJSON_GetObjectItem(entry(j, "distill"), "config")) {
        has_lr |= !strcmp(line->valuestring, "stage.lr = 0.001");
        has_seed |= !strcmp(line->valuestring, "job.seed = 7");
    }
    ok(has_lr && has_seed, "manifest: distill's config lists stage.lr and job.seed");
    cJSON_Delete(j);
}

int main(int argc, char **argv)
{
    comm_init(&comm, &argc, &argv);
    log_set_level(LOG_LEVEL_WARN);
    signals_install();
    if (comm.rank > 0 && !getenv("KD_TAP_ALL_RANKS") && !freopen("/dev/null", "w", stdout))
        bail_out("cannot silence rank %d", comm.rank);
    snprintf(tmp, sizeof tmp, "/tmp/t_runner.XXXXXX");
    if (comm.rank == 0 && !mkdtemp(tmp))
        bail_out("mkdtemp failed");
    comm_bcast_bytes(&comm, tmp, sizeof tmp, 0);
    snprintf(cfg_path, sizeof cfg_path, "%s/job.cfg", tmp);
    snprintf(train_path, sizeof train_path, "%s/train.txt", tmp);
    snprintf(out_dir, sizeof out_dir, "%s/out", tmp);
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "job = { name = \"t_runner\"; output_dir = \"%s\"; seed = 7; };\n"
             "data = { task = \"synthetic\"; synthetic_train = 64; synthetic_dev = 16; "
             "max_seq_len = 16; };\n"
             "teacher = { layers = 2; hidden = 32; heads = 2; intermediate = 64; "
             "max_positions = 32; pipeline_stages = 1; micro_batch = 4; };\n"
             "student = { layers = 1; hidden = 16; heads = 2; intermediate = 32; };\n"
             "stages = (\n"
             "  { name = \"extract\"; kind = \"extract\"; outputs = [\"logits\"]; },\n"
             "  { name = \"distill\"; kind = \"distill\"; epochs = 1.0; batch = 8; lr = 1e-3;\n"
             "    losses = ( { kind = \"soft\"; temperature = 2.0; weight = 1.0; } ); },\n"
             "  { name = \"eval\"; kind = \"evaluate\"; },\n"
             "  { name = \"export\"; kind = \"export\"; }\n);\n", out_dir);
    write_text(cfg_path, cfg);
    write_text(train_path, "sentence\tlabel\nthe film is fine\t1\n");
    struct run r;

    /* order, then up to date */
    r = run_job(NOSET, NULL, 0, 0, 4);
    ok(r.rc == KD_EXIT_OK && !strcmp(r.outcomes, "RRRR"), "first run: every stage ran (%s)",
       r.outcomes);
    ok_str(order, "extract,distill,eval,export,", "first run: in job order");
    check_manifest_json();
    ok(count_tmp(out_dir) == 0, "no temporary file left in the output directory");
    char *student0 = read_text(out_path("student.txt"));
    r = run_job(NOSET, NULL, 0, 0, 4);
    ok(r.rc == 0 && !strcmp(r.outcomes, "uuuu") && order[0] == '\0',
       "second run: every stage up to date, nothing ran (%s)", r.outcomes);
    ok(strstr(r.res[0].why, "up to date") != NULL, "why: %s", r.res[0].why);

    /* a config change of distill: it and its dependants */
    const char *lr2[] = {"stages.distill.lr=2e-3"};
    r = run_job(lr2, 1, NULL, 0, 0, 4);
    ok(r.rc == 0 && !strcmp(r.outcomes, "uRRR"),
       "distill.lr changed: distill and its dependants re-run, extract up to date (%s)",
       r.outcomes);
    ok(strstr(r.res[1].why, "stage.lr") && strstr(r.res[1].why, "0.002"),
       "why names the setting and the new value: %s", r.res[1].why);
    r = run_job(NOSET, NULL, 0, 0, 4);
    ok(r.rc == 0 && !strcmp(r.outcomes, "uRRR"), "lr back to 1e-3: the same three re-run (%s)",
       r.outcomes);
    char *student1 = read_text(out_path("student.txt"));
    ok(student0 && student1 && !strcmp(student0, student1),
       "the re-run student equals the first one");

    /* a config change of extract only: dependants re-run through its output */
    const char *fp16[] = {"stages.extract.precision=\"fp16\""};
    r = run_job(fp16, 1, NULL, 0, 0, 4);
    ok(r.rc == 0 && !strcmp(r.outcomes, "RRRR"),
       "extract.precision changed: extract re-runs and its new output invalidates the "
       "dependants, whose config is unchanged (%s)", r.outcomes);
    ok(strstr(r.res[1].why, "input teacher.txt changed") != NULL, "distill's why: %s",
       r.res[1].why);
    const char *seed[] = {"stages.extract.precision=\"fp16\"", "job.seed=8"};
    r = run_job(seed, 2, NULL, 0, 0, 4);
    ok(r.rc == 0 && r.outcomes[0] == 'R' && strstr(r.res[0].why, "job.seed"),
       "a job-level key a stage depends on invalidates it: %s", r.res[0].why);
    r = run_job(NOSET, NULL, 0, 0, 4);
    ok(r.rc == 0 && !strcmp(r.outcomes, "RRRR"), "back to the base config: all re-run (%s)",
       r.outcomes);

    /* input files */
    struct timespec ts[2] = {{0, UTIME_NOW}, {0, UTIME_NOW}};
    if (comm.rank == 0)
        utimensat(AT_FDCWD, train_path, ts, 0);
    r = run_job(NOSET, NULL, 0, 0, 4);
    ok(r.rc == 0 && !strcmp(r.outcomes, "uuuu"), "a touched input (same content) invalidates "
       "nothing (%s)", r.outcomes);
    write_text(train_path, "sentence\tlabel\nthe film is great\t1\n");
    r = run_job(NOSET, NULL, 0, 0, 4);
    ok(r.rc == 0 && !strcmp(r.outcomes, "RRRR"), "a changed input file invalidates its "
       "reader and everything downstream (%s)", r.outcomes);
    ok(strstr(r.res[0].why, "train.txt changed") != NULL, "why: %s", r.res[0].why);

    /* --stage */
    r = run_job(NOSET, "distill", 0, 0, 4);
    ok(r.rc == 0 && !strcmp(r.outcomes, "nRnn") && !strcmp(order, "distill,"),
       "--stage distill: only distill runs, although up to date (%s)", r.outcomes);
    r = run_job(NOSET, NULL, 0, 0, 4);
    ok(r.rc == 0 && !strcmp(r.outcomes, "uuuu"), "after a deterministic --stage re-run with "
       "identical output, dependants stay up to date (%s)", r.outcomes);
    const char *out2[] = {NULL};
    char set_out2[256];
    snprintf(set_out2, sizeof set_out2, "job.output_dir=\"%s/out2\"", tmp);
    out2[0] = set_out2;
    r = run_job(out2, 1, "distill", 0, 0, 4);
    ok(r.rc == KD_EXIT_CONFIG && order[0] == '\0', "--stage distill on a fresh output "
       "directory is refused (exit %d), nothing ran", r.rc);
    ok(strstr(r.err.msg, "teacher.txt") && strstr(r.err.msg, "stage \"extract\""),
       "the refusal names the missing input and the stage that writes it: %s", r.err.msg);

    /* --force */
    r = run_job(NOSET, NULL, 0, 1, 4);
    ok(r.rc == 0 && !strcmp(r.outcomes, "RRRR"), "--force: every stage re-runs (%s)",
       r.outcomes);

    /* deleted and edited outputs */
    remove_out("eval.txt");
    r = run_job(NOSET, NULL, 0, 0, 4);
    ok(r.rc == 0 && !strcmp(r.outcomes, "uuRu"), "a deleted output: only its stage re-runs "
       "(%s)", r.outcomes);
    ok(strstr(r.res[2].why, "eval.txt was deleted") != NULL, "why: %s", r.res[2].why);
    remove_out("teacher.txt");
    r = run_job(NOSET, NULL, 0, 0, 4);
    ok(r.rc == 0 && !strcmp(r.outcomes, "Ruuu"), "teacher.txt deleted: extract re-runs; its "
       "identical new output keeps the dependants up to date (%s)", r.outcomes);
    char *p = out_path("student.txt");
    write_text(p, "edited by hand\n");
    free(p);
    r = run_job(NOSET, NULL, 0, 0, 4);
    ok(r.rc == 0 && !strcmp(r.outcomes, "uRuu"), "an edited output: its stage re-runs and "
       "restores it, dependants stay up to date (%s)", r.outcomes);
    ok(strstr(r.res[1].why, "student.txt changed") != NULL, "why: %s", r.res[1].why);

    /* a stage that does not write its declared output */
    remove_out("eval.txt");
    skip_eval_output = 1;
    r = run_job(NOSET, "eval", 0, 0, 4);
    skip_eval_output = 0;
    ok(r.rc == KD_EXIT_RUNTIME && strstr(r.err.msg, "did not write its declared output eval.txt"),
       "a missing declared output fails the stage: %s", r.err.msg);
    ok_str(status_of("eval"), "failed", "... and the manifest says failed");
    r = run_job(NOSET, NULL, 0, 0, 4);
    ok(r.rc == 0 && !strcmp(r.outcomes, "uuRu"), "the failed stage runs again next time (%s)",
       r.outcomes);

    /* a kind this build does not have */
    r = run_job(NOSET, NULL, 0, 0, 3);
    ok(r.rc == 0 && !strcmp(r.outcomes, "uuua"), "a stage with no implementation is "
       "reported and skipped (%s)", r.outcomes);

    /* interruption and --resume; the reference is the uninterrupted
     * student of the current inputs */
    char *student_ref = read_text(out_path("student.txt"));
    interrupt_at = 4;
    r = run_job(NOSET, "distill", 0, 0, 4);
    interrupt_at = -1;
    ok(r.rc == KD_EXIT_INTERRUPTED && !strcmp(r.outcomes, "nI--"),
       "an interrupted stage returns exit %d (%s)", r.rc, r.outcomes);
    ok_str(status_of("distill"), "interrupted", "the manifest records it as interrupted, not "
           "finished");
    cJSON *j = load_manifest_json();
    ok(cJSON_GetArraySize(cJSON_GetObjectItem(entry(j, "distill"), "outputs")) == 0,
       "an interrupted stage has no recorded outputs");
    cJSON_Delete(j);
    r = run_job(NOSET, NULL, 1, 0, 4);
    ok(r.rc == 0 && !strcmp(r.outcomes, "uRuu") && r.res[1].resumed && resumed_from == 4,
       "--resume: distill continues from step %d of its checkpoint (resume=%d), finished "
       "stages skipped (%s)", resumed_from, r.res[1].resumed, r.outcomes);
    char *student2 = read_text(out_path("student.txt"));
    ok(student_ref && student2 && !strcmp(student_ref, student2), "the resumed student is bitwise "
       "the uninterrupted one");
    ok_str(status_of("distill"), "finished", "after the resume distill is finished");

    resumed_from = -1;
    interrupt_at = 7;
    r = run_job(NOSET, "distill", 0, 0, 4);
    interrupt_at = -1;
    r = run_job(NOSET, NULL, 0, 0, 4);
    ok(r.rc == 0 && r.outcomes[1] == 'R' && !r.res[1].resumed && resumed_from == -1 &&
       strstr(r.res[1].why, "starting over"),
       "without --resume an interrupted stage starts over: %s", r.res[1].why);

    interrupt_at = 3;
    r = run_job(NOSET, "distill", 0, 0, 4);
    interrupt_at = -1;
    r = run_job(lr2, 1, NULL, 1, 0, 4);
    ok(r.rc == KD_EXIT_CONFIG && order[0] == '\0' && strstr(r.err.msg, "stage.lr"),
       "--resume after a config change is refused, naming the change: %s", r.err.msg);
    r = run_job(NOSET, NULL, 1, 0, 4);
    ok(r.rc == 0 && r.res[1].resumed && resumed_from == 3, "... and the original config "
       "still resumes (from step %d)", resumed_from);

    /* the manifest's own safety */
    char *man = out_path(MANIFEST_FILE), *man_before = read_text(man);
    char blocker[256];
    snprintf(blocker, sizeof blocker, "%s.tmp.%ld", man, (long)getpid());
    if (comm.rank == 0)
        mkdir(blocker, 0700);
    r = run_job(NOSET, "eval", 0, 0, 4);
    comm_barrier(&comm);
    if (comm.rank == 0)
        rmdir(blocker);
    char *man_after = read_text(man);
    ok(r.rc == KD_EXIT_RUNTIME && strstr(r.err.msg, "manifest") && order[0] == '\0',
       "a manifest that cannot be written stops the job before the stage runs: %s", r.err.msg);
    ok(man_before && man_after && !strcmp(man_before, man_after),
       "the previous manifest is intact, byte for byte");
    write_text(man, "{ \"schema\": \"kd_hpc.manifest\", \"stages\": [ oops");
    r = run_job(NOSET, NULL, 0, 0, 4);
    ok(r.rc == KD_EXIT_CONFIG && strstr(r.err.msg, man) && strstr(r.err.msg, "--force"),
       "a corrupted manifest is refused with its path and a hint: %s", r.err.msg);
    r = run_job(NOSET, NULL, 0, 1, 4);
    ok(r.rc == 0 && !strcmp(r.outcomes, "RRRR"), "--force replaces a corrupted manifest (%s)",
       r.outcomes);
    r = run_job(NOSET, NULL, 0, 0, 4);
    ok(r.rc == 0 && !strcmp(r.outcomes, "uuuu"), "... which is valid again (%s)", r.outcomes);
    free(man), free(man_before), free(man_after);

    /* last: a real SIGUSR1 (the flag stays set for the rest of the process) */
    raise_at = 5;
    r = run_job(NOSET, "distill", 0, 0, 4);
    ok(r.rc == KD_EXIT_INTERRUPTED && !strcmp(r.outcomes, "nI--") && signals_interrupted() == SIGUSR1,
       "SIGUSR1 during distill: stopped at a safe point, exit %d (%s)", r.rc, r.outcomes);
    ok_str(status_of("distill"), "interrupted", "... recorded as interrupted");
    r = run_job(NOSET, "eval", 0, 0, 4);
    ok(r.rc == KD_EXIT_INTERRUPTED && r.outcomes[2] == 'R',
       "a stage that finishes while the signal is pending is kept, then the job stops "
       "(exit %d, %s)", r.rc, r.outcomes);
    ok_str(status_of("eval"), "finished", "... and it is recorded as finished");
    ok(count_tmp(out_dir) == 0, "no temporary file left in the output directory");

    free(student0), free(student1), free(student2), free(student_ref);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    comm_barrier(&comm);
    if (comm.rank == 0 && system(cmd) != 0)
        diag("could not remove %s", tmp);
    int rc = done_testing();
    comm_finalize(&comm);
    return rc;
}
