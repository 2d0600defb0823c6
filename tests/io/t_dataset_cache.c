/* t_dataset_cache.c: the tokenized dataset cache (io/dataset_cache.h).
 * - Round trips: what a reload returns equals dataset_load's result (arrays,
 *   label mapping, counts, name), for the synthetic task (single and pair)
 *   and TSV fixtures (pair, regression, unlabelled test file, skipped rows).
 * - What rebuilds: TSV content, vocabulary, max_seq_len, do_lower_case, the
 *   synthetic parameters, the training label mapping; what does not: a
 *   second load, a touched (same content) file, a newer minor version, the
 *   noise of a dev split.
 * - Damage: bytes flipped inside a chunk, a truncated file, another major
 *   version, a foreign HDF5 file, a text file, a value out of range, an
 *   unwritable cache directory: each is reported and rebuilt, never trusted.
 * - SST-2 with the real vocabulary (skipped without $KD_SHARED/data): build
 *   and read times as diagnostics.
 * `t_dataset_cache --gen DIR` writes the sample file of
 * hdf5-schemas/dataset_cache.v1.ddl (tests/io/cache_schema.sh) and exits. */
#include "kd/io/dataset_cache.h"
#include "kd/core/fsutil.h"
#include "kd/core/log.h"
#include "kd/io/h5.h"
#include "../tap.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static char fixture_dir[4096];

static void find_fixtures(void)
{
    const char *src = getenv("KD_SRCDIR");
    if (src && src[0]) {
        snprintf(fixture_dir, sizeof fixture_dir, "%s/tests/io/tsv", src);
        return;
    }
    snprintf(fixture_dir, sizeof fixture_dir, "%s", __FILE__);
    char *slash = strrchr(fixture_dir, '/');
    if (slash)
        snprintf(slash, sizeof fixture_dir - (size_t)(slash - fixture_dir), "/tsv");
    else
        snprintf(fixture_dir, sizeof fixture_dir, "tsv");
}

/* ---- helpers ---------------------------------------------------------------- */

static void copy_file(const char *from, const char *to)
{
    struct kd_err err;
    char *data;
    size_t len;
    if (fs_file_read(from, &data, &len, &err) || fs_file_write_atomic(to, data, len, &err))
        bail_out("%s", err.msg);
    free(data);
}

static void append_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "a");
    if (!f || fputs(text, f) < 0 || fclose(f))
        bail_out("%s: cannot append", path);
}

static void remove_tree(const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return;
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = fs_path_join(dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(p);
        else
            unlink(p);
        free(p);
    }
    closedir(dp);
    rmdir(dir);
}

