/* dataset_cache.c: the tokenized dataset cache (io layer; serial HDF5, no
 * MPI). Contract in include/kd/io/dataset_cache.h, format in
 * hdf5-schemas/dataset_cache.v1.md.
 *
 * Flow of dataset_cache_load:
 *   ident_make    hashes the source and the vocabulary, builds the settings
 *                 JSON and the key
 *   cache_read    opens <dir>/<split>.h5: schema, major version and key
 *                 first, then the arrays (checksums verified by HDF5) and
 *                 their invariants; "stale" and "unusable" are told apart
 *   dataset_load  on any miss, then cache_write: "<path>.tmp.<pid>" through
 *                 core/atomic_file.h, fsync, rename
 */
#include "config.h"
#include "kd/io/dataset_cache.h"
#include "kd/core/atomic_file.h"
#include "kd/core/fsutil.h"
#include "kd/core/log.h"
#include "kd/io/h5.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Chunks of about 1 MiB along N. Deflate level 1 without shuffle: measured
 * on SST-2 train at T = 128 (67,349 x 128, tests/io/t_dataset_cache and a
 * one-off comparison) the file is 3.3 MB instead of 105 MB (padding, types
 * and mask are mostly zeros); writing takes about 0.25 s instead of 0.06 s
 * and reading from the page cache 0.09 s instead of 0.03 s. Shuffle saves
 * another 0.6 MB but doubles the read time. Every rank reads the file, from
 * a shared file system on a cluster, so bytes matter more than inflate. */
#define CACHE_CHUNK_BYTES ((size_t)1 << 20)
#define CACHE_DEFLATE_LEVEL 1u

static const char *const split_names[] = {"train", "dev", "test"};

static const char *split_name(int split)
{
    return split >= 0 && split <= 2 ? split_names[split] : "?";
}

char *dataset_cache_path(const char *cache_dir, int split)
{
    char name[32];
    snprintf(name, sizeof name, "%s.h5", split_name(split));
    return fs_path_join(cache_dir, name);
}

/* ---- identity: hashes, settings, key -------------------------------------- */

struct cache_ident {
    char source_sha256[FS_SHA256_HEX_LEN];
    char vocab_sha256[FS_SHA256_HEX_LEN];
    char key[FS_SHA256_HEX_LEN];
    char *settings; /* JSON, compact */
};

static void ident_free(struct cache_ident *id)
{
    free(id->settings);
    id->settings = NULL;
}

static int is_synthetic(const struct dataset_spec *spec)
{
    return spec->task == DATASET_TASK_SYNTHETIC || spec->task == DATASET_TASK_SYNTHETIC_PAIR;
}

/* dataset_load applies the label noise to the training split only. */
static double effective_noise(const struct dataset_spec *spec)
{
    return spec->split == DATASET_SPLIT_TRAIN ? spec->synthetic_noise : 0.0;
}

static cJSON *json_str_or_null(const char *s)
{
    return s && s[0] ? cJSON_CreateString(s) : cJSON_CreateNull();
}

/* Integers as raw text so that 64-bit values stay exact. */
static cJSON *json_int(long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    return cJSON_CreateRaw(buf);
}

static cJSON *json_label_map(const struct label_map *m)
{
    cJSON *o = cJSON_CreateObject(), *names = cJSON_CreateArray();
    cJSON_AddItemToObject(o, "kind", cJSON_CreateString(label_kind_name(m->kind)));
    cJSON_AddItemToObject(o, "num_labels", json_int(m->num_labels));
    for (int32_t i = 0; m->names && i < m->num_labels; i++)
        cJSON_AddItemToArray(names, cJSON_CreateString(m->names[i]));
    cJSON_AddItemToObject(o, "names", names);
    return o;
}

/* Everything besides the source bytes and the vocabulary that changes what
 * dataset_load produces, and nothing else: the TSV columns are null for the
 * synthetic tasks and the synthetic parameters null for a TSV, so that
 * unrelated keys of a job do not rebuild the cache. The key order is fixed,
 * so equal settings give equal text. */
