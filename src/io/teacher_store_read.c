/* teacher_store_read.c: opening a teacher store read-only, checking what it
 * is and where it came from, and reading example ranges as fp32 (io layer).
 * Serial (sec2) or collective open over a communicator; reads are
 * independent either way, so data-parallel ranks read at their own pace. */
#include "teacher_store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct store_reader {
    int parallel;               /* opened over comm (close is collective) */
    struct comm comm;
    char *path;
    struct store_spec spec;     /* lengths points to our copy */
    int32_t *lengths;           /* (N) */
    int64_t *offsets;           /* (N+1) attention element offsets, or NULL */
    struct store_prov_text text;
    struct store_provenance prov;
    hid_t file;
    struct store_dset *d;
    int nd;
    void *stage;
    size_t stage_cap;
};

const struct store_spec *store_reader_spec(const store_reader_t *r) { return &r->spec; }

const struct store_provenance *store_reader_provenance(const store_reader_t *r)
{
    return &r->prov;
}

static void *stage_get(struct store_reader *r, size_t bytes)
{
    if (bytes > r->stage_cap) {
        free(r->stage);
        r->stage = kd_malloc(bytes);
        r->stage_cap = bytes;
    }
    return r->stage;
}

static void reader_free(struct store_reader *r)
{
    store__dsets_close(r->d, r->nd);
    h5_close_any(&r->file);
    store__prov_free(&r->text);
    free(r->path);
    free(r->lengths);
    free(r->offsets);
    free(r->stage);
    free(r);
}

void store_close(store_reader_t *r)
{
    if (r)
        reader_free(r);
}

/* Shape and type of a dataset that must exist. */
static int ds_shape(hid_t file, const char *name, int *rank, hsize_t dims[4],
                    hid_t *type, struct kd_err *err)
{
    int rc = -1;
    hid_t ds = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    *type = H5I_INVALID_HID;
    int ex = h5_exists(file, name, err);
    if (ex <= 0) {
        if (ex == 0)
            kd_errf(err, "%s: listed in components but missing", name);
        goto done;
    }
    H5_CHECK(err, ds = H5Dopen2(file, name, H5P_DEFAULT), "%s: open", name);
    H5_CHECK(err, sp = H5Dget_space(ds), "%s: space", name);
    H5_CHECK(err, *rank = H5Sget_simple_extent_ndims(sp), "%s: space", name);
    if (*rank < 1 || *rank > 4) {
        kd_errf(err, "%s: expected 1 to 4 dimensions, got %d", name, *rank);
        goto done;
    }
    H5_CHECK(err, H5Sget_simple_extent_dims(sp, dims, NULL), "%s: space", name);
    H5_CHECK(err, *type = H5Dget_type(ds), "%s: type", name);
    rc = 0;
done:
    h5_close_any(&sp);
    h5_close_any(&ds);
    return rc;
}

/* Fills the sizes a dataset's shape carries (C, V, P, k, H, T checks) and
 * the precision of float datasets into the spec. */
static int learn_from(struct store_reader *r, enum store_ds ds, const char *name,
                      struct kd_err *err)
{
    struct store_spec *s = &r->spec;
    int rank = 0;
    hsize_t dims[4] = {0};
    hid_t type = H5I_INVALID_HID;
    if (ds_shape(r->file, name, &rank, dims, &type, err) < 0)
        return -1;
    int rc = 0;
    if (store_ds_is_float(ds)) {
        rc = h5_prec_of_type(type, &s->precision[ds], err);
    } else if (ds == STORE_DS_LABELS) {
        s->labels_float = H5Tget_class(type) == H5T_FLOAT;
    }
    h5_close_any(&type);
    if (rc < 0)
        return kd_err_prefix(err, "%s", name);
    switch (ds) {
    case STORE_DS_LOGITS:
    case STORE_DS_DECISION_VOTES:
    case STORE_DS_DECISION_LOGITS_EST:
        if (rank == 2)
            s->num_classes = (int32_t)dims[1];
        break;
    case STORE_DS_ATTRIBUTION:
        if (rank == 3)
            s->attribution_views = (int32_t)dims[1];
        break;
    case STORE_DS_MLM_POSITIONS:
        if (rank == 2)
            s->mlm_positions = (int32_t)dims[1];
        break;
    case STORE_DS_MLM_TOPK_IDS:
    case STORE_DS_MLM_TOPK_LOGITS:
        if (rank == 3) {
            s->mlm_positions = (int32_t)dims[1];
            s->mlm_topk = (int32_t)dims[2];
        }
        break;
    default:
        break;
    }
    return 0;
}

