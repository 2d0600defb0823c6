/* h5.c: HDF5 error decoding, property lists and attribute helpers (io
 * layer). The fp16/bf16 types and conversions are in h5_float.c, the
 * Fletcher32 checksum in h5_fletcher.c. */
#include "kd/io/h5.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void h5_init(void)
{
    /* Our messages carry the stack; HDF5's own printer would write it to
     * stderr a second time, from every rank. */
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    static int checked;
    if (!checked) {
        KD_ASSERT(h5_fletcher32_selftest() == 0,
                  "the Fletcher32 checksum disagrees with HDF5's definition");
        checked = 1;
    }
}

void h5_close_any(hid_t *id)
{
    if (*id < 0)
        return;
    /* Closing must not disturb a stack that is about to be reported: the
     * caller has already formatted its message. */
    switch (H5Iget_type(*id)) {
    case H5I_FILE: H5Fclose(*id); break;
    case H5I_GROUP: H5Gclose(*id); break;
    case H5I_DATASET: H5Dclose(*id); break;
    case H5I_DATASPACE: H5Sclose(*id); break;
    case H5I_DATATYPE: H5Tclose(*id); break;
    case H5I_ATTR: H5Aclose(*id); break;
    case H5I_GENPROP_LST: H5Pclose(*id); break;
    default: H5Idec_ref(*id); break;
    }
    *id = H5I_INVALID_HID;
}

/* ---- error stack --------------------------------------------------------- */

struct stack_walk {
    char *buf;
    size_t len;
    size_t used;
    int n;
};

static void walk_append(struct stack_walk *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void walk_append(struct stack_walk *w, const char *fmt, ...)
{
    if (w->used + 1 >= w->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(w->buf + w->used, w->len - w->used, fmt, ap);
    va_end(ap);
    if (k > 0)
        w->used += (size_t)k < w->len - w->used ? (size_t)k : w->len - w->used - 1;
}

/* Walked upward: the first entry is the innermost one, where the error was
 * detected (e.g. "data error detected by Fletcher32 checksum"), which is the
 * most useful text; the outer frames follow as a call chain. */
static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    struct stack_walk *w = data;
    char maj[128] = "", min[128] = "";
    H5Eget_msg(e->maj_num, NULL, maj, sizeof maj);
    H5Eget_msg(e->min_num, NULL, min, sizeof min);
    if (n == 0)
        walk_append(w, "%s (%s: %s, in %s)", e->desc ? e->desc : "?", maj, min,
                    e->func_name ? e->func_name : "?");
    else
        walk_append(w, "%s %s", n == 1 ? "; via" : " <-",
                    e->func_name ? e->func_name : "?");
    w->n++;
    return 0;
}

int h5_stack_text(char *buf, size_t len)
{
    struct stack_walk w = {buf, len, 0, 0};
    if (len == 0)
        return 0;
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_cb, &w);
    return w.n;
}

/* "ds = H5Dopen2(f, name, ...)" -> "H5Dopen2" */
static void call_name(const char *call, char *out, size_t len)
{
    const char *paren = strchr(call, '(');
    const char *end = paren ? paren : call + strlen(call);
    const char *start = end;
    while (start > call && (start[-1] == '_' || (start[-1] >= '0' && start[-1] <= '9') ||
                            (start[-1] >= 'A' && start[-1] <= 'Z') ||
                            (start[-1] >= 'a' && start[-1] <= 'z')))
        start--;
    size_t k = (size_t)(end - start);
    if (k >= len)
        k = len - 1;
    memcpy(out, start, k);
    out[k] = '\0';
}