static char *settings_json(const struct dataset_spec *spec, const struct label_map *train_map,
                           int do_lower_case)
{
    static const char *const tasks[] = {"tsv", "synthetic", "synthetic_pair"};
    const int tsv = spec->task == DATASET_TASK_TSV;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "task", cJSON_CreateString(spec->task >= 0 && spec->task <= 2
                                                            ? tasks[spec->task] : "?"));
    cJSON_AddItemToObject(o, "split", cJSON_CreateString(split_name(spec->split)));
    cJSON_AddItemToObject(o, "do_lower_case", cJSON_CreateBool(do_lower_case));
    cJSON_AddItemToObject(o, "max_seq_len", json_int(spec->max_seq_len));
    cJSON_AddItemToObject(o, "text_a", tsv ? json_str_or_null(spec->tsv.text_a)
                                           : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "text_b", tsv ? json_str_or_null(spec->tsv.text_b)
                                           : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "label", tsv ? json_str_or_null(spec->tsv.label)
                                          : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "labels_optional",
                          tsv ? cJSON_CreateBool(spec->tsv.labels_optional != 0)
                              : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "problem",
                          cJSON_CreateString(spec->tsv.problem == TSV_PROBLEM_REGRESSION
                                                 ? "regression" : "classification"));
    cJSON_AddItemToObject(o, "num_labels", json_int(spec->tsv.num_labels));
    cJSON_AddItemToObject(o, "bad_rows",
                          tsv ? cJSON_CreateString(spec->tsv.bad_rows == TSV_BAD_ROWS_SKIP
                                                       ? "skip" : "error")
                              : cJSON_CreateNull());
    if (is_synthetic(spec)) {
        cJSON *s = cJSON_CreateObject();
        char noise[40];
        snprintf(noise, sizeof noise, "%.17g", effective_noise(spec));
        cJSON_AddItemToObject(s, "kind", cJSON_CreateString(tasks[spec->task]));
        cJSON_AddItemToObject(s, "n", json_int(spec->synthetic_n));
        cJSON_AddItemToObject(s, "noise", cJSON_CreateRaw(noise));
        char seed[32];
        snprintf(seed, sizeof seed, "%" PRIu64, spec->seed);
        cJSON_AddItemToObject(s, "seed", cJSON_CreateRaw(seed));
        cJSON_AddItemToObject(o, "synthetic", s);
    } else {
        cJSON_AddItemToObject(o, "synthetic", cJSON_CreateNull());
    }
    /* a dev/test file's label ids come from the training mapping */
    cJSON_AddItemToObject(o, "train_labels", tsv && train_map ? json_label_map(train_map)
                                                              : cJSON_CreateNull());
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char *out = kd_strdup(text);
    cJSON_free(text);
    return out;
}

/* Hashes and key. Fails only when a file cannot be read. */
static int ident_make(struct cache_ident *id, const struct dataset_spec *spec,
                      const struct label_map *train_map, tokenizer_t *tok,
                      const char *vocab_path, struct kd_err *err)
{
    memset(id, 0, sizeof *id);
    if (is_synthetic(spec)) {
        /* the generator is deterministic in these parameters */
        char params[256];
        int n = snprintf(params, sizeof params,
                         "%s split=%s n=%lld noise=%.17g seed=%" PRIu64,
                         spec->task == DATASET_TASK_SYNTHETIC ? "synthetic" : "synthetic_pair",
                         split_name(spec->split), (long long)spec->synthetic_n,
                         effective_noise(spec), spec->seed);
        if (fs_buffer_sha256(params, (size_t)n, id->source_sha256, err) < 0)
            return -1;
    } else if (fs_file_sha256(spec->path, id->source_sha256, err) < 0) {
        return -1;
    }
    if (fs_file_sha256(vocab_path, id->vocab_sha256, err) < 0)
        return -1;
    id->settings = settings_json(spec, train_map, tokenizer_do_lower_case(tok));
    size_t len = strlen(id->settings) + 512;
    char *text = kd_malloc(len);
    int n = snprintf(text, len,
                     "%s/%d\nkd_hpc_version=%s\nsource_sha256=%s\nvocab_sha256=%s\n"
                     "settings=%s\n", DATASET_CACHE_SCHEMA, DATASET_CACHE_SCHEMA_MAJOR,
                     PACKAGE_VERSION, id->source_sha256, id->vocab_sha256, id->settings);
    int rc = fs_buffer_sha256(text, (size_t)n, id->key, err);
    free(text);
    if (rc < 0)
        ident_free(id);
    return rc;
}