static int read_group_spec(struct store_reader *r, struct kd_err *err)
{
    int rc = -1;
    hid_t g = H5I_INVALID_HID;
    struct store_spec *s = &r->spec;
    size_t n = 0;
    char *text = NULL;
    if (s->datasets & STORE_BIT(STORE_DS_HIDDEN)) {
        int64_t h;
        H5_CHECK(err, g = H5Gopen2(r->file, "/hidden", H5P_DEFAULT), "/hidden");
        if (h5_attr_read_i32s(g, "layers", s->hidden_layers, STORE_MAX_LAYERS, &n, err) < 0 ||
            h5_attr_read_i64(g, "hidden_size", &h, err) < 0 ||
            h5_attr_read_str(g, "tokens", &text, err) < 0)
            goto done;
        s->n_hidden_layers = (int32_t)n;
        s->hidden_size = (int32_t)h;
        if (strcmp(text, "all") != 0 && strcmp(text, "cls") != 0) {
            kd_errf(err, "/hidden: attribute tokens: expected \"all\" or \"cls\", got \"%s\"",
                    text);
            goto done;
        }
        s->tokens = strcmp(text, "cls") == 0 ? STORE_TOKENS_CLS : STORE_TOKENS_ALL;
        free(text);
        text = NULL;
        h5_close_any(&g);
    }
    if (s->datasets & STORE_BIT(STORE_DS_ATTENTION)) {
        int64_t nh;
        H5_CHECK(err, g = H5Gopen2(r->file, "/attention", H5P_DEFAULT), "/attention");
        if (h5_attr_read_i32s(g, "layers", s->attention_layers, STORE_MAX_LAYERS, &n,
                              err) < 0)
            goto done;
        s->n_attention_layers = (int32_t)n;
        if (h5_attr_read_i32s(g, "heads", s->heads, STORE_MAX_HEADS, &n, err) < 0 ||
            h5_attr_read_i64(g, "model_heads", &nh, err) < 0 ||
            h5_attr_read_str(g, "layout", &text, err) < 0)
            goto done;
        s->n_heads = (int32_t)n;
        s->model_heads = (int32_t)nh;
        if (strcmp(text, "ragged") != 0) {
            kd_errf(err, "/attention: attribute layout: expected \"ragged\", got \"%s\"", text);
            goto done;
        }
    }
    rc = 0;
done:
    free(text);
    h5_close_any(&g);
    return rc;
}

/* Reads a whole 1-D index dataset (lengths, offsets). */
static int read_index(hid_t file, const char *name, hid_t mtype, hsize_t n, void *buf,
                      struct kd_err *err)
{
    int rc = -1;
    hid_t ds = H5I_INVALID_HID, sp = H5I_INVALID_HID;
    hsize_t dims[1];
    H5_CHECK(err, ds = H5Dopen2(file, name, H5P_DEFAULT), "%s: open", name);
    H5_CHECK(err, sp = H5Dget_space(ds), "%s: space", name);
    if (H5Sget_simple_extent_ndims(sp) != 1 || H5Sget_simple_extent_dims(sp, dims, NULL) < 0 ||
        dims[0] != n) {
        kd_errf(err, "%s: expected [%llu]", name, (unsigned long long)n);
        goto done;
    }
    H5_CHECK(err, H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), "%s: read", name);
    rc = 0;
done:
    h5_close_any(&sp);
    h5_close_any(&ds);
    return rc;
}

