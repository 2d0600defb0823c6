/* t_train_state.c: training-state checkpoints (io/train_state.h).
 * - Round trip is bitwise: parameters spanning two chunks with -0, a
 *   subnormal, +-Inf and a NaN payload; Adam moments; extra blocks (one
 *   empty); int64 scalars with the full bit range; doubles; counters.
 * - Atomic: no temporary file is left; a failed save (bad description, or
 *   a temporary name that cannot be created) leaves the previous checkpoint
 *   byte for byte.
 * - Refused, with the dataset or attribute named: a missing dataset
 *   (/adam_v deleted, a block not in the file), a wrong element count
 *   (/adam_m replaced by a shorter one, a block of other length), another
 *   n_params, another fingerprint or stage, a missing scalar, another
 *   schema, a truncated file, a flipped byte inside the data (Fletcher32),
 *   no file at all. */
#include "kd/io/train_state.h"
#include "kd/core/fsutil.h"
#include "kd/io/h5.h"
#include "../tap.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define N_PARAMS (((size_t)1 << 20) + 17) /* two chunks */
#define N_PROJ 37

static const char *FP_A = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char *FP_B = "f123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/* The state a stage would save, and an empty twin of the same shape to
 * load into. */
struct fixture {
    float *p, *m, *v, *proj, *proj_m;
    struct train_state_block blocks[3];
    struct train_state_int ints[2];
    struct train_state_real reals[2];
    struct train_state s;
};

static uint32_t lcg(uint32_t *x)
{
    *x = *x * 1664525u + 1013904223u;
    return *x;
}

static float bits_to_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void fixture_init(struct fixture *f, int fill)
{
    memset(f, 0, sizeof *f);
    f->p = calloc(N_PARAMS, sizeof(float));
    f->m = calloc(N_PARAMS, sizeof(float));
    f->v = calloc(N_PARAMS, sizeof(float));
    f->proj = calloc(N_PROJ, sizeof(float));
    f->proj_m = calloc(N_PROJ, sizeof(float));
    if (!f->p || !f->m || !f->v || !f->proj || !f->proj_m)
        bail_out("out of memory");
    if (fill) {
        uint32_t x = 12345;
        for (size_t i = 0; i < N_PARAMS; i++) {
            /* random finite bit patterns (exponent below all-ones) */
            f->p[i] = bits_to_float(lcg(&x) & 0xbf7fffffu);
            f->m[i] = (float)i * 1e-7f - 0.05f;
            f->v[i] = bits_to_float(lcg(&x) & 0x3f7fffffu);
        }
        f->p[0] = -0.0f;
        f->p[1] = bits_to_float(0x00000001u); /* smallest subnormal */
        f->p[2] = INFINITY;
        f->p[3] = -INFINITY;
        f->p[4] = bits_to_float(0x7fc01234u); /* NaN with a payload */
        for (int i = 0; i < N_PROJ; i++) {
            f->proj[i] = 1.0f / (float)(i + 1);
            f->proj_m[i] = -(float)i;
        }
    }
    f->blocks[0] = (struct train_state_block){"proj.0", f->proj, N_PROJ};
    f->blocks[1] = (struct train_state_block){"proj.0.adam_m", f->proj_m, N_PROJ};
    f->blocks[2] = (struct train_state_block){"empty", NULL, 0};
    f->ints[0] = (struct train_state_int){"phase", fill ? 2 : 0};
    f->ints[1] = (struct train_state_int){"rng_counter", fill ? (int64_t)0xfedcba9876543210ull : 0};
    f->reals[0] = (struct train_state_real){"temperature", fill ? 0.1 + 0.2 : 0};
    f->reals[1] = (struct train_state_real){"tiny", fill ? 4.9406564584124654e-324 : 0};
    f->s = (struct train_state){
        .stage = "distill", .fingerprint = FP_A,
        .global_step = fill ? 1234567890123 : 0, .epoch = fill ? 2 : 0,
        .epoch_pos = fill ? 4096 : 0, .opt_step = fill ? 1234567890124 : 0,
        .n_params = N_PARAMS, .params = f->p, .adam_m = f->m, .adam_v = f->v,
        .n_blocks = 3, .blocks = f->blocks, .n_ints = 2, .ints = f->ints,
        .n_reals = 2, .reals = f->reals};
}

static void fixture_free(struct fixture *f)
{
    free(f->p), free(f->m), free(f->v), free(f->proj), free(f->proj_m);
}

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

static char *slurp(const char *path, size_t *len)
{
    struct kd_err err;
    char *data;
    if (fs_file_read(path, &data, len, &err))
        bail_out("%s", err.msg);
    return data;
}