/* ---- writing ---------------------------------------------------------------- */

/* Rows per chunk: about CACHE_CHUNK_BYTES, at least 1, at most n. */
static hsize_t chunk_rows(size_t row_bytes, int64_t n)
{
    hsize_t c = (hsize_t)(CACHE_CHUNK_BYTES / row_bytes);
    if (c < 1)
        c = 1;
    return c > (hsize_t)n ? (hsize_t)n : c;
}

/* One chunked, deflated, Fletcher32-checked dataset of n rows of `cols`
 * elements (cols == 0: 1-D), written whole. */
static int write_dset(hid_t file, const char *name, hid_t ftype, hid_t mtype, int64_t n,
                      int64_t cols, const void *buf, struct kd_err *err)
{
    int rc = -1;
    hid_t dcpl = H5I_INVALID_HID, space = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    const int rank = cols > 0 ? 2 : 1;
    hsize_t dims[2] = {(hsize_t)n, (hsize_t)cols};
    hsize_t chunk[2] = {chunk_rows(H5Tget_size(ftype) * (size_t)(cols > 0 ? cols : 1), n),
                        (hsize_t)cols};
    H5_CHECK(err, dcpl = H5Pcreate(H5P_DATASET_CREATE), "%s: creation list", name);
    H5_CHECK(err, H5Pset_chunk(dcpl, rank, chunk), "%s: chunks", name);
    H5_CHECK(err, H5Pset_deflate(dcpl, CACHE_DEFLATE_LEVEL), "%s: deflate", name);
    /* last, so the checksum covers the bytes on disk */
    H5_CHECK(err, H5Pset_fletcher32(dcpl), "%s: Fletcher32", name);
    /* written whole in one call: no fill values needed */
    H5_CHECK(err, H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), "%s: fill time", name);
    H5_CHECK(err, space = H5Screate_simple(rank, dims, NULL), "%s: space", name);
    H5_CHECK(err, ds = H5Dcreate2(file, name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
             "%s: create", name);
    H5_CHECK(err, H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), "%s: write", name);
    rc = 0;
done:
    h5_close_any(&ds);
    h5_close_any(&space);
    h5_close_any(&dcpl);
    return rc;
}