/* Opens every dataset of the plan and checks its shape and type. */
static int open_dsets(struct store_reader *r, struct kd_err *err)
{
    const struct store_spec *s = &r->spec;
    if ((r->nd = store__dsets_plan(s, &r->d, err)) < 0) {
        r->nd = 0;
        return -1;
    }
    for (int i = 0; i < r->nd; i++) {
        struct store_dset *d = &r->d[i];
        int rank = 0;
        hsize_t dims[4] = {0}, want[4];
        hid_t type = H5I_INVALID_HID;
        if (ds_shape(r->file, d->name, &rank, dims, &type, err) < 0)
            return -1;
        enum h5_prec p = H5_PREC_F32;
        int same_type = d->is_float ? h5_prec_of_type(type, &p, err) == 0 && p == d->prec
                                    : H5Tequal(type, d->type) > 0;
        h5_close_any(&type);
        if (!same_type)
            return kd_errf(err, "%s: expected type %s", d->name,
                           d->is_float ? h5_prec_name(d->prec) : "int32");
        want[0] = d->ragged ? (hsize_t)r->offsets[s->n_examples] : (hsize_t)s->n_examples;
        for (int k = 1; k < d->rank; k++)
            want[k] = d->row[k - 1];
        int same = rank == d->rank;
        for (int k = 0; same && k < rank; k++)
            same = dims[k] == want[k];
        if (!same)
            return kd_errf(err, "%s: expected %d dimensions [%llu, ...] from the other "
                           "datasets and attributes, got %d [%llu, ...]", d->name, d->rank,
                           (unsigned long long)want[0], rank, (unsigned long long)dims[0]);
        H5_CHECK(err, d->id = H5Dopen2(r->file, d->name, H5P_DEFAULT), "%s: open", d->name);
    }
    return 0;
done:
    return -1;
}

static int open_file(struct store_reader *r, const struct comm *comm,
                     const struct store_expect *expect, struct kd_err *err)
{
    int rc = -1;
    hid_t fapl = H5I_INVALID_HID;
    struct store_spec *s = &r->spec;
    char *components = NULL;
    fapl = comm ? h5_fapl_mpio(comm->world, 0, err) : h5_fapl_serial(err);
    if (fapl < 0)
        goto done;
    H5_CHECK(err, r->file = H5Fopen(r->path, H5F_ACC_RDONLY, fapl), "cannot open");
    if (store__read_prov(r->file, &r->text, err) < 0 ||
        store__check_prov(r->path, &r->text, expect, err) < 0)
        goto done;
    r->prov.teacher_config = r->text.teacher_config;
    r->prov.teacher_sha256 = r->text.teacher_sha256;
    r->prov.vocab_sha256 = r->text.vocab_sha256;
    r->prov.data_sha256 = r->text.data_sha256;
    r->prov.created = r->text.created;

    int64_t n, t;
    if (h5_attr_read_i64(r->file, "n_examples", &n, err) < 0 ||
        h5_attr_read_i64(r->file, "seq_len", &t, err) < 0 ||
        h5_attr_read_str(r->file, "components", &components, err) < 0 ||
        store__components_parse(components, &s->datasets, err) < 0)
        goto done;
    s->n_examples = n;
    s->seq_len = (int32_t)t;
    if (n < 1 || t < 1) {
        kd_errf(err, "n_examples = %lld, seq_len = %lld: expected both >= 1", (long long)n,
                (long long)t);
        goto done;
    }
    if (read_group_spec(r, err) < 0)
        goto done;
    for (int ds = 0; ds < STORE_DS_COUNT; ds++) {
        if (!(s->datasets & STORE_BIT(ds)) || ds == STORE_DS_HIDDEN || ds == STORE_DS_ATTENTION)
            continue;
        if (learn_from(r, (enum store_ds)ds, store_ds_path((enum store_ds)ds), err) < 0)
            goto done;
    }
    /* every layer of a group has the same precision; the first tells it */
    char name[48];
    if (s->datasets & STORE_BIT(STORE_DS_HIDDEN)) {
        snprintf(name, sizeof name, "/hidden/layer_%02d", s->hidden_layers[0]);
        if (learn_from(r, STORE_DS_HIDDEN, name, err) < 0)
            goto done;
    }
    if (s->datasets & STORE_BIT(STORE_DS_ATTENTION)) {
        snprintf(name, sizeof name, "/attention/layer_%02d", s->attention_layers[0]);
        if (learn_from(r, STORE_DS_ATTENTION, name, err) < 0)
            goto done;
    }
    r->lengths = kd_malloc((size_t)n * sizeof *r->lengths);
    if (read_index(r->file, "/examples/lengths", H5T_NATIVE_INT32, (hsize_t)n, r->lengths,
                   err) < 0)
        goto done;
    s->lengths = r->lengths;
    if (store_spec_check(s, err) < 0)
        goto done;
    if (s->datasets & STORE_BIT(STORE_DS_ATTENTION)) {
        /* The stored offsets must be the ones the lengths imply. */
        r->offsets = store__attention_offsets(s);
        int64_t *stored = kd_malloc((size_t)(n + 1) * sizeof *stored);
        int bad = read_index(r->file, "/attention/offsets", H5T_NATIVE_INT64,
                             (hsize_t)n + 1, stored, err) < 0;
        for (int64_t i = 0; !bad && i <= n; i++)
            if (stored[i] != r->offsets[i]) {
                kd_errf(err, "/attention/offsets[%lld] = %lld, expected %lld from "
                        "/examples/lengths and the heads", (long long)i,
                        (long long)stored[i], (long long)r->offsets[i]);
                bad = 1;
            }
        free(stored);
        if (bad)
            goto done;
    }
    if (open_dsets(r, err) < 0)
        goto done;
    rc = 0;
done:
    free(components);
    h5_close_any(&fapl);
    return rc;
}