/* Number of "*.tmp.*" leftovers in dir. */
static int temp_files(const char *dir)
{
    DIR *dp = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (dp && (e = readdir(dp)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (dp)
        closedir(dp);
    return n;
}

/* Warnings go to stderr: captured into a file around a call. */
struct capture {
    int saved;
    char path[64];
};

static void capture_begin(struct capture *c)
{
    snprintf(c->path, sizeof c->path, "/tmp/t_dataset_cache.err.XXXXXX");
    int fd = mkstemp(c->path);
    fflush(stderr);
    c->saved = dup(2);
    if (fd < 0 || c->saved < 0 || dup2(fd, 2) < 0)
        bail_out("cannot capture stderr");
    close(fd);
}

/* Returns what was written (free()). */
static char *capture_end(struct capture *c)
{
    fflush(stderr);
    dup2(c->saved, 2);
    close(c->saved);
    struct kd_err err;
    char *text;
    size_t len;
    if (fs_file_read(c->path, &text, &len, &err))
        text = strdup("");
    unlink(c->path);
    return text;
}

/* dataset_cache_load with the warnings captured into *warn (free()) and the
 * time taken into *secs (either may be NULL). */
static int cached(struct dataset *d, const struct dataset_spec *spec,
                  const struct label_map *map, tokenizer_t *tok, const char *vocab,
                  const char *dir, int *rebuilt, char **warn, double *secs)
{
    struct kd_err err;
    struct capture c;
    capture_begin(&c);
    double t0 = wall_seconds();
    *rebuilt = -1;
    int rc = dataset_cache_load(d, spec, map, tok, vocab, dir, rebuilt, &err);
    double dt = wall_seconds() - t0;
    char *text = capture_end(&c);
    if (rc)
        diag("dataset_cache_load: %s", err.msg);
    if (secs)
        *secs = dt;
    if (warn)
        *warn = text;
    else
        free(text);
    return rc;
}

/* dataset_load, the reference, with its warnings (skipped rows) kept out of
 * the test's output. */
static int reference(struct dataset *d, const struct dataset_spec *spec,
                     const struct label_map *map, tokenizer_t *tok, struct kd_err *err)
{
    struct capture c;
    capture_begin(&c);
    int rc = dataset_load(d, spec, map, tok, err);
    free(capture_end(&c));
    return rc;
}

static int same_map(const struct label_map *a, const struct label_map *b)
{
    if (a->kind != b->kind || a->num_labels != b->num_labels || !a->names != !b->names)
        return 0;
    for (int32_t i = 0; a->names && i < a->num_labels; i++)
        if (strcmp(a->names[i], b->names[i]))
            return 0;
    return 1;
}

/* Everything dataset_load fills, compared; the first difference is
 * printed. */
static int same_dataset(const struct dataset *a, const struct dataset *b)
{
    const char *what = NULL;
    size_t cells = (size_t)a->n * (size_t)a->max_seq_len;
#define SAME_ARRAY(f, count)                                                  \
    (!a->f == !b->f && (!a->f || !memcmp(a->f, b->f, (count) * sizeof *a->f)))
    if (a->n != b->n || a->max_seq_len != b->max_seq_len || a->pair != b->pair)
        what = "shape or pair";
    else if (strcmp(a->name, b->name))
        what = "name";
    else if (!SAME_ARRAY(input_ids, cells))
        what = "input_ids";
    else if (!SAME_ARRAY(token_type_ids, cells))
        what = "token_type_ids";
    else if (!SAME_ARRAY(attention_mask, cells))
        what = "attention_mask";
    else if (!SAME_ARRAY(lengths, (size_t)a->n))
        what = "lengths";
    else if (!SAME_ARRAY(labels, (size_t)a->n))
        what = "labels";
    else if (!SAME_ARRAY(targets, (size_t)a->n))
        what = "targets";
    else if (!SAME_ARRAY(source_lines, (size_t)a->n))
        what = "source_lines";
    else if (!same_map(&a->map, &b->map))
        what = "label map";
    else if (a->n_truncated != b->n_truncated || a->n_unk != b->n_unk ||
             a->n_skipped != b->n_skipped)
        what = "counts";
#undef SAME_ARRAY
    if (what)
        diag("datasets differ in %s", what);
    return what == NULL;
}

static int contains(const char *text, const char *needle)
{
    return text && strstr(text, needle) != NULL;
}

/* Flips 4 bytes in the middle of chunk idx of a dataset. */
static int corrupt_chunk(const char *path, const char *name, hsize_t idx)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = f >= 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
    hid_t sp = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t off[2] = {0}, size = 0;
    haddr_t addr = 0;
    unsigned mask = 0;
    int rc = sp >= 0 ? H5Dget_chunk_info(d, sp, idx, off, &mask, &addr, &size) : -1;
    if (sp >= 0)
        H5Sclose(sp);
    if (d >= 0)
        H5Dclose(d);
    if (f >= 0)
        H5Fclose(f);
    if (rc < 0 || size < 16)
        return -1;
    int fd = open(path, O_RDWR);
    unsigned char b[4];
    off_t at = (off_t)(addr + size / 2);
    if (fd < 0 || pread(fd, b, 4, at) != 4)
        return -1;
    for (int i = 0; i < 4; i++)
        b[i] ^= 0x5a;
    rc = pwrite(fd, b, 4, at) == 4 ? 0 : -1;
    close(fd);
    return rc;
}

static int set_root_str(const char *path, const char *name, const char *value)
{
    struct kd_err err;
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    int rc = f >= 0 ? h5_attr_write_str(f, name, value, &err) : -1;
    if (f >= 0 && H5Fclose(f) < 0)
        rc = -1;
    return rc;
}

/* Overwrites lengths[0] (the checksum is recomputed by HDF5). */
static int set_length0(const char *path, int32_t v)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = f >= 0 ? H5Dopen2(f, "/lengths", H5P_DEFAULT) : -1;
    hid_t fs = d >= 0 ? H5Dget_space(d) : -1;
    hsize_t start = 0, one = 1;
    hid_t ms = H5Screate_simple(1, &one, NULL);
    int rc = fs >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &one, NULL) >= 0 &&
                     H5Dwrite(d, H5T_NATIVE_INT32, ms, fs, H5P_DEFAULT, &v) >= 0
                 ? 0 : -1;
    H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    if (d >= 0)
        H5Dclose(d);
    if (f >= 0 && H5Fclose(f) < 0)
        rc = -1;
    return rc;
}