static int write_attrs(hid_t file, const struct dataset *d, const struct cache_ident *id,
                       struct kd_err *err)
{
    char created[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON *labels = json_label_map(&d->map);
    char *labels_text = cJSON_PrintUnformatted(labels);
    cJSON_Delete(labels);
    int rc = -1;
    if (h5_attr_write_str(file, "schema", DATASET_CACHE_SCHEMA, err) < 0 ||
        h5_attr_write_str(file, "schema_version", DATASET_CACHE_SCHEMA_VERSION, err) < 0 ||
        h5_attr_write_str(file, "kd_hpc_version", PACKAGE_VERSION, err) < 0 ||
        h5_attr_write_str(file, "key", id->key, err) < 0 ||
        h5_attr_write_str(file, "source", d->name, err) < 0 ||
        h5_attr_write_str(file, "source_sha256", id->source_sha256, err) < 0 ||
        h5_attr_write_str(file, "vocab_sha256", id->vocab_sha256, err) < 0 ||
        h5_attr_write_json(file, "settings", id->settings, err) < 0 ||
        h5_attr_write_str(file, "created", created, err) < 0 ||
        h5_attr_write_json(file, "labels", labels_text, err) < 0 ||
        h5_attr_write_i32(file, "pair", d->pair, err) < 0 ||
        h5_attr_write_i64(file, "n_truncated", d->n_truncated, err) < 0 ||
        h5_attr_write_i64(file, "n_unk", d->n_unk, err) < 0 ||
        h5_attr_write_i64(file, "n_skipped", d->n_skipped, err) < 0)
        goto done;
    rc = 0;
done:
    cJSON_free(labels_text);
    return rc;
}

/* Everything that talks to HDF5 while writing, into tmp. */
static int write_file(const char *tmp, const struct dataset *d, const struct cache_ident *id,
                      struct kd_err *err)
{
    int rc = -1;
    hid_t fapl = H5I_INVALID_HID, file = H5I_INVALID_HID;
    const int64_t n = d->n, t = d->max_seq_len;
    if ((fapl = h5_fapl_serial(err)) < 0)
        goto done;
    /* 1.8 object formats: checksummed superblock and object headers, so
     * damaged metadata is detected too; any HDF5 >= 1.8 reads it */
    H5_CHECK(err, H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18),
             "format bounds");
    H5_CHECK(err, file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl), "create");
    if (write_attrs(file, d, id, err) < 0 ||
        write_dset(file, "/input_ids", H5T_STD_I32LE, H5T_NATIVE_INT32, n, t, d->input_ids,
                   err) < 0 ||
        write_dset(file, "/token_type_ids", H5T_STD_I32LE, H5T_NATIVE_INT32, n, t,
                   d->token_type_ids, err) < 0 ||
        write_dset(file, "/attention_mask", H5T_STD_I32LE, H5T_NATIVE_INT32, n, t,
                   d->attention_mask, err) < 0 ||
        write_dset(file, "/lengths", H5T_STD_I32LE, H5T_NATIVE_INT32, n, 0, d->lengths,
                   err) < 0)
        goto done;
    if (d->labels && write_dset(file, "/labels", H5T_STD_I32LE, H5T_NATIVE_INT32, n, 0,
                                d->labels, err) < 0)
        goto done;
    if (d->targets && write_dset(file, "/targets", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, n, 0,
                                 d->targets, err) < 0)
        goto done;
    if (d->source_lines && write_dset(file, "/source_lines", H5T_STD_I64LE, H5T_NATIVE_INT64,
                                      n, 0, d->source_lines, err) < 0)
        goto done;
    hid_t f = file;
    file = H5I_INVALID_HID;
    H5_CHECK(err, H5Fclose(f), "close");
    rc = 0;
done:
    h5_close_any(&file);
    h5_close_any(&fapl);
    return rc;
}

/* Writes the cache of d at path through "<path>.tmp.<pid>". The temporary
 * name comes from fs_atomic_open, whose (still empty) stream keeps the file
 * open; HDF5 truncates and writes the same file by name, and
 * fs_atomic_commit's fsync on that stream flushes the file's data whichever
 * descriptor wrote it, then renames. */
static int cache_write(const char *path, const struct dataset *d,
                       const struct cache_ident *id, struct kd_err *err)
{
    struct fs_atomic a;
    if (fs_atomic_open(&a, path, err->msg, sizeof err->msg) < 0)
        return -1;
    if (write_file(a.tmp_path, d, id, err) < 0) {
        kd_err_prefix(err, "%s", a.tmp_path);
        fs_atomic_abort(&a);
        return -1;
    }
    return fs_atomic_commit(&a, err->msg, sizeof err->msg);
}

/* ---- reading ---------------------------------------------------------------- */

/* "[N]" or "[N,T]" */
static void shape_text(char *buf, size_t len, int rank, const hsize_t *dims)
{
    if (rank == 2)
        snprintf(buf, len, "[%llu,%llu]", (unsigned long long)dims[0],
                 (unsigned long long)dims[1]);
    else
        snprintf(buf, len, "[%llu]", (unsigned long long)dims[0]);
}

/* Opens a dataset that must have shape dims[0..rank) and the integer or
 * float class of `cls` with `esize` bytes, and reads it whole into a new
 * buffer (malloc: a damaged shape must not end the job). */
