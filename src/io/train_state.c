/* train_state.c: training-state checkpoints (io layer; serial HDF5, no
 * MPI). Contract and file layout in include/kd/io/train_state.h.
 *
 * Writing goes through core/atomic_file.h exactly as the dataset cache
 * does: fs_atomic_open picks "<path>.tmp.<pid>", HDF5 writes that name, and
 * fs_atomic_commit fsyncs and renames, so <path> holds the previous
 * checkpoint until the new one is complete. Reading checks the description
 * the caller gives before copying any data into its buffers where it can
 * (attributes and shapes first), so a wrong file is named precisely. */
#include "config.h"
#include "kd/io/train_state.h"
#include "kd/core/atomic_file.h"
#include "kd/core/fsutil.h"
#include "kd/io/h5.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 1 Mi floats (4 MiB) per chunk: large enough that chunk indexing costs
 * nothing, small enough that a damaged chunk is a small read. */
#define TS_CHUNK_ELEMS ((hsize_t)1 << 20)

char *train_state_path(const char *dir, const char *stage, int pipe_stage)
{
    char name[512];
    if (pipe_stage >= 0)
        snprintf(name, sizeof name, "%s.state.p%02d.h5", stage, pipe_stage);
    else
        snprintf(name, sizeof name, "%s.state.h5", stage);
    return fs_path_join(dir, name);
}

/* Link and attribute names we create: no '/', not "." or "..", printable;
 * the restriction keeps h5dump output and error messages unambiguous. */
static int name_ok(const char *name)
{
    if (!name || !name[0] || name[0] == '.')
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-'))
            return 0;
    return 1;
}

/* Checks what save needs before the file is created, so a bad description
 * never replaces a good checkpoint. */
static int check_desc(const struct train_state *s, int saving, struct kd_err *err)
{
    if (!s->stage || !s->stage[0])
        return kd_errf(err, "train state: the stage name is empty");
    if (!s->fingerprint || strlen(s->fingerprint) != FS_SHA256_HEX_LEN - 1)
        return kd_errf(err, "train state of stage %s: expected a 64-digit hex fingerprint, "
                       "got \"%s\"", s->stage, s->fingerprint ? s->fingerprint : "(null)");
    if (s->n_params && (!s->params || !s->adam_m || !s->adam_v))
        return kd_errf(err, "train state of stage %s: %zu parameters but a NULL parameter "
                       "or moment buffer", s->stage, s->n_params);
    for (size_t i = 0; i < s->n_blocks; i++) {
        const struct train_state_block *b = &s->blocks[i];
        if (!name_ok(b->name))
            return kd_errf(err, "train state of stage %s: block %zu: invalid name \"%s\" "
                           "(letters, digits, '_', '.', '-')", s->stage, i,
                           b->name ? b->name : "(null)");
        if (b->n && !b->data)
            return kd_errf(err, "train state of stage %s: block %s: NULL buffer for %zu "
                           "elements", s->stage, b->name, b->n);
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->blocks[j].name, b->name) == 0)
                return kd_errf(err, "train state of stage %s: block %s named twice",
                               s->stage, b->name);
    }
    size_t ns = s->n_ints + s->n_reals;
    for (size_t i = 0; i < ns; i++) {
        const char *a = i < s->n_ints ? s->ints[i].name : s->reals[i - s->n_ints].name;
        if (!name_ok(a))
            return kd_errf(err, "train state of stage %s: scalar %zu: invalid name \"%s\"",
                           s->stage, i, a ? a : "(null)");
        for (size_t j = 0; j < i && saving; j++) {
            const char *b = j < s->n_ints ? s->ints[j].name : s->reals[j - s->n_ints].name;
            if (strcmp(a, b) == 0)
                return kd_errf(err, "train state of stage %s: scalar %s named twice",
                               s->stage, a);
        }
    }
    return 0;
}

/* ---- writing ------------------------------------------------------------- */