/* ---- synthetic task ------------------------------------------------------------ */

static void test_synthetic(tokenizer_t *tok, const char *vocab, const char *root)
{
    char *dir = fs_path_join(root, "synthetic");
    struct dataset_spec spec = {.task = DATASET_TASK_SYNTHETIC, .split = DATASET_SPLIT_TRAIN,
                                .synthetic_n = 20000, .synthetic_noise = 0.05, .seed = 1234,
                                .max_seq_len = 32};
    struct dataset ref, d;
    struct kd_err err;
    int rebuilt;
    double t_build, t_read;
    if (reference(&ref, &spec, NULL, tok, &err))
        bail_out("%s", err.msg);
    int rc = cached(&d, &spec, NULL, tok, vocab, dir, &rebuilt, NULL, &t_build);
    ok(rc == 0 && rebuilt == 1, "synthetic train: first load tokenizes (rebuilt %d)", rebuilt);
    char *path = dataset_cache_path(dir, DATASET_SPLIT_TRAIN);
    ok(fs_file_exists(path) && temp_files(dir) == 0,
       "the cache is at %s, no temporary file left", path);
    ok(same_dataset(&d, &ref), "built dataset equals dataset_load's");
    dataset_free(&d);
    rc = cached(&d, &spec, NULL, tok, vocab, dir, &rebuilt, NULL, &t_read);
    ok(rc == 0 && rebuilt == 0, "second load reads the cache (rebuilt %d)", rebuilt);
    ok(same_dataset(&d, &ref), "reloaded arrays, label names, counts and name equal");
    ok(t_read < t_build, "second load is faster: %.1f ms against %.1f ms (20000 x 32)",
       1e3 * t_read, 1e3 * t_build);
    dataset_free(&d);

    /* another seed is another source */
    spec.seed = 99;
    ok(cached(&d, &spec, NULL, tok, vocab, dir, &rebuilt, NULL, NULL) == 0 && rebuilt == 1,
       "another synthetic seed rebuilds");
    dataset_free(&d);
    spec.seed = 1234;

    /* the pair task's dev split, read against the training map: noise does
     * not apply to dev, so changing it must not rebuild */
    struct dataset_spec dev = spec;
    dev.task = DATASET_TASK_SYNTHETIC_PAIR;
    dev.split = DATASET_SPLIT_DEV;
    dev.synthetic_n = 500;
    struct dataset ref_dev;
    if (reference(&ref_dev, &dev, &ref.map, tok, &err))
        bail_out("%s", err.msg);
    ok(cached(&d, &dev, &ref.map, tok, vocab, dir, &rebuilt, NULL, NULL) == 0 && rebuilt == 1 &&
       same_dataset(&d, &ref_dev), "synthetic_pair dev: built, equals dataset_load's");
    dataset_free(&d);
    dev.synthetic_noise = 0.2;
    ok(cached(&d, &dev, &ref.map, tok, vocab, dir, &rebuilt, NULL, NULL) == 0 && rebuilt == 0 &&
       same_dataset(&d, &ref_dev) && d.pair,
       "synthetic_pair dev: reloaded; the noise (train only) does not rebuild dev");
    dataset_free(&d);
    dataset_free(&ref_dev);
    dataset_free(&ref);
    free(path);
    free(dir);
}