static int read_dset(hid_t file, const char *name, int rank, const hsize_t *dims,
                     H5T_class_t cls, size_t esize, hid_t mtype, void **out,
                     struct kd_err *err)
{
    int rc = -1;
    hid_t ds = H5I_INVALID_HID, sp = H5I_INVALID_HID, ft = H5I_INVALID_HID;
    hsize_t got[2] = {0, 0};
    void *buf = NULL;
    *out = NULL;
    H5_CHECK(err, ds = H5Dopen2(file, name, H5P_DEFAULT), "%s: open", name);
    H5_CHECK(err, sp = H5Dget_space(ds), "%s: space", name);
    H5_CHECK(err, ft = H5Dget_type(ds), "%s: type", name);
    int r = H5Sget_simple_extent_ndims(sp);
    if (r != rank || H5Sget_simple_extent_dims(sp, got, NULL) < 0 || got[0] != dims[0] ||
        (rank == 2 && got[1] != dims[1])) {
        char want_text[64], got_text[64];
        shape_text(want_text, sizeof want_text, rank, dims);
        shape_text(got_text, sizeof got_text, r >= 1 && r <= 2 ? r : 0, got);
        kd_errf(err, "%s: expected shape %s, got %s", name, want_text,
                r >= 1 && r <= 2 ? got_text : "another rank");
        goto done;
    }
    if (H5Tget_class(ft) != cls || H5Tget_size(ft) != esize) {
        kd_errf(err, "%s: expected %s%zu, got another type", name,
                cls == H5T_INTEGER ? "int" : "float", 8 * esize);
        goto done;
    }
    size_t count = (size_t)dims[0] * (rank == 2 ? (size_t)dims[1] : 1);
    buf = malloc(count ? count * esize : 1);
    if (!buf) {
        kd_errf(err, "%s: cannot allocate %zu bytes", name, count * esize);
        goto done;
    }
    H5_CHECK(err, H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), "%s: read", name);
    *out = buf;
    buf = NULL;
    rc = 0;
done:
    free(buf);
    h5_close_any(&ft);
    h5_close_any(&sp);
    h5_close_any(&ds);
    return rc;
}

/* Rebuilds a label mapping from the `labels` attribute's JSON. */
static int parse_labels(const char *text, struct label_map *m, struct kd_err *err)
{
    memset(m, 0, sizeof *m);
    cJSON *o = cJSON_Parse(text);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "num_labels");
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(o, "names");
    int rc = -1, which = -1;
    for (int i = LABEL_KIND_NONE; i <= LABEL_KIND_REGRESSION; i++)
        if (cJSON_IsString(kind) && strcmp(kind->valuestring, label_kind_name(i)) == 0)
            which = i;
    if (which < 0 || !cJSON_IsNumber(k) || !cJSON_IsArray(names)) {
        kd_errf(err, "attribute 'labels': expected {\"kind\": none|integer|string|"
                "regression, \"num_labels\": K, \"names\": [...]}, got %.200s", text);
        goto done;
    }
    int nn = cJSON_GetArraySize(names);
    int want_names = which == LABEL_KIND_INDEX || which == LABEL_KIND_NAME;
    int want_k = which == LABEL_KIND_NONE ? 0 : which == LABEL_KIND_REGRESSION ? 1 : nn;
    if (k->valuedouble != want_k || (want_names ? nn < 1 : nn != 0)) {
        kd_errf(err, "attribute 'labels': kind %s with num_labels %g and %d names is "
                "inconsistent", label_kind_name(which), k->valuedouble, nn);
        goto done;
    }
    m->kind = which;
    m->num_labels = want_k;
    if (want_names) {
        m->names = kd_calloc((size_t)nn, sizeof *m->names);
        for (int i = 0; i < nn; i++) {
            const cJSON *s = cJSON_GetArrayItem(names, i);
            if (!cJSON_IsString(s)) {
                kd_errf(err, "attribute 'labels': names[%d] is not a string", i);
                goto done;
            }
            m->names[i] = kd_strdup(s->valuestring);
        }
    }
    rc = 0;