static void copy_prefix(const char *from, const char *to, size_t n)
{
    size_t len;
    char *data = slurp(from, &len);
    struct kd_err err;
    if (n > len || fs_file_write_atomic(to, data, n, &err))
        bail_out("%s: cannot copy", to);
    free(data);
}

/* Loads path into a fresh twin and checks the error mentions every needle. */
static void expect_refused(const char *path, struct train_state *s, const char *what,
                           const char *needle1, const char *needle2)
{
    struct kd_err err = {""};
    int rc = train_state_load(path, s, &err);
    ok(rc < 0, "%s: refused", what);
    int named = strstr(err.msg, needle1) && (!needle2 || strstr(err.msg, needle2));
    if (!ok(named, "%s: message names %s%s%s", what, needle1, needle2 ? " and " : "",
            needle2 ? needle2 : ""))
        diag("message: %s", err.msg);
    else
        diag("%s", err.msg);
}

/* Edits a saved file in place through HDF5: deletes one dataset and, if
 * n_new > 0, creates it again with n_new elements. */
static void replace_dataset(const char *path, const char *name, size_t n_new)
{
    h5_init();
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0 || H5Ldelete(f, name, H5P_DEFAULT) < 0)
        bail_out("%s: cannot delete %s", path, name);
    if (n_new) {
        hsize_t dims[1] = {n_new};
        hid_t sp = H5Screate_simple(1, dims, NULL);
        hid_t ds = H5Dcreate2(f, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT,
                              H5P_DEFAULT);
        if (ds < 0)
            bail_out("%s: cannot create %s", path, name);
        H5Dclose(ds);
        H5Sclose(sp);
    }
    H5Fclose(f);
}

