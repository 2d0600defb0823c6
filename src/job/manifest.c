/* manifest.c: the manifest's JSON form (cJSON), reading and atomic writing
 * (job layer). Fingerprints and file probing are in manifest_fingerprint.c;
 * the decisions that use the manifest are in stage.c.
 *
 * JSON numbers are doubles in cJSON, so the 64-bit modification time in
 * nanoseconds is written as a decimal string ("mtime_ns"), and the
 * configuration is an array of "key = value" lines so the file stays
 * readable in an editor and diffable between runs. */
#include "config.h"
#include "kd/job/manifest.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const status_names[MANIFEST_STATUS_COUNT] = {
    "running", "interrupted", "failed", "finished"};

const char *manifest_status_name(int status)
{
    return status >= 0 && status < MANIFEST_STATUS_COUNT ? status_names[status] : "?";
}

int manifest_status_parse(const char *name)
{
    for (int i = 0; i < MANIFEST_STATUS_COUNT; i++)
        if (strcmp(name, status_names[i]) == 0)
            return i;
    return -1;
}

void manifest_now(char buf[32])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- memory ------------------------------------------------------------- */

void manifest_files_free(struct manifest_file *f, int n)
{
    for (int i = 0; i < n; i++)
        free(f[i].name);
    free(f);
}

void manifest_files_copy(struct manifest_file **dst, int *n_dst,
                         const struct manifest_file *src, int n_src)
{
    *dst = n_src ? kd_calloc((size_t)n_src, sizeof **dst) : NULL;
    for (int i = 0; i < n_src; i++) {
        (*dst)[i] = src[i];
        (*dst)[i].name = kd_strdup(src[i].name);
    }
    *n_dst = n_src;
}

void manifest_entry_reset(struct manifest_entry *e)
{
    char *name = e->name;
    free(e->kind);
    free(e->config);
    free(e->kd_hpc_version);
    manifest_files_free(e->inputs, e->n_inputs);
    manifest_files_free(e->outputs, e->n_outputs);
    memset(e, 0, sizeof *e);
    e->name = name;
    e->status = MANIFEST_STATUS_RUNNING;
}

void manifest_free(struct manifest *m)
{
    for (int i = 0; i < m->n; i++) {
        manifest_entry_reset(&m->entries[i]);
        free(m->entries[i].name);
    }
    free(m->entries);
    m->entries = NULL;
    m->n = 0;
}

struct manifest_entry *manifest_find(const struct manifest *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->entries[i].name, name) == 0)
            return &m->entries[i];
    return NULL;
}

struct manifest_entry *manifest_put(struct manifest *m, const char *name)
{
    struct manifest_entry *e = manifest_find(m, name);
    if (e)
        return e;
    m->entries = kd_realloc(m->entries, (size_t)(m->n + 1) * sizeof *m->entries);
    e = &m->entries[m->n++];
    memset(e, 0, sizeof *e);
    e->name = kd_strdup(name);
    e->status = MANIFEST_STATUS_RUNNING;
    return e;
}

/* ---- writing ------------------------------------------------------------ */

static cJSON *files_json(const struct manifest_file *f, int n)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        char mt[32];
        snprintf(mt, sizeof mt, "%" PRId64, f[i].mtime_ns);
        cJSON_AddStringToObject(o, "name", f[i].name);
        cJSON_AddBoolToObject(o, "user", f[i].user);
        cJSON_AddStringToObject(o, "sha256", f[i].sha256);
        cJSON_AddNumberToObject(o, "size", (double)f[i].size);
        cJSON_AddStringToObject(o, "mtime_ns", mt);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* The configuration text as an array of its lines. */
static cJSON *config_json(const char *config)
{
    cJSON *arr = cJSON_CreateArray();
    const char *p = config ? config : "";
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t k = nl ? (size_t)(nl - p) : strlen(p);
        char *line = kd_malloc(k + 1);
        memcpy(line, p, k);
        line[k] = '\0';
        cJSON_AddItemToArray(arr, cJSON_CreateString(line));
        free(line);
        p += k + (nl ? 1 : 0);
    }
    return arr;
}