static int write_floats(hid_t loc, const char *name, const float *data, size_t n,
                        struct kd_err *err)
{
    int rc = -1;
    hid_t dcpl = H5I_INVALID_HID, space = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    hsize_t dims[1] = {(hsize_t)n};
    H5_CHECK(err, dcpl = H5Pcreate(H5P_DATASET_CREATE), "%s: creation list", name);
    if (n > 0) { /* a chunk cannot be larger than a fixed empty extent */
        /* equal chunks of at most TS_CHUNK_ELEMS: HDF5 stores every chunk
         * whole, so 1 Mi + 17 floats must not take two full chunks */
        hsize_t n_chunks = ((hsize_t)n + TS_CHUNK_ELEMS - 1) / TS_CHUNK_ELEMS;
        hsize_t chunk[1] = {((hsize_t)n + n_chunks - 1) / n_chunks};
        H5_CHECK(err, H5Pset_chunk(dcpl, 1, chunk), "%s: chunks", name);
        H5_CHECK(err, H5Pset_fletcher32(dcpl), "%s: Fletcher32", name);
        H5_CHECK(err, H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), "%s: fill time", name);
    }
    H5_CHECK(err, space = H5Screate_simple(1, dims, NULL), "%s: space", name);
    H5_CHECK(err, ds = H5Dcreate2(loc, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl,
                                  H5P_DEFAULT), "%s: create", name);
    if (n > 0)
        H5_CHECK(err, H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
                 "%s: write", name);
    rc = 0;
done:
    h5_close_any(&ds);
    h5_close_any(&space);
    h5_close_any(&dcpl);
    return rc;
}