int store_open(store_reader_t **out, const char *path, const struct comm *comm,
               const struct store_expect *expect, struct kd_err *err)
{
    *out = NULL;
    h5_init();
    struct store_reader *r = kd_calloc(1, sizeof *r);
    r->file = H5I_INVALID_HID;
    r->path = kd_strdup(path);
    r->parallel = comm != NULL;
    if (comm)
        r->comm = *comm;
    store_spec_init(&r->spec);
    int rc = open_file(r, comm, expect, err);
    /* the provenance and schema messages already start with the path */
    if (rc < 0 && err && strncmp(err->msg, path, strlen(path)) != 0)
        kd_err_prefix(err, "%s", path);
    if (comm) {
        /* same verdict everywhere; the lowest failing rank's message */
        int code = comm_agree_max(comm, rc < 0 ? comm->size - comm->rank : 0);
        if (code) {
            struct kd_err scratch;
            comm_bcast_bytes(comm, err ? err->msg : scratch.msg, KD_ERR_MSG_MAX,
                             comm->size - code);
            rc = -1;
        }
    }
    if (rc < 0) {
        reader_free(r);
        return -1;
    }
    *out = r;
    return 0;
}

/* ---- reads ----------------------------------------------------------------- */

static struct store_dset *find(struct store_reader *r, enum store_ds ds, int layer,
                               struct kd_err *err)
{
    int layered = ds == STORE_DS_HIDDEN || ds == STORE_DS_ATTENTION;
    for (int i = 0; i < r->nd; i++)
        if (r->d[i].ds == ds && (!layered || r->d[i].layer == layer))
            return &r->d[i];
    if (layered)
        kd_errf(err, "%s: %s/layer_%02d is not in the store", r->path, store_ds_path(ds),
                layer);
    else
        kd_errf(err, "%s: %s is not in the store", r->path, store_ds_path(ds));
    return NULL;
}

/* Reads the selected examples' stored elements into buf (memory type mt).
 * A checksum failure is named as such, with the dataset and range. */