/* ---- TSV fixtures ------------------------------------------------------------- */

static void test_tsv(tokenizer_t *tok, const char *vocab, const char *root)
{
    char *dir = fs_path_join(root, "tsv-cache");
    char *tsv = fs_path_join(root, "pair.tsv");
    char src[4200];
    snprintf(src, sizeof src, "%s/pair.tsv", fixture_dir);
    copy_file(src, tsv);
    struct dataset_spec spec = {.task = DATASET_TASK_TSV, .split = DATASET_SPLIT_TRAIN,
                                .max_seq_len = 12, .path = tsv};
    spec.tsv = (struct tsv_options){.text_a = "sentence1", .text_b = "sentence2",
                                    .label = "label"};
    struct dataset ref, d;
    struct kd_err err;
    int rebuilt;
    if (reference(&ref, &spec, NULL, tok, &err))
        bail_out("%s", err.msg);
    ok(cached(&d, &spec, NULL, tok, vocab, dir, &rebuilt, NULL, NULL) == 0 && rebuilt == 1 &&
       same_dataset(&d, &ref), "pair.tsv: built, equals dataset_load's");
    dataset_free(&d);
    ok(cached(&d, &spec, NULL, tok, vocab, dir, &rebuilt, NULL, NULL) == 0 && rebuilt == 0 &&
       same_dataset(&d, &ref) && d.source_lines && d.source_lines[2] == 4,
       "pair.tsv: reloaded with source lines, labels and label map");
    dataset_free(&d);

    /* a new time stamp with the same bytes: content decides */
    struct timeval later[2];
    gettimeofday(&later[0], NULL);
    later[0].tv_sec += 3600;
    later[1] = later[0];
    utimes(tsv, later);
    ok(cached(&d, &spec, NULL, tok, vocab, dir, &rebuilt, NULL, NULL) == 0 && rebuilt == 0,
       "touching the TSV (same content) does not rebuild");
    dataset_free(&d);

    /* one more row: rebuilt, and the new content is what comes back */
    append_text(tsv, "3\tone more row .\tand its partner .\tentailment\n");
    dataset_free(&ref);
    if (reference(&ref, &spec, NULL, tok, &err))
        bail_out("%s", err.msg);
    int rc = cached(&d, &spec, NULL, tok, vocab, dir, &rebuilt, NULL, NULL);
    ok(rc == 0 && rebuilt == 1 && d.n == 4 && same_dataset(&d, &ref),
       "changed TSV content rebuilds (%lld rows)", (long long)d.n);
    dataset_free(&d);
    ok(cached(&d, &spec, NULL, tok, vocab, dir, &rebuilt, NULL, NULL) == 0 && rebuilt == 0,
       "and is read again afterwards");
    dataset_free(&d);

    spec.max_seq_len = 16;
    char *warn = NULL;
    ok(cached(&d, &spec, NULL, tok, vocab, dir, &rebuilt, &warn, NULL) == 0 && rebuilt == 1 &&
       d.max_seq_len == 16, "max_seq_len 12 -> 16 rebuilds");
    ok(!contains(warn, "warning"), "a stale cache is no warning");
    free(warn);
    dataset_free(&d);
    spec.max_seq_len = 12;
    ok(cached(&d, &spec, NULL, tok, vocab, dir, &rebuilt, NULL, NULL) == 0 && rebuilt == 1 &&
       same_dataset(&d, &ref), "max_seq_len back to 12 rebuilds, equal to the reference");
    dataset_free(&d);

    /* the same vocabulary file, cased */
    tokenizer_t *cased;
    if (tokenizer_load(&cased, vocab, 0, &err))
        bail_out("%s", err.msg);
    struct dataset ref_cased;
    if (reference(&ref_cased, &spec, NULL, cased, &err))
        bail_out("%s", err.msg);
    rc = cached(&d, &spec, NULL, cased, vocab, dir, &rebuilt, NULL, NULL);
    ok(rc == 0 && rebuilt == 1 && same_dataset(&d, &ref_cased),
       "do_lower_case 1 -> 0 rebuilds (rebuilt %d)", rebuilt);
    dataset_free(&d);
    dataset_free(&ref_cased);
    tokenizer_free(cased);

    /* another vocabulary file: one more token */
    char *vocab2 = fs_path_join(root, "vocab2.txt");
    copy_file(vocab, vocab2);
    append_text(vocab2, "zzzextra\n");
    tokenizer_t *tok2;
    if (tokenizer_load(&tok2, vocab2, 1, &err))
        bail_out("%s", err.msg);
    ok(cached(&d, &spec, NULL, tok2, vocab2, dir, &rebuilt, NULL, NULL) == 0 && rebuilt == 1,
       "a changed vocabulary file rebuilds");
    dataset_free(&d);
    ok(cached(&d, &spec, NULL, tok2, vocab2, dir, &rebuilt, NULL, NULL) == 0 && rebuilt == 0,
       "and is read again afterwards");
    dataset_free(&d);
    tokenizer_free(tok2);
    free(vocab2);
    dataset_free(&ref);

    /* regression targets */
    snprintf(src, sizeof src, "%s/regression.tsv", fixture_dir);
    spec.path = src;
    spec.tsv = (struct tsv_options){.text_a = "sentence", .label = "score",
                                    .problem = TSV_PROBLEM_REGRESSION};
    if (reference(&ref, &spec, NULL, tok, &err))
        bail_out("%s", err.msg);
    dataset_free(&d);
    rc = cached(&d, &spec, NULL, tok, vocab, dir, &rebuilt, NULL, NULL);
    dataset_free(&d);
    ok(rc == 0 && rebuilt == 1 &&
       cached(&d, &spec, NULL, tok, vocab, dir, &rebuilt, NULL, NULL) == 0 && rebuilt == 0 &&
       d.targets && !d.labels && same_dataset(&d, &ref),
       "regression.tsv: float targets round trip");
    dataset_free(&d);
    dataset_free(&ref);

    /* skipped rows are counted in the cache */
    snprintf(src, sizeof src, "%s/mixed_bad.tsv", fixture_dir);
    spec.tsv = (struct tsv_options){.text_a = "sentence", .label = "label",
                                    .bad_rows = TSV_BAD_ROWS_SKIP};
    if (reference(&ref, &spec, NULL, tok, &err))
        bail_out("%s", err.msg);
    rc = cached(&d, &spec, NULL, tok, vocab, dir, &rebuilt, NULL, NULL);
    dataset_free(&d);
    warn = NULL;
    ok(rc == 0 && rebuilt == 1 &&
       cached(&d, &spec, NULL, tok, vocab, dir, &rebuilt, &warn, NULL) == 0 && rebuilt == 0 &&
       d.n_skipped == 5 && same_dataset(&d, &ref) && contains(warn, "5 malformed rows"),
       "mixed_bad.tsv (bad_rows = skip): n_skipped round trips and is reported again");
    free(warn);
    dataset_free(&d);
    dataset_free(&ref);
    spec.tsv.bad_rows = TSV_BAD_ROWS_ERROR;
    ok(cached(&d, &spec, NULL, tok, vocab, dir, &rebuilt, NULL, NULL) == -1,
       "bad_rows = error is another setting: the reader's error comes through");
    dataset_free(&d);

    /* an unlabelled test file against a training map; another map rebuilds */
    struct label_map m;
    const char *names[] = {"0", "1"};
    label_map_from_names(&m, names, 2);
    m.kind = LABEL_KIND_INDEX;
    snprintf(src, sizeof src, "%s/test_nolabel.tsv", fixture_dir);
    spec.split = DATASET_SPLIT_TEST;
    spec.tsv = (struct tsv_options){.text_a = "sentence", .label = "label",
                                    .labels_optional = 1};
    if (reference(&ref, &spec, &m, tok, &err))
        bail_out("%s", err.msg);
    rc = cached(&d, &spec, &m, tok, vocab, dir, &rebuilt, NULL, NULL);
    dataset_free(&d);
    ok(rc == 0 && rebuilt == 1 &&
       cached(&d, &spec, &m, tok, vocab, dir, &rebuilt, NULL, NULL) == 0 && rebuilt == 0 &&
       same_dataset(&d, &ref) && d.map.kind == LABEL_KIND_NONE && !d.labels,
       "test_nolabel.tsv: no labels round trips (test.h5)");
    dataset_free(&d);
    const char *names3[] = {"0", "1", "2"};
    label_map_free(&m);
    label_map_from_names(&m, names3, 3);
    m.kind = LABEL_KIND_INDEX;
    ok(cached(&d, &spec, &m, tok, vocab, dir, &rebuilt, NULL, NULL) == 0 && rebuilt == 1,
       "another training label mapping rebuilds a test split");
    dataset_free(&d);
    label_map_free(&m);
    dataset_free(&ref);

    /* no cache directory: plain dataset_load */
    spec.path = tsv;
    spec.split = DATASET_SPLIT_TRAIN;
    spec.tsv = (struct tsv_options){.text_a = "sentence1", .text_b = "sentence2",
                                    .label = "label"};
    ok(cached(&d, &spec, NULL, tok, vocab, NULL, &rebuilt, NULL, NULL) == 0 && rebuilt == 1 &&
       d.n == 4, "cache_dir NULL: tokenized, nothing cached");
    dataset_free(&d);
    spec.path = "/nonexistent/train.tsv";
    ok(cached(&d, &spec, NULL, tok, vocab, dir, &rebuilt, NULL, NULL) == -1,
       "a missing TSV is the reader's error");
    dataset_free(&d);
    free(tsv);
    free(dir);
}