char *manifest_to_json(const struct manifest *m, const char *job_name)
{
    char now[32];
    manifest_now(now);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", MANIFEST_SCHEMA);
    cJSON_AddStringToObject(root, "schema_version", MANIFEST_SCHEMA_VERSION);
    cJSON_AddStringToObject(root, "kd_hpc_version", PACKAGE_VERSION);
    cJSON_AddStringToObject(root, "job", job_name ? job_name : "");
    cJSON_AddStringToObject(root, "updated", now);
    cJSON *stages = cJSON_AddArrayToObject(root, "stages");
    for (int i = 0; i < m->n; i++) {
        const struct manifest_entry *e = &m->entries[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", e->name);
        cJSON_AddStringToObject(o, "kind", e->kind ? e->kind : "");
        cJSON_AddStringToObject(o, "status", manifest_status_name(e->status));
        cJSON_AddStringToObject(o, "fingerprint", e->fingerprint);
        cJSON_AddStringToObject(o, "started", e->started);
        cJSON_AddStringToObject(o, "finished", e->finished);
        cJSON_AddNumberToObject(o, "seconds", e->seconds);
        cJSON_AddNumberToObject(o, "ranks", e->ranks);
        cJSON_AddStringToObject(o, "kd_hpc_version",
                                e->kd_hpc_version ? e->kd_hpc_version : PACKAGE_VERSION);
        cJSON_AddItemToObject(o, "config", config_json(e->config));
        cJSON_AddItemToObject(o, "inputs", files_json(e->inputs, e->n_inputs));
        cJSON_AddItemToObject(o, "outputs", files_json(e->outputs, e->n_outputs));
        cJSON_AddItemToArray(stages, o);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    KD_ASSERT(text, "cJSON_Print failed (out of memory)");
    size_t n = strlen(text);
    char *out = kd_malloc(n + 2);
    memcpy(out, text, n);
    memcpy(out + n, "\n", 2);
    cJSON_free(text);
    return out;
}

int manifest_save(const struct manifest *m, const char *path, const char *job_name,
                  struct kd_err *err)
{
    char *text = manifest_to_json(m, job_name);
    int rc = fs_file_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

/* A string member, or NULL with a message naming the member. */
static const char *get_str(const cJSON *o, const char *key, const char *where,
                           struct kd_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v)) {
        kd_errf(err, "%s: member \"%s\": expected a string, found %s", where, key,
                v ? "another type" : "nothing");
        return NULL;
    }
    return v->valuestring;
}

static int get_num(const cJSON *o, const char *key, const char *where, double *out,
                   struct kd_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        return kd_errf(err, "%s: member \"%s\": expected a number, found %s", where, key,
                       v ? "another type" : "nothing");
    *out = v->valuedouble;
    return 0;
}

static int copy_hex(char dst[FS_SHA256_HEX_LEN], const char *src, const char *where,
                    const char *key, struct kd_err *err)
{
    if (strlen(src) != FS_SHA256_HEX_LEN - 1 && src[0] != '\0')
        return kd_errf(err, "%s: member \"%s\": expected 64 hex digits, found \"%s\"", where,
                       key, src);
    snprintf(dst, FS_SHA256_HEX_LEN, "%s", src);
    return 0;
}

static int files_parse(const cJSON *arr, const char *where, struct manifest_file **out,
                       int *n_out, struct kd_err *err)
{
    *out = NULL;
    *n_out = 0;
    if (!cJSON_IsArray(arr))
        return kd_errf(err, "%s: expected an array of files", where);
    int n = cJSON_GetArraySize(arr);
    struct manifest_file *f = n ? kd_calloc((size_t)n, sizeof *f) : NULL;
    int i = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, arr) {
        char w[512];
        snprintf(w, sizeof w, "%s[%d]", where, i);
        const char *name = get_str(o, "name", w, err);
        const char *sha = name ? get_str(o, "sha256", w, err) : NULL;
        const char *mt = sha ? get_str(o, "mtime_ns", w, err) : NULL;
        double size = 0;
        const cJSON *user = cJSON_GetObjectItemCaseSensitive(o, "user");
        if (!mt || get_num(o, "size", w, &size, err) < 0 ||
            copy_hex(f[i].sha256, sha, w, "sha256", err) < 0)
            goto fail;
        if (!cJSON_IsBool(user)) {
            kd_errf(err, "%s: member \"user\": expected true or false", w);
            goto fail;
        }
        f[i].name = kd_strdup(name);
        f[i].user = cJSON_IsTrue(user);
        f[i].size = (int64_t)size;
        f[i].mtime_ns = strtoll(mt, NULL, 10);
        i++;
    }
    *out = f;
    *n_out = n;
    return 0;
fail:
    manifest_files_free(f, i);
    return -1;
}

static char *config_parse(const cJSON *arr)
{
    size_t len = 1;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr)
        if (cJSON_IsString(v))
            len += strlen(v->valuestring) + 1;
    char *text = kd_malloc(len);
    size_t used = 0;
    cJSON_ArrayForEach(v, arr) {
        if (!cJSON_IsString(v))
            continue;
        size_t k = strlen(v->valuestring);
        memcpy(text + used, v->valuestring, k);
        text[used + k] = '\n';
        used += k + 1;
    }
    text[used] = '\0';
    return text;
}