int main(void)
{
    char dir[] = "/tmp/t_train_state.XXXXXX";
    if (!mkdtemp(dir))
        bail_out("mkdtemp failed");
    char *path = train_state_path(dir, "distill", -1);
    char *ppath = train_state_path(dir, "finetune", 3);
    ok(strstr(path, "/distill.state.h5") != NULL, "one-file name: %s", path);
    ok(strstr(ppath, "/finetune.state.p03.h5") != NULL, "pipeline-stage name: %s", ppath);

    /* ---- round trip -------------------------------------------------------- */
    struct fixture a, b;
    fixture_init(&a, 1);
    fixture_init(&b, 0);
    struct kd_err err = {""};
    if (!ok(train_state_save(path, &a.s, &err) == 0, "save"))
        bail_out("%s", err.msg);
    ok(count_tmp(dir) == 0, "no temporary file left after a save");
    if (!ok(train_state_load(path, &b.s, &err) == 0, "load"))
        diag("%s", err.msg);
    ok(memcmp(a.p, b.p, N_PARAMS * sizeof(float)) == 0, "params bitwise equal (%zu floats, "
       "-0, subnormal, +-Inf, NaN payload)", N_PARAMS);
    ok(memcmp(a.m, b.m, N_PARAMS * sizeof(float)) == 0, "adam_m bitwise equal");
    ok(memcmp(a.v, b.v, N_PARAMS * sizeof(float)) == 0, "adam_v bitwise equal");
    ok(memcmp(a.proj, b.proj, sizeof(float) * N_PROJ) == 0 &&
       memcmp(a.proj_m, b.proj_m, sizeof(float) * N_PROJ) == 0, "extra blocks bitwise equal");
    ok(b.s.global_step == a.s.global_step && b.s.epoch == a.s.epoch &&
       b.s.epoch_pos == a.s.epoch_pos && b.s.opt_step == a.s.opt_step,
       "counters: step %lld epoch %lld pos %lld opt_step %lld", (long long)b.s.global_step,
       (long long)b.s.epoch, (long long)b.s.epoch_pos, (long long)b.s.opt_step);
    ok(b.ints[0].value == 2 && b.ints[1].value == (int64_t)0xfedcba9876543210ull,
       "int64 scalars exact (incl. a negative bit pattern)");
    ok(memcmp(&b.reals[0].value, &a.reals[0].value, sizeof(double)) == 0 &&
       memcmp(&b.reals[1].value, &a.reals[1].value, sizeof(double)) == 0,
       "double scalars bitwise (0.1+0.2, smallest subnormal)");

    /* ---- atomic replacement -------------------------------------------------- */
    size_t len0, len1;
    char *before = slurp(path, &len0);
    struct train_state bad = a.s;
    struct train_state_block badblk[1] = {{"a/b", a.proj, N_PROJ}};
    bad.blocks = badblk;
    bad.n_blocks = 1;
    ok(train_state_save(path, &bad, &err) < 0 && strstr(err.msg, "a/b"),
       "a block name with '/' is refused before writing: %s", err.msg);
    char tmpdir[4200];
    snprintf(tmpdir, sizeof tmpdir, "%s.tmp.%ld", path, (long)getpid());
    if (mkdir(tmpdir, 0700))
        bail_out("%s: mkdir failed", tmpdir);
    a.s.global_step++;
    ok(train_state_save(path, &a.s, &err) < 0, "a save whose temporary file cannot be "
       "created fails: %s", err.msg);
    rmdir(tmpdir);
    a.s.global_step--;
    char *after = slurp(path, &len1);
    ok(len0 == len1 && memcmp(before, after, len0) == 0,
       "the previous checkpoint is intact after both failed saves");
    ok(count_tmp(dir) == 0, "no temporary file left after failed saves");
    free(before), free(after);

    /* ---- refusals ------------------------------------------------------------ */
    fixture_free(&b);
    fixture_init(&b, 0);
    b.s.fingerprint = FP_B;
    expect_refused(path, &b.s, "another fingerprint", "fingerprint", FP_B);
    b.s.fingerprint = FP_A;
    b.s.stage = "finetune";
    expect_refused(path, &b.s, "another stage", "attribute stage", "finetune");
    b.s.stage = "distill";
    b.s.n_params = N_PARAMS - 1;
    expect_refused(path, &b.s, "another parameter count", "n_params", "1048592");
    b.s.n_params = N_PARAMS;
    b.blocks[0].n = N_PROJ + 1;
    expect_refused(path, &b.s, "a block of other length", "/blocks/proj.0", "expected 38 elements, found 37");
    b.blocks[0].n = N_PROJ;
    struct train_state_block more[4];
    memcpy(more, b.blocks, sizeof b.blocks);
    more[3] = (struct train_state_block){"proj.1", b.proj, N_PROJ};
    b.s.blocks = more;
    b.s.n_blocks = 4;
    expect_refused(path, &b.s, "a block not in the file", "/blocks/proj.1", "missing");
    b.s.blocks = b.blocks;
    b.s.n_blocks = 3;
    struct train_state_int ints3[3] = {b.ints[0], b.ints[1], {"pid_phase", 0}};
    b.s.ints = ints3;
    b.s.n_ints = 3;
    expect_refused(path, &b.s, "a scalar not in the file", "pid_phase", "missing");
    b.s.ints = b.ints;
    b.s.n_ints = 2;

    char *edited = fs_path_join(dir, "edited.h5");
    copy_prefix(path, edited, len0);
    replace_dataset(edited, "adam_v", 0);
    expect_refused(edited, &b.s, "a deleted dataset", "dataset /adam_v is missing", NULL);
    copy_prefix(path, edited, len0);
    replace_dataset(edited, "adam_m", N_PARAMS - 5);
    expect_refused(edited, &b.s, "a shorter dataset", "dataset /adam_m", "found 1048588");

    h5_init();
    hid_t f = H5Fcreate(edited, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    h5_attr_write_str(f, "schema", "kd_hpc.teacher_store", &err);
    H5Fclose(f);
    expect_refused(edited, &b.s, "another kind of HDF5 file", "attribute schema",
                   "kd_hpc.teacher_store");

    copy_prefix(path, edited, len0 / 2);
    expect_refused(edited, &b.s, "a file truncated to half", edited, NULL);
    copy_prefix(path, edited, 100);
    expect_refused(edited, &b.s, "a file truncated to 100 bytes", edited, NULL);

    /* the middle of the file lies inside the float data (12 MB of the
     * ~12 MB): a flipped byte must be caught by Fletcher32 */
    copy_prefix(path, edited, len0);
    FILE *fp = fopen(edited, "r+b");
    if (!fp || fseek(fp, (long)(len0 / 2), SEEK_SET))
        bail_out("%s: cannot open for patching", edited);
    int c = fgetc(fp);
    fseek(fp, (long)(len0 / 2), SEEK_SET);
    fputc(c ^ 0x10, fp);
    fclose(fp);
    expect_refused(edited, &b.s, "a flipped byte in the data", "checksum", NULL);

    unlink(edited);
    expect_refused(edited, &b.s, "no file", "no training-state checkpoint", NULL);

    fixture_free(&a);
    fixture_free(&b);
    unlink(path);
    rmdir(dir);
    free(edited), free(path), free(ppath);
    return done_testing();
}