/* ---- damaged files -------------------------------------------------------------- */

/* Loads and expects a rebuild with a warning naming every needle; then a
 * reload from the repaired cache. */
static void expect_rebuild(const struct dataset_spec *spec, const struct dataset *ref,
                           tokenizer_t *tok, const char *vocab, const char *dir,
                           const char *what, const char *needle1, const char *needle2)
{
    struct dataset d;
    int rebuilt;
    char *warn = NULL;
    int rc = cached(&d, spec, NULL, tok, vocab, dir, &rebuilt, &warn, NULL);
    char *nl = warn ? strchr(warn, '\n') : NULL;
    if (nl)
        *nl = '\0';
    ok(rc == 0 && rebuilt == 1 && same_dataset(&d, ref) && contains(warn, "warning") &&
       contains(warn, needle1) && contains(warn, needle2),
       "%s: rebuilt with a warning: %s", what, warn ? warn : "(none)");
    free(warn);
    dataset_free(&d);
    ok(cached(&d, spec, NULL, tok, vocab, dir, &rebuilt, NULL, NULL) == 0 && rebuilt == 0 &&
       same_dataset(&d, ref), "%s: the rewritten cache reads back", what);
    dataset_free(&d);
}

static void test_damage(tokenizer_t *tok, const char *vocab, const char *root)
{
    char *dir = fs_path_join(root, "damage");
    char *path = dataset_cache_path(dir, DATASET_SPLIT_TRAIN);
    struct dataset_spec spec = {.task = DATASET_TASK_SYNTHETIC, .split = DATASET_SPLIT_TRAIN,
                                .synthetic_n = 12000, .seed = 7, .max_seq_len = 32};
    struct dataset ref, d;
    struct kd_err err;
    int rebuilt;
    if (reference(&ref, &spec, NULL, tok, &err))
        bail_out("%s", err.msg);
    ok(cached(&d, &spec, NULL, tok, vocab, dir, &rebuilt, NULL, NULL) == 0 && rebuilt == 1,
       "damage: cache built (12000 x 32: two chunks per [N,T] dataset)");
    dataset_free(&d);

    ok(corrupt_chunk(path, "/input_ids", 1) == 0, "4 bytes flipped inside chunk 1 of /input_ids");
    expect_rebuild(&spec, &ref, tok, vocab, dir, "flipped bytes", path, "/input_ids");
    ok(corrupt_chunk(path, "/labels", 0) == 0, "4 bytes flipped inside chunk 0 of /labels");
    expect_rebuild(&spec, &ref, tok, vocab, dir, "flipped label bytes", "/labels", "Fletcher32");

    struct stat st;
    if (stat(path, &st) != 0)
        bail_out("%s: stat failed", path);
    ok(truncate(path, st.st_size / 2) == 0,
       "cache truncated to %lld of %lld bytes", (long long)st.st_size / 2,
       (long long)st.st_size);
    expect_rebuild(&spec, &ref, tok, vocab, dir, "truncated file", path, "truncated");

    ok(set_root_str(path, "schema_version", "2.0") == 0, "schema_version set to 2.0");
    expect_rebuild(&spec, &ref, tok, vocab, dir, "another major version", "2.0", "major 1");
    ok(set_root_str(path, "schema_version", "1.7") == 0, "schema_version set to 1.7");
    ok(cached(&d, &spec, NULL, tok, vocab, dir, &rebuilt, NULL, NULL) == 0 && rebuilt == 0 &&
       same_dataset(&d, &ref), "a newer minor version of major 1 is read");
    dataset_free(&d);

    ok(set_root_str(path, "schema", "kd_hpc.teacher_store") == 0, "schema set to another product");
    expect_rebuild(&spec, &ref, tok, vocab, dir, "foreign HDF5 file", "not a dataset cache",
                   "kd_hpc.teacher_store");

    if (fs_file_write_atomic(path, "not HDF5\n", 9, &err))
        bail_out("%s", err.msg);
    expect_rebuild(&spec, &ref, tok, vocab, dir, "text file", path, "H5Fopen");

    ok(set_length0(path, 99) == 0, "lengths[0] set to 99 (checksum valid)");
    expect_rebuild(&spec, &ref, tok, vocab, dir, "value out of range", "/lengths",
                   "expected 2..32, got 99");

    /* a cache directory that cannot be created: the data still loads */
    char *blocked = fs_path_join(path, "sub");
    char *warn = NULL;
    ok(cached(&d, &spec, NULL, tok, vocab, blocked, &rebuilt, &warn, NULL) == 0 &&
       rebuilt == 1 && same_dataset(&d, &ref) && contains(warn, "not written"),
       "an unusable cache directory is a warning, the dataset is returned");
    free(warn);
    dataset_free(&d);
    free(blocked);
    ok(temp_files(dir) == 0, "no temporary file left after all rebuilds");
    dataset_free(&ref);
    free(path);
    free(dir);
}