done:
    if (rc < 0)
        label_map_free(m);
    cJSON_Delete(o);
    return rc;
}

static int read_i64_attr(hid_t file, const char *name, int64_t lo, int64_t hi, int64_t *v,
                         struct kd_err *err)
{
    if (h5_attr_read_i64(file, name, v, err) < 0)
        return -1;
    if (*v < lo || *v > hi)
        return kd_errf(err, "attribute '%s': expected %lld..%lld, got %lld", name,
                       (long long)lo, (long long)hi, (long long)*v);
    return 0;
}

/* Arrays, label mapping and counts of an identified file into d. */
static int read_content(hid_t file, struct dataset *d, const struct dataset_spec *spec,
                        struct kd_err *err)
{
    int rc = -1;
    hid_t ds = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    char *labels = NULL;
    int64_t pair;
    hsize_t n = 0;
    const hsize_t t = (hsize_t)spec->max_seq_len;
    if (h5_attr_read_json(file, "labels", &labels, err) < 0 ||
        parse_labels(labels, &d->map, err) < 0 ||
        read_i64_attr(file, "pair", 0, 1, &pair, err) < 0)
        goto done;
    d->pair = (int)pair;
    d->max_seq_len = spec->max_seq_len;
    /* N from /lengths; every other dataset must agree */
    H5_CHECK(err, ds = H5Dopen2(file, "/lengths", H5P_DEFAULT), "/lengths: open");
    H5_CHECK(err, sp = H5Dget_space(ds), "/lengths: space");
    if (H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, &n, NULL) < 0) {
        kd_errf(err, "/lengths: expected one dimension");
        goto done;
    }
    d->n = (int64_t)n;
    if (read_i64_attr(file, "n_truncated", 0, d->n, &d->n_truncated, err) < 0 ||
        read_i64_attr(file, "n_unk", 0, d->n * (int64_t)t, &d->n_unk, err) < 0 ||
        read_i64_attr(file, "n_skipped", 0, INT64_MAX, &d->n_skipped, err) < 0)
        goto done;
    const hsize_t nt[2] = {n, t};
    if (read_dset(file, "/input_ids", 2, nt, H5T_INTEGER, 4, H5T_NATIVE_INT32,
                  (void **)&d->input_ids, err) < 0 ||
        read_dset(file, "/token_type_ids", 2, nt, H5T_INTEGER, 4, H5T_NATIVE_INT32,
                  (void **)&d->token_type_ids, err) < 0 ||
        read_dset(file, "/attention_mask", 2, nt, H5T_INTEGER, 4, H5T_NATIVE_INT32,
                  (void **)&d->attention_mask, err) < 0 ||
        read_dset(file, "/lengths", 1, nt, H5T_INTEGER, 4, H5T_NATIVE_INT32,
                  (void **)&d->lengths, err) < 0)
        goto done;
    int has_labels = d->map.kind == LABEL_KIND_INDEX || d->map.kind == LABEL_KIND_NAME;
    if (has_labels && read_dset(file, "/labels", 1, nt, H5T_INTEGER, 4, H5T_NATIVE_INT32,
                                (void **)&d->labels, err) < 0)
        goto done;
    if (d->map.kind == LABEL_KIND_REGRESSION &&
        read_dset(file, "/targets", 1, nt, H5T_FLOAT, 4, H5T_NATIVE_FLOAT,
                  (void **)&d->targets, err) < 0)
        goto done;
    if (spec->task == DATASET_TASK_TSV &&
        read_dset(file, "/source_lines", 1, nt, H5T_INTEGER, 8, H5T_NATIVE_INT64,
                  (void **)&d->source_lines, err) < 0)
        goto done;
    /* invariants the checksums cannot vouch for (a file written by
     * something else with the right key) */
    const int32_t min_len = d->pair ? 3 : 2;
    for (int64_t i = 0; i < d->n; i++) {
        if (d->lengths[i] < min_len || d->lengths[i] > (int32_t)t) {
            kd_errf(err, "/lengths: example %lld: expected %d..%d, got %d", (long long)i,
                    min_len, (int)t, d->lengths[i]);
            goto done;
        }
        if (d->labels && (d->labels[i] < 0 || d->labels[i] >= d->map.num_labels)) {
            kd_errf(err, "/labels: example %lld: expected 0..%d, got %d", (long long)i,
                    d->map.num_labels - 1, d->labels[i]);
            goto done;
        }
    }
    rc = 0;