int h5_fail(struct kd_err *err, const char *call, const char *fmt, ...)
{
    char ctx[768], fn[64], stack[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    call_name(call, fn, sizeof fn);
    if (h5_stack_text(stack, sizeof stack) == 0)
        snprintf(stack, sizeof stack, "failed (no HDF5 error stack)");
    H5Eclear2(H5E_DEFAULT);
    return kd_errf(err, "%s: %s: %s", ctx, fn, stack);
}

/* ---- property lists ------------------------------------------------------- */

hid_t h5_fapl_mpio(MPI_Comm comm, int collective_metadata, struct kd_err *err)
{
    hid_t fapl = H5I_INVALID_HID, out = H5I_INVALID_HID;
    H5_CHECK(err, fapl = H5Pcreate(H5P_FILE_ACCESS), "file access list");
    H5_CHECK(err, H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL), "MPI-IO file access");
    if (collective_metadata) {
        H5_CHECK(err, H5Pset_all_coll_metadata_ops(fapl, 1), "collective metadata reads");
        H5_CHECK(err, H5Pset_coll_metadata_write(fapl, 1), "collective metadata writes");
    }
    out = fapl;
    fapl = H5I_INVALID_HID;
done:
    h5_close_any(&fapl);
    return out;
}

hid_t h5_fapl_serial(struct kd_err *err)
{
    hid_t fapl = H5I_INVALID_HID, out = H5I_INVALID_HID;
    H5_CHECK(err, fapl = H5Pcreate(H5P_FILE_ACCESS), "file access list");
    H5_CHECK(err, H5Pset_fapl_sec2(fapl), "serial file access");
    out = fapl;
    fapl = H5I_INVALID_HID;
done:
    h5_close_any(&fapl);
    return out;
}

hid_t h5_dxpl_collective(struct kd_err *err)
{
    hid_t dxpl = H5I_INVALID_HID, out = H5I_INVALID_HID;
    H5_CHECK(err, dxpl = H5Pcreate(H5P_DATASET_XFER), "transfer list");
    H5_CHECK(err, H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE), "collective transfer");
    out = dxpl;
    dxpl = H5I_INVALID_HID;
done:
    h5_close_any(&dxpl);
    return out;
}

int h5_exists(hid_t loc, const char *path, struct kd_err *err)
{
    /* H5Lexists fails (rather than answering 0) when an intermediate group
     * is missing, so walk the path one component at a time. */
    char part[1024];
    size_t n = strlen(path);
    if (n >= sizeof part)
        return kd_errf(err, "%s: path too long", path);
    for (size_t i = 0; i <= n; i++) {
        if (i > 0 && (path[i] == '/' || path[i] == '\0')) {
            memcpy(part, path, i);
            part[i] = '\0';
            htri_t r = H5Lexists(loc, part, H5P_DEFAULT);
            if (r < 0)
                return h5_fail(err, "H5Lexists()", "%s", part);
            if (r == 0)
                return 0;
        }
    }
    return 1;
}

/* ---- attributes ----------------------------------------------------------- */

static void obj_name(hid_t loc, char *buf, size_t len)
{
    if (H5Iget_name(loc, buf, len) <= 0)
        snprintf(buf, len, "?");
}

/* Deletes an attribute of that name if present, then creates it. */
static hid_t attr_create(hid_t loc, const char *name, hid_t type, hid_t space,
                         struct kd_err *err)
{
    hid_t a = H5I_INVALID_HID;
    char where[256];
    obj_name(loc, where, sizeof where);
    htri_t ex;
    H5_CHECK(err, ex = H5Aexists(loc, name), "%s: attribute '%s'", where, name);
    if (ex > 0)
        H5_CHECK(err, H5Adelete(loc, name), "%s: attribute '%s'", where, name);
    H5_CHECK(err, a = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT),
             "%s: attribute '%s'", where, name);
done:
    return a;
}

/* Opens an attribute, with a clear message when it does not exist. */
static hid_t attr_open(hid_t loc, const char *name, struct kd_err *err)
{
    hid_t a = H5I_INVALID_HID;
    char where[256];
    obj_name(loc, where, sizeof where);
    htri_t ex;
    H5_CHECK(err, ex = H5Aexists(loc, name), "%s: attribute '%s'", where, name);
    if (ex == 0) {
        kd_errf(err, "%s: attribute '%s' is missing", where, name);
        goto done;
    }
    H5_CHECK(err, a = H5Aopen(loc, name, H5P_DEFAULT), "%s: attribute '%s'", where, name);
done:
    return a;
}