/* ---- SST-2 ------------------------------------------------------------------ */

static void test_sst2(const char *root)
{
    const char *shared = getenv("KD_SHARED");
    char vocab[4096], train[4096], dev[4096];
    snprintf(vocab, sizeof vocab, "%s/data/vocab/bert-base-uncased-vocab.txt",
             shared ? shared : "");
    snprintf(train, sizeof train, "%s/data/glue/SST-2/train.tsv", shared ? shared : "");
    snprintf(dev, sizeof dev, "%s/data/glue/SST-2/dev.tsv", shared ? shared : "");
    if (!shared || access(vocab, R_OK) || access(train, R_OK) || access(dev, R_OK)) {
        skip(4, "bert-base-uncased vocab or SST-2 not found under $KD_SHARED/data");
        return;
    }
    tokenizer_t *tok;
    struct kd_err err;
    if (tokenizer_load(&tok, vocab, 1, &err))
        bail_out("%s", err.msg);
    char *dir = fs_path_join(root, "sst2");
    struct dataset_spec spec = {.task = DATASET_TASK_TSV, .split = DATASET_SPLIT_TRAIN,
                                .path = train, .max_seq_len = 128};
    spec.tsv = (struct tsv_options){.text_a = "sentence", .label = "label"};
    struct dataset built, read, dv;
    int rebuilt, rebuilt2;
    double t_build, t_read;
    int rc = cached(&built, &spec, NULL, tok, vocab, dir, &rebuilt, NULL, &t_build);
    int rc2 = cached(&read, &spec, NULL, tok, vocab, dir, &rebuilt2, NULL, &t_read);
    ok(rc == 0 && rc2 == 0 && rebuilt == 1 && rebuilt2 == 0 && read.n == 67349,
       "SST-2 train at T = 128: built, then read from the cache");
    ok(same_dataset(&read, &built), "SST-2 train: cached arrays equal the tokenized ones");
    char *path = dataset_cache_path(dir, DATASET_SPLIT_TRAIN);
    struct stat st;
    long long bytes = stat(path, &st) == 0 ? (long long)st.st_size : -1;
    diag("SST-2 train (67349 x 128): tokenize + write %.3f s, read %.3f s, cache %.1f MB "
         "(%.1f MB in memory)", t_build, t_read, (double)bytes / 1e6,
         12.0 * 67349 * 128 / 1e6);
    free(path);

    spec.path = dev;
    spec.split = DATASET_SPLIT_DEV;
    rc = cached(&dv, &spec, &built.map, tok, vocab, dir, &rebuilt, NULL, &t_build);
    dataset_free(&dv);
    rc2 = cached(&dv, &spec, &built.map, tok, vocab, dir, &rebuilt2, NULL, &t_read);
    ok(rc == 0 && rc2 == 0 && rebuilt == 1 && rebuilt2 == 0 && dv.n == 872,
       "SST-2 dev against the training map: built, then read");
    diag("SST-2 dev (872 x 128): tokenize + write %.3f s, read %.3f s", t_build, t_read);
    struct dataset ref;
    ok(reference(&ref, &spec, &built.map, tok, &err) == 0 && same_dataset(&dv, &ref),
       "SST-2 dev: cached arrays equal dataset_load's");
    dataset_free(&ref);
    dataset_free(&dv);
    dataset_free(&read);
    dataset_free(&built);
    tokenizer_free(tok);
    free(dir);
}