static int read_raw(struct store_reader *r, const struct store_dset *d, int64_t first,
                    int64_t count, hid_t mt, void *buf, struct kd_err *err)
{
    int rc = -1;
    hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    hsize_t start[4] = {0}, cnt[4];
    if (d->ragged) {
        start[0] = (hsize_t)r->offsets[first];
        cnt[0] = (hsize_t)(r->offsets[first + count] - r->offsets[first]);
    } else {
        start[0] = (hsize_t)first;
        cnt[0] = (hsize_t)count;
        for (int i = 1; i < d->rank; i++)
            cnt[i] = d->row[i - 1];
    }
    H5_CHECK(err, fs = H5Dget_space(d->id), "%s: %s: space", r->path, d->name);
    H5_CHECK(err, H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL),
             "%s: %s: selection", r->path, d->name);
    H5_CHECK(err, ms = H5Screate_simple(d->rank, cnt, NULL), "%s: %s: space", r->path,
             d->name);
    if (H5Dread(d->id, mt, ms, fs, H5P_DEFAULT, buf) < 0) {
        char stack[1024];
        h5_stack_text(stack, sizeof stack);
        if (strstr(stack, "Fletcher32") || strstr(stack, "checksum"))
            kd_errf(err, "%s: %s: examples [%lld, %lld): checksum mismatch (Fletcher32), "
                    "the stored data is corrupted: %s", r->path, d->name, (long long)first,
                    (long long)(first + count), stack);
        else
            kd_errf(err, "%s: %s: examples [%lld, %lld): read failed: %s", r->path, d->name,
                    (long long)first, (long long)(first + count), stack);
        H5Eclear2(H5E_DEFAULT);
        goto done;
    }
    rc = 0;
done:
    h5_close_any(&ms);
    h5_close_any(&fs);
    return rc;
}

static int check_range(const struct store_reader *r, const struct store_dset *d,
                       int64_t first, int64_t count, struct kd_err *err)
{
    int64_t n = r->spec.n_examples;
    if (first < 0 || count < 0 || first > n - count)
        return kd_errf(err, "%s: %s: examples [%lld, %lld) are outside [0, %lld)", r->path,
                       d->name, (long long)first, (long long)(first + count), (long long)n);
    return 0;
}

int store_read_f32(store_reader_t *r, enum store_ds ds, int layer, int64_t first,
                   int64_t count, float *out, struct kd_err *err)
{
    struct store_dset *d = find(r, ds, layer, err);
    if (!d || check_range(r, d, first, count, err) < 0)
        return -1;
    if (count == 0)
        return 0;
    if (!d->is_float) /* exact for |v| < 2^24 */
        return read_raw(r, d, first, count, H5T_NATIVE_FLOAT, out, err);
    if (!d->ragged && d->prec == H5_PREC_F32)
        return read_raw(r, d, first, count, d->type, out, err);
    size_t elems = d->ragged ? (size_t)(r->offsets[first + count] - r->offsets[first])
                             : (size_t)count * d->row_elems;
    char *st = stage_get(r, elems * d->esize);
    if (read_raw(r, d, first, count, d->type, st, err) < 0)
        return -1;
    if (!d->ragged) {
        h5_prec_to_f32(d->prec, out, st, elems);
        return 0;
    }
    /* [A,L,L] blocks back into zero-padded (count,A,T,T) maps */
    const struct store_spec *s = &r->spec;
    size_t T = (size_t)s->seq_len, A = (size_t)s->n_heads;
    memset(out, 0, (size_t)count * A * T * T * sizeof *out);
    for (int64_t i = 0; i < count; i++) {
        size_t L = (size_t)s->lengths[first + i];
        for (size_t h = 0; h < A; h++)
            for (size_t row = 0; row < L; row++) {
                h5_prec_to_f32(d->prec, out + (((size_t)i * A + h) * T + row) * T, st, L);
                st += L * d->esize;
            }
    }
    return 0;
}

int store_read_i32(store_reader_t *r, enum store_ds ds, int64_t first, int64_t count,
                   int32_t *out, struct kd_err *err)
{
    struct store_dset *d = find(r, ds, -1, err);
    if (!d || check_range(r, d, first, count, err) < 0)
        return -1;
    if (d->is_float)
        return kd_errf(err, "%s: %s is stored as %s; read it with store_read_f32", r->path,
                       d->name, h5_prec_name(d->prec));
    if (count == 0)
        return 0;
    return read_raw(r, d, first, count, H5T_NATIVE_INT32, out, err);
}