done:
    free(labels);
    h5_close_any(&sp);
    h5_close_any(&ds);
    return rc;
}

/* Names the parts of the identity that differ, for the "stale" message. */
static void describe_change(hid_t file, const struct cache_ident *id, char *why, size_t len)
{
    const char *names[4] = {"source_sha256", "vocab_sha256", "settings", "kd_hpc_version"};
    const char *want[4] = {id->source_sha256, id->vocab_sha256, id->settings,
                           PACKAGE_VERSION};
    const char *what[4] = {"source data", "vocabulary", "settings", "kd_hpc version"};
    size_t used = 0;
    why[0] = '\0';
    for (int i = 0; i < 4; i++) {
        struct kd_err ignore;
        char *have = NULL;
        if (h5_attr_read_str(file, names[i], &have, &ignore) < 0 || strcmp(have, want[i]))
            used += (size_t)snprintf(why + used, used < len ? len - used : 0, "%s%s",
                                     used ? ", " : "", what[i]);
        free(have);
        if (used >= len)
            break;
    }
    if (!why[0])
        snprintf(why, len, "key");
}

enum cache_state { CACHE_HIT = 0, CACHE_STALE = 1, CACHE_BAD = -1 };

/* Reads <path> into d if it is a dataset cache of this major version with
 * this key. CACHE_STALE: a valid cache of other inputs (why says which);
 * CACHE_BAD: unusable, err says why (d is then empty). */
static enum cache_state cache_read(struct dataset *d, const char *path,
                                   const struct cache_ident *id,
                                   const struct dataset_spec *spec, char *why, size_t why_len,
                                   struct kd_err *err)
{
    enum cache_state state = CACHE_BAD;
    hid_t fapl = H5I_INVALID_HID, file = H5I_INVALID_HID;
    char *schema = NULL, *version = NULL, *key = NULL;
    memset(d, 0, sizeof *d);
    if ((fapl = h5_fapl_serial(err)) < 0)
        goto done;
    H5_CHECK(err, file = H5Fopen(path, H5F_ACC_RDONLY, fapl), "open");
    /* what the file is, before anything else is trusted */
    if (h5_attr_read_str(file, "schema", &schema, err) < 0)
        goto done;
    if (strcmp(schema, DATASET_CACHE_SCHEMA) != 0) {
        kd_errf(err, "not a dataset cache: attribute schema is \"%s\", expected \"%s\"",
                schema, DATASET_CACHE_SCHEMA);
        goto done;
    }
    if (h5_attr_read_str(file, "schema_version", &version, err) < 0)
        goto done;
    int major = -1, minor = -1;
    char extra;
    if (sscanf(version, "%d.%d%c", &major, &minor, &extra) != 2 || major < 0 || minor < 0) {
        kd_errf(err, "schema_version: expected MAJOR.MINOR, got \"%s\"", version);
        goto done;
    }
    if (major != DATASET_CACHE_SCHEMA_MAJOR) {
        kd_errf(err, "schema_version is %s (major %d), this kd_hpc reads major %d (%d.x)",
                version, major, DATASET_CACHE_SCHEMA_MAJOR, DATASET_CACHE_SCHEMA_MAJOR);
        goto done;
    }
    if (h5_attr_read_str(file, "key", &key, err) < 0)
        goto done;
    if (strcmp(key, id->key) != 0) {
        describe_change(file, id, why, why_len);
        state = CACHE_STALE;
        goto done;
    }
    if (read_content(file, d, spec, err) < 0)
        goto done;
    hid_t f = file;
    file = H5I_INVALID_HID;
    H5_CHECK(err, H5Fclose(f), "close");
    state = CACHE_HIT;
done:
    if (state != CACHE_HIT) {
        if (state == CACHE_BAD)
            kd_err_prefix(err, "%s", path);
        dataset_free(d);
    }
    free(schema);
    free(version);
    free(key);
    h5_close_any(&file);
    h5_close_any(&fapl);
    return state;
}