int h5_attr_write_str(hid_t loc, const char *name, const char *value,
                      struct kd_err *err)
{
    int rc = -1;
    hid_t t = H5I_INVALID_HID, s = H5I_INVALID_HID, a = H5I_INVALID_HID;
    H5_CHECK(err, t = H5Tcopy(H5T_C_S1), "string type");
    H5_CHECK(err, H5Tset_size(t, H5T_VARIABLE), "string type");
    H5_CHECK(err, H5Tset_cset(t, H5T_CSET_UTF8), "string type");
    H5_CHECK(err, s = H5Screate(H5S_SCALAR), "scalar space");
    if ((a = attr_create(loc, name, t, s, err)) < 0)
        goto done;
    H5_CHECK(err, H5Awrite(a, t, &value), "attribute '%s'", name);
    rc = 0;
done:
    h5_close_any(&a);
    h5_close_any(&s);
    h5_close_any(&t);
    return rc;
}

int h5_attr_read_str(hid_t loc, const char *name, char **value, struct kd_err *err)
{
    int rc = -1;
    hid_t a = H5I_INVALID_HID, ft = H5I_INVALID_HID, mt = H5I_INVALID_HID,
          s = H5I_INVALID_HID;
    char where[256];
    obj_name(loc, where, sizeof where);
    *value = NULL;
    if ((a = attr_open(loc, name, err)) < 0)
        goto done;
    H5_CHECK(err, ft = H5Aget_type(a), "%s: attribute '%s'", where, name);
    H5_CHECK(err, s = H5Aget_space(a), "%s: attribute '%s'", where, name);
    if (H5Tget_class(ft) != H5T_STRING || H5Sget_simple_extent_npoints(s) != 1) {
        kd_errf(err, "%s: attribute '%s': expected a scalar string", where, name);
        goto done;
    }
    htri_t vl;
    H5_CHECK(err, vl = H5Tis_variable_str(ft), "%s: attribute '%s'", where, name);
    if (vl) {
        char *p = NULL;
        H5_CHECK(err, mt = H5Tcopy(H5T_C_S1), "string type");
        H5_CHECK(err, H5Tset_size(mt, H5T_VARIABLE), "string type");
        H5_CHECK(err, H5Tset_cset(mt, H5Tget_cset(ft)), "string type");
        H5_CHECK(err, H5Aread(a, mt, &p), "%s: attribute '%s'", where, name);
        *value = kd_strdup(p ? p : "");
        H5free_memory(p);
    } else {
        size_t n = H5Tget_size(ft);
        char *buf = kd_calloc(n + 1, 1);
        if (H5Aread(a, ft, buf) < 0) {
            free(buf);
            h5_fail(err, "H5Aread()", "%s: attribute '%s'", where, name);
            goto done;
        }
        *value = buf;
    }
    rc = 0;
done:
    h5_close_any(&s);
    h5_close_any(&mt);
    h5_close_any(&ft);
    h5_close_any(&a);
    return rc;
}

int h5_attr_write_json(hid_t loc, const char *name, const char *json,
                       struct kd_err *err)
{
    cJSON *doc = cJSON_Parse(json);
    if (!doc) {
        const char *at = cJSON_GetErrorPtr();
        return kd_errf(err, "attribute '%s': not valid JSON near \"%.20s\"", name,
                       at ? at : "");
    }
    cJSON_Delete(doc);
    return h5_attr_write_str(loc, name, json, err);
}

int h5_attr_read_json(hid_t loc, const char *name, char **json, struct kd_err *err)
{
    if (h5_attr_read_str(loc, name, json, err) < 0)
        return -1;
    cJSON *doc = cJSON_Parse(*json);
    if (!doc) {
        char where[256];
        obj_name(loc, where, sizeof where);
        free(*json);
        *json = NULL;
        return kd_errf(err, "%s: attribute '%s' is not valid JSON", where, name);
    }
    cJSON_Delete(doc);
    return 0;
}