static int write_attrs(hid_t file, const struct train_state *s, struct kd_err *err)
{
    char created[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (h5_attr_write_str(file, "schema", TRAIN_STATE_SCHEMA, err) < 0 ||
        h5_attr_write_str(file, "schema_version", TRAIN_STATE_SCHEMA_VERSION, err) < 0 ||
        h5_attr_write_str(file, "kd_hpc_version", PACKAGE_VERSION, err) < 0 ||
        h5_attr_write_str(file, "created", created, err) < 0 ||
        h5_attr_write_str(file, "stage", s->stage, err) < 0 ||
        h5_attr_write_str(file, "fingerprint", s->fingerprint, err) < 0 ||
        h5_attr_write_i64(file, "global_step", s->global_step, err) < 0 ||
        h5_attr_write_i64(file, "epoch", s->epoch, err) < 0 ||
        h5_attr_write_i64(file, "epoch_pos", s->epoch_pos, err) < 0 ||
        h5_attr_write_i64(file, "opt_step", s->opt_step, err) < 0 ||
        h5_attr_write_i64(file, "n_params", (int64_t)s->n_params, err) < 0)
        return -1;
    return 0;
}

static int write_file(const char *tmp, const struct train_state *s, struct kd_err *err)
{
    int rc = -1;
    hid_t fapl = H5I_INVALID_HID, file = H5I_INVALID_HID, grp = H5I_INVALID_HID;
    if ((fapl = h5_fapl_serial(err)) < 0)
        goto done;
    H5_CHECK(err, H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18),
             "format bounds");
    H5_CHECK(err, file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl), "create");
    if (write_attrs(file, s, err) < 0 ||
        write_floats(file, "params", s->params, s->n_params, err) < 0 ||
        write_floats(file, "adam_m", s->adam_m, s->n_params, err) < 0 ||
        write_floats(file, "adam_v", s->adam_v, s->n_params, err) < 0)
        goto done;
    H5_CHECK(err, grp = H5Gcreate2(file, "blocks", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
             "group /blocks");
    for (size_t i = 0; i < s->n_blocks; i++)
        if (write_floats(grp, s->blocks[i].name, s->blocks[i].data, s->blocks[i].n, err) < 0)
            goto done;
    h5_close_any(&grp);
    H5_CHECK(err, grp = H5Gcreate2(file, "scalars", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
             "group /scalars");
    for (size_t i = 0; i < s->n_ints; i++)
        if (h5_attr_write_i64(grp, s->ints[i].name, s->ints[i].value, err) < 0)
            goto done;
    for (size_t i = 0; i < s->n_reals; i++)
        if (h5_attr_write_f64(grp, s->reals[i].name, s->reals[i].value, err) < 0)
            goto done;
    h5_close_any(&grp);
    hid_t f = file;
    file = H5I_INVALID_HID;
    H5_CHECK(err, H5Fclose(f), "close");
    rc = 0;
done:
    h5_close_any(&grp);
    h5_close_any(&file);
    h5_close_any(&fapl);
    return rc;
}

int train_state_save(const char *path, const struct train_state *s, struct kd_err *err)
{
    h5_init();
    if (check_desc(s, 1, err) < 0)
        return kd_err_prefix(err, "%s", path);
    struct fs_atomic a;
    if (fs_atomic_open(&a, path, err->msg, sizeof err->msg) < 0)
        return -1;
    if (write_file(a.tmp_path, s, err) < 0) {
        kd_err_prefix(err, "%s", a.tmp_path);
        fs_atomic_abort(&a);
        return -1;
    }
    return fs_atomic_commit(&a, err->msg, sizeof err->msg);
}

/* ---- reading ------------------------------------------------------------- */

/* Reads the 1-D float dataset `name` below loc (shown as `where`) into
 * data, after checking that it holds exactly n elements. */
static int read_floats(hid_t loc, const char *name, const char *where, float *data,
                       size_t n, struct kd_err *err)
{
    int rc = -1;
    hid_t ds = H5I_INVALID_HID, space = H5I_INVALID_HID, type = H5I_INVALID_HID;
    int ex = h5_exists(loc, name, err);
    if (ex < 0)
        goto done;
    if (ex == 0) {
        kd_errf(err, "dataset %s is missing (expected float32 [%zu])", where, n);
        goto done;
    }
    H5_CHECK(err, ds = H5Dopen2(loc, name, H5P_DEFAULT), "dataset %s", where);
    H5_CHECK(err, type = H5Dget_type(ds), "dataset %s: type", where);
    if (H5Tget_class(type) != H5T_FLOAT || H5Tget_size(type) != 4) {
        kd_errf(err, "dataset %s: expected float32, found another type (class %d, %zu bytes)",
                where, (int)H5Tget_class(type), H5Tget_size(type));
        goto done;
    }
    H5_CHECK(err, space = H5Dget_space(ds), "dataset %s: space", where);
    int rank = H5Sget_simple_extent_ndims(space);
    hsize_t dims[H5S_MAX_RANK] = {0};
    if (rank != 1) {
        kd_errf(err, "dataset %s: expected rank 1 [%zu], found rank %d", where, n, rank);
        goto done;
    }
    H5_CHECK(err, H5Sget_simple_extent_dims(space, dims, NULL), "dataset %s: shape", where);
    if (dims[0] != (hsize_t)n) {
        kd_errf(err, "dataset %s: expected %zu elements, found %llu", where, n,
                (unsigned long long)dims[0]);
        goto done;
    }
    if (n > 0)
        H5_CHECK(err, H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
                 "dataset %s: read", where);
    rc = 0;
done:
    h5_close_any(&type);
    h5_close_any(&space);
    h5_close_any(&ds);
    return rc;
}

/* schema, major version, stage and fingerprint: what the file is and whose
 * run it belongs to, before anything else is read. */
static int check_identity(hid_t file, const struct train_state *s, struct kd_err *err)
{
    char *schema = NULL, *version = NULL, *stage = NULL, *fp = NULL;
    int rc = -1, major = -1, minor = -1;
    char extra;
    if (h5_attr_read_str(file, "schema", &schema, err) < 0)
        goto done;
    if (strcmp(schema, TRAIN_STATE_SCHEMA) != 0) {
        kd_errf(err, "attribute schema: expected \"%s\", found \"%s\" (not a training-state "
                "checkpoint)", TRAIN_STATE_SCHEMA, schema);
        goto done;
    }
    if (h5_attr_read_str(file, "schema_version", &version, err) < 0)
        goto done;
    if (sscanf(version, "%d.%d%c", &major, &minor, &extra) != 2 ||
        major != TRAIN_STATE_SCHEMA_MAJOR) {
        kd_errf(err, "attribute schema_version: expected %d.x, found \"%s\" (written by "
                "another kd_hpc; resume with a matching version or start the stage over)",
                TRAIN_STATE_SCHEMA_MAJOR, version);
        goto done;
    }
    if (h5_attr_read_str(file, "stage", &stage, err) < 0)
        goto done;
    if (strcmp(stage, s->stage) != 0) {
        kd_errf(err, "attribute stage: expected \"%s\", found \"%s\"", s->stage, stage);
        goto done;
    }
    if (h5_attr_read_str(file, "fingerprint", &fp, err) < 0)
        goto done;
    if (strcmp(fp, s->fingerprint) != 0) {
        kd_errf(err, "attribute fingerprint: expected %s, found %s (the checkpoint belongs "
                "to a run with other inputs or configuration)", s->fingerprint, fp);
        goto done;
    }
    rc = 0;
done:
    free(schema);
    free(version);
    free(stage);
    free(fp);
    return rc;
}

static int read_scalars(hid_t file, struct train_state *s, struct kd_err *err)
{
    int rc = -1;
    hid_t grp = H5I_INVALID_HID;
    int ex = h5_exists(file, "scalars", err);
    if (ex < 0)
        goto done;
    if (ex == 0) {
        kd_errf(err, "group /scalars is missing");
        goto done;
    }
    H5_CHECK(err, grp = H5Gopen2(file, "scalars", H5P_DEFAULT), "group /scalars");
    for (size_t i = 0; i < s->n_ints; i++)
        if (h5_attr_read_i64(grp, s->ints[i].name, &s->ints[i].value, err) < 0)
            goto done;
    for (size_t i = 0; i < s->n_reals; i++)
        if (h5_attr_read_f64(grp, s->reals[i].name, &s->reals[i].value, err) < 0)
            goto done;
    rc = 0;
done:
    h5_close_any(&grp);
    return rc;
}

static int read_file(const char *path, struct train_state *s, struct kd_err *err)
{
    int rc = -1;
    hid_t fapl = H5I_INVALID_HID, file = H5I_INVALID_HID;
    int64_t counters[5];
    static const char *const counter_names[] = {"global_step", "epoch", "epoch_pos",
                                                "opt_step", "n_params"};
    if ((fapl = h5_fapl_serial(err)) < 0)
        goto done;
    H5_CHECK(err, file = H5Fopen(path, H5F_ACC_RDONLY, fapl), "open");
    if (check_identity(file, s, err) < 0)
        goto done;
    for (int i = 0; i < 5; i++)
        if (h5_attr_read_i64(file, counter_names[i], &counters[i], err) < 0)
            goto done;
    if (counters[4] != (int64_t)s->n_params) {
        kd_errf(err, "attribute n_params: expected %zu, found %" PRId64, s->n_params,
                counters[4]);
        goto done;
    }
    if (read_floats(file, "params", "/params", s->params, s->n_params, err) < 0 ||
        read_floats(file, "adam_m", "/adam_m", s->adam_m, s->n_params, err) < 0 ||
        read_floats(file, "adam_v", "/adam_v", s->adam_v, s->n_params, err) < 0)
        goto done;
    for (size_t i = 0; i < s->n_blocks; i++) {
        char link[512], where[520];
        snprintf(link, sizeof link, "blocks/%s", s->blocks[i].name);
        snprintf(where, sizeof where, "/%s", link);
        if (read_floats(file, link, where, s->blocks[i].data, s->blocks[i].n, err) < 0)
            goto done;
    }
    if (read_scalars(file, s, err) < 0)
        goto done;
    hid_t f = file;
    file = H5I_INVALID_HID;
    H5_CHECK(err, H5Fclose(f), "close");
    s->global_step = counters[0];
    s->epoch = counters[1];
    s->epoch_pos = counters[2];
    s->opt_step = counters[3];
    rc = 0;
done:
    h5_close_any(&file);
    h5_close_any(&fapl);
    return rc;
}

int train_state_load(const char *path, struct train_state *s, struct kd_err *err)
{
    h5_init();
    if (check_desc(s, 0, err) < 0)
        return kd_err_prefix(err, "%s", path);
    if (!fs_file_exists(path))
        return kd_errf(err, "%s: no training-state checkpoint (the stage has not saved one "
                       "yet)", path);
    if (read_file(path, s, err) < 0)
        return kd_err_prefix(err, "%s", path);
    return 0;
}