static int entry_parse(const cJSON *o, int index, struct manifest *m, struct kd_err *err)
{
    char where[128];
    snprintf(where, sizeof where, "stages[%d]", index);
    const char *name = get_str(o, "name", where, err);
    if (!name)
        return -1;
    snprintf(where, sizeof where, "stages[%d] (\"%.80s\")", index, name);
    if (manifest_find(m, name))
        return kd_errf(err, "%s: the stage is listed twice", where);
    const char *kind = get_str(o, "kind", where, err);
    const char *status = kind ? get_str(o, "status", where, err) : NULL;
    const char *fp = status ? get_str(o, "fingerprint", where, err) : NULL;
    const char *started = fp ? get_str(o, "started", where, err) : NULL;
    const char *finished = started ? get_str(o, "finished", where, err) : NULL;
    const char *version = finished ? get_str(o, "kd_hpc_version", where, err) : NULL;
    double seconds = 0, ranks = 0;
    if (!version || get_num(o, "seconds", where, &seconds, err) < 0 ||
        get_num(o, "ranks", where, &ranks, err) < 0)
        return -1;
    int st = manifest_status_parse(status);
    if (st < 0)
        return kd_errf(err, "%s: member \"status\": expected running, interrupted, failed "
                       "or finished, found \"%s\"", where, status);
    const cJSON *config = cJSON_GetObjectItemCaseSensitive(o, "config");
    if (!cJSON_IsArray(config))
        return kd_errf(err, "%s: member \"config\": expected an array of lines", where);
    struct manifest_entry *e = manifest_put(m, name);
    e->kind = kd_strdup(kind);
    e->status = st;
    e->config = config_parse(config);
    e->kd_hpc_version = kd_strdup(version);
    snprintf(e->started, sizeof e->started, "%s", started);
    snprintf(e->finished, sizeof e->finished, "%s", finished);
    e->seconds = seconds;
    e->ranks = (int)ranks;
    char w[256];
    snprintf(w, sizeof w, "%s: inputs", where);
    if (copy_hex(e->fingerprint, fp, where, "fingerprint", err) < 0 ||
        files_parse(cJSON_GetObjectItemCaseSensitive(o, "inputs"), w, &e->inputs,
                    &e->n_inputs, err) < 0)
        return -1;
    snprintf(w, sizeof w, "%s: outputs", where);
    return files_parse(cJSON_GetObjectItemCaseSensitive(o, "outputs"), w, &e->outputs,
                       &e->n_outputs, err);
}

static int parse(struct manifest *m, const char *text, struct kd_err *err)
{
    int rc = -1;
    cJSON *root = cJSON_Parse(text);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        return kd_errf(err, "not valid JSON (near \"%.40s\")", at ? at : "?");
    }
    const char *schema = get_str(root, "schema", "manifest", err);
    if (!schema)
        goto done;
    if (strcmp(schema, MANIFEST_SCHEMA) != 0) {
        kd_errf(err, "member \"schema\": expected \"%s\", found \"%s\"", MANIFEST_SCHEMA,
                schema);
        goto done;
    }
    const char *version = get_str(root, "schema_version", "manifest", err);
    int major = -1, minor = -1;
    if (!version)
        goto done;
    if (sscanf(version, "%d.%d", &major, &minor) != 2 || major != MANIFEST_SCHEMA_MAJOR) {
        kd_errf(err, "member \"schema_version\": expected %d.x, found \"%s\"",
                MANIFEST_SCHEMA_MAJOR, version);
        goto done;
    }
    const cJSON *stages = cJSON_GetObjectItemCaseSensitive(root, "stages");
    if (!cJSON_IsArray(stages)) {
        kd_errf(err, "member \"stages\": expected an array");
        goto done;
    }
    int i = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, stages)
        if (entry_parse(o, i++, m, err) < 0)
            goto done;
    rc = 0;
done:
    cJSON_Delete(root);
    return rc;
}

int manifest_load(struct manifest *m, const char *path, struct kd_err *err)
{
    memset(m, 0, sizeof *m);
    if (!fs_file_exists(path))
        return 0;
    char *text;
    size_t len;
    if (fs_file_read(path, &text, &len, err) < 0)
        return -1;
    int rc = parse(m, text, err);
    free(text);
    if (rc < 0) {
        manifest_free(m);
        return kd_err_prefix(err, "%s", path);
    }
    return 0;
}