/* Writes n values of memory type mt as file type ft; n == 0 means scalar. */
static int attr_write_num(hid_t loc, const char *name, hid_t ft, hid_t mt,
                          const void *v, size_t n, struct kd_err *err)
{
    int rc = -1;
    hid_t s = H5I_INVALID_HID, a = H5I_INVALID_HID;
    hsize_t dims[1] = {n};
    if (n == 0)
        H5_CHECK(err, s = H5Screate(H5S_SCALAR), "scalar space");
    else
        H5_CHECK(err, s = H5Screate_simple(1, dims, NULL), "attribute space");
    if ((a = attr_create(loc, name, ft, s, err)) < 0)
        goto done;
    H5_CHECK(err, H5Awrite(a, mt, v), "attribute '%s'", name);
    rc = 0;
done:
    h5_close_any(&a);
    h5_close_any(&s);
    return rc;
}

int h5_attr_write_i32(hid_t loc, const char *name, int32_t v, struct kd_err *err)
{
    return attr_write_num(loc, name, H5T_STD_I32LE, H5T_NATIVE_INT32, &v, 0, err);
}

int h5_attr_write_i64(hid_t loc, const char *name, int64_t v, struct kd_err *err)
{
    return attr_write_num(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v, 0, err);
}

int h5_attr_write_i32s(hid_t loc, const char *name, const int32_t *v, size_t n,
                       struct kd_err *err)
{
    if (n == 0)
        return kd_errf(err, "attribute '%s': an array needs at least one value", name);
    return attr_write_num(loc, name, H5T_STD_I32LE, H5T_NATIVE_INT32, v, n, err);
}

int h5_attr_write_f64(hid_t loc, const char *name, double v, struct kd_err *err)
{
    return attr_write_num(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v, 0, err);
}

/* Reads up to max values of class cls into memory type mt; *n = count. */
static int attr_read_num(hid_t loc, const char *name, H5T_class_t cls, hid_t mt,
                         void *v, size_t max, size_t *n, struct kd_err *err)
{
    int rc = -1;
    hid_t a = H5I_INVALID_HID, ft = H5I_INVALID_HID, s = H5I_INVALID_HID;
    char where[256];
    obj_name(loc, where, sizeof where);
    if ((a = attr_open(loc, name, err)) < 0)
        goto done;
    H5_CHECK(err, ft = H5Aget_type(a), "%s: attribute '%s'", where, name);
    H5_CHECK(err, s = H5Aget_space(a), "%s: attribute '%s'", where, name);
    hssize_t np = H5Sget_simple_extent_npoints(s);
    if (H5Tget_class(ft) != cls) {
        kd_errf(err, "%s: attribute '%s': expected %s, got another type", where, name,
                cls == H5T_INTEGER ? "an integer" : "a float");
        goto done;
    }
    if (np < 1 || (size_t)np > max) {
        kd_errf(err, "%s: attribute '%s': expected 1 to %zu values, got %lld", where,
                name, max, (long long)np);
        goto done;
    }
    H5_CHECK(err, H5Aread(a, mt, v), "%s: attribute '%s'", where, name);
    *n = (size_t)np;
    rc = 0;
done:
    h5_close_any(&s);
    h5_close_any(&ft);
    h5_close_any(&a);
    return rc;
}

int h5_attr_read_i64(hid_t loc, const char *name, int64_t *v, struct kd_err *err)
{
    size_t n;
    return attr_read_num(loc, name, H5T_INTEGER, H5T_NATIVE_INT64, v, 1, &n, err);
}

int h5_attr_read_i32s(hid_t loc, const char *name, int32_t *v, size_t max,
                      size_t *n, struct kd_err *err)
{
    return attr_read_num(loc, name, H5T_INTEGER, H5T_NATIVE_INT32, v, max, n, err);
}

int h5_attr_read_f64(hid_t loc, const char *name, double *v, struct kd_err *err)
{
    size_t n;
    return attr_read_num(loc, name, H5T_FLOAT, H5T_NATIVE_DOUBLE, v, 1, &n, err);
}