/* The name dataset_load gives (the TSV path, or "synthetic:train"). */
static char *source_name(const struct dataset_spec *spec)
{
    if (!is_synthetic(spec))
        return kd_strdup(spec->path);
    char name[64];
    snprintf(name, sizeof name, "%s:%s",
             spec->task == DATASET_TASK_SYNTHETIC ? "synthetic" : "synthetic_pair",
             split_name(spec->split));
    return kd_strdup(name);
}

/* The warnings dataset_load prints while building, repeated on a hit so a
 * cached run tells the user the same things. */
static void warn_counts(const struct dataset *d)
{
    if (d->n_skipped)
        log_warn0("%s: %lld malformed rows were skipped (data.bad_rows = skip) when the "
                  "cache was built", d->name, (long long)d->n_skipped);
    if (d->n_truncated)
        log_warn0("%s: %lld of %lld examples (%.2f%%) are longer than max_seq_len = %lld "
                  "tokens and were truncated (longest first)", d->name,
                  (long long)d->n_truncated, (long long)d->n,
                  100.0 * (double)d->n_truncated / (double)d->n, (long long)d->max_seq_len);
}

/* ---- the entry point -------------------------------------------------------- */

int dataset_cache_load(struct dataset *d, const struct dataset_spec *spec,
                       const struct label_map *train_map, tokenizer_t *tok,
                       const char *vocab_path, const char *cache_dir, int *rebuilt,
                       struct kd_err *err)
{
    int dummy;
    if (!rebuilt)
        rebuilt = &dummy;
    *rebuilt = 1;
    memset(d, 0, sizeof *d);
    if (!cache_dir || !cache_dir[0])
        return dataset_load(d, spec, train_map, tok, err);
    /* a missing TSV is reported by the reader, in its own words */
    if (!is_synthetic(spec) && (!spec->path || !fs_file_exists(spec->path)))
        return dataset_load(d, spec, train_map, tok, err);
    h5_init();
    double t0 = wall_seconds();
    struct cache_ident id;
    if (ident_make(&id, spec, train_map, tok, vocab_path, err) < 0)
        return kd_err_prefix(err, "dataset cache");
    char *path = dataset_cache_path(cache_dir, spec->split);
    int rc = -1;
    if (fs_file_exists(path)) {
        char why[256];
        struct kd_err rerr;
        enum cache_state s = cache_read(d, path, &id, spec, why, sizeof why, &rerr);
        if (s == CACHE_HIT) {
            d->name = source_name(spec);
            *rebuilt = 0;
            log_info0("%s: %lld examples read from the dataset cache %s in %.2f s", d->name,
                      (long long)d->n, path, wall_seconds() - t0);
            warn_counts(d);
            rc = 0;
            goto done;
        }
        if (s == CACHE_STALE)
            log_info("%s: the dataset cache is stale (%s changed); tokenizing again", path,
                     why);
        else
            log_warn("dataset cache unusable, tokenizing again: %s", rerr.msg);
    }
    if (dataset_load(d, spec, train_map, tok, err) < 0)
        goto done;
    rc = 0;
    char cerr[256];
    struct kd_err werr;
    if (fs_mkdir_p(cache_dir, cerr, sizeof cerr) < 0) {
        log_warn("dataset cache not written: %s", cerr);
    } else if (d->n < 1) {
        log_warn("%s: dataset cache not written: no examples", path);
    } else if (cache_write(path, d, &id, &werr) < 0) {
        log_warn("dataset cache not written: %s", werr.msg);
    } else {
        log_info("%s: %lld examples tokenized and written to the dataset cache %s in %.2f s",
                 d->name, (long long)d->n, path, wall_seconds() - t0);
    }
done:
    free(path);
    ident_free(&id);
    return rc;
}