/* ---- the schema's sample file ------------------------------------------------------ */

/* pair.tsv (3 rows, T = 12) with the synthetic vocabulary, cached into
 * DIR/cache/train.h5: every dataset of a labelled TSV split. */
static int generate(const char *dir)
{
    struct kd_err err;
    char *vocab = fs_path_join(dir, "vocab.txt"), *cache = fs_path_join(dir, "cache");
    char tsv[4200];
    snprintf(tsv, sizeof tsv, "%s/pair.tsv", fixture_dir);
    tokenizer_t *tok = NULL;
    struct dataset d;
    struct dataset_spec spec = {.task = DATASET_TASK_TSV, .split = DATASET_SPLIT_TRAIN,
                                .max_seq_len = 12, .path = tsv};
    spec.tsv = (struct tsv_options){.text_a = "sentence1", .text_b = "sentence2",
                                    .label = "label"};
    int rebuilt = 0, rc = -1;
    if (synthetic_vocab_write(vocab, &err) == 0 && tokenizer_load(&tok, vocab, 1, &err) == 0 &&
        dataset_cache_load(&d, &spec, NULL, tok, vocab, cache, &rebuilt, &err) == 0) {
        rc = rebuilt == 1 ? 0 : -1;
        if (rc)
            fprintf(stderr, "%s: a cache existed already\n", cache);
        dataset_free(&d);
    } else {
        fprintf(stderr, "%s\n", err.msg);
    }
    tokenizer_free(tok);
    free(vocab);
    free(cache);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    log_init(0, 1);
    log_set_level(LOG_LEVEL_WARN); /* warnings are captured and checked */
    find_fixtures();
    if (argc == 3 && !strcmp(argv[1], "--gen"))
        return generate(argv[2]);
    char root[] = "/tmp/t_dataset_cache.XXXXXX";
    if (!mkdtemp(root))
        bail_out("mkdtemp failed");
    char *vocab = fs_path_join(root, "vocab.txt");
    struct kd_err err;
    tokenizer_t *tok;
    if (synthetic_vocab_write(vocab, &err) || tokenizer_load(&tok, vocab, 1, &err))
        bail_out("%s", err.msg);
    test_synthetic(tok, vocab, root);
    test_tsv(tok, vocab, root);
    test_damage(tok, vocab, root);
    tokenizer_free(tok);
    test_sst2(root);
    free(vocab);
    remove_tree(root);
    return done_testing();
}
