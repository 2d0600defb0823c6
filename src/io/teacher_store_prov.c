/* teacher_store_prov.c: root and group attributes of the teacher store, and
 * the provenance check a reader makes before trusting a file (io layer).
 * Attribute names are part of the schema contract (DESIGN 4,
 * hdf5-schemas/teacher_store.v1.md). */
#include "config.h"
#include "teacher_store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Opens a group, writes its attributes through fn, closes it. */
static int group_attrs(hid_t file, const char *name, const struct store_spec *s,
                       int (*fn)(hid_t, const struct store_spec *, struct kd_err *),
                       struct kd_err *err)
{
    int rc = -1;
    hid_t g = H5I_INVALID_HID;
    H5_CHECK(err, g = H5Gopen2(file, name, H5P_DEFAULT), "group %s", name);
    rc = fn(g, s, err);
done:
    h5_close_any(&g);
    return rc;
}

static int hidden_attrs(hid_t g, const struct store_spec *s, struct kd_err *err)
{
    if (h5_attr_write_i32s(g, "layers", s->hidden_layers, (size_t)s->n_hidden_layers,
                           err) < 0 ||
        h5_attr_write_str(g, "tokens", s->tokens == STORE_TOKENS_CLS ? "cls" : "all",
                          err) < 0 ||
        h5_attr_write_i32(g, "hidden_size", s->hidden_size, err) < 0)
        return kd_err_prefix(err, "/hidden");
    return 0;
}

static int attention_attrs(hid_t g, const struct store_spec *s, struct kd_err *err)
{
    if (h5_attr_write_i32s(g, "layers", s->attention_layers,
                           (size_t)s->n_attention_layers, err) < 0 ||
        h5_attr_write_i32s(g, "heads", s->heads, (size_t)s->n_heads, err) < 0 ||
        h5_attr_write_i32(g, "model_heads", s->model_heads, err) < 0 ||
        h5_attr_write_str(g, "layout", "ragged", err) < 0)
        return kd_err_prefix(err, "/attention");
    return 0;
}

int store__write_attrs(hid_t file, const struct store_spec *s,
                       const struct store_provenance *p, const char *created,
                       struct kd_err *err)
{
    char components[512];
    store__components_text(s->datasets, components, sizeof components);
    if (h5_attr_write_str(file, "schema", STORE_SCHEMA, err) < 0 ||
        h5_attr_write_str(file, "schema_version", STORE_SCHEMA_VERSION, err) < 0 ||
        h5_attr_write_str(file, "kd_hpc_version", PACKAGE_VERSION, err) < 0 ||
        h5_attr_write_json(file, "teacher_config", p->teacher_config, err) < 0 ||
        h5_attr_write_str(file, "teacher_sha256", p->teacher_sha256, err) < 0 ||
        h5_attr_write_str(file, "vocab_sha256", p->vocab_sha256, err) < 0 ||
        h5_attr_write_str(file, "data_sha256", p->data_sha256, err) < 0 ||
        h5_attr_write_str(file, "created", created, err) < 0 ||
        h5_attr_write_i64(file, "n_examples", s->n_examples, err) < 0 ||
        h5_attr_write_i32(file, "seq_len", s->seq_len, err) < 0 ||
        h5_attr_write_str(file, "components", components, err) < 0)
        return -1;
    if ((s->datasets & STORE_BIT(STORE_DS_HIDDEN)) &&
        group_attrs(file, "/hidden", s, hidden_attrs, err) < 0)
        return -1;
    if ((s->datasets & STORE_BIT(STORE_DS_ATTENTION)) &&
        group_attrs(file, "/attention", s, attention_attrs, err) < 0)
        return -1;
    return 0;
}

int store__read_prov(hid_t file, struct store_prov_text *t, struct kd_err *err)
{
    memset(t, 0, sizeof *t);
    /* schema first: a file that is not a store at all gets that message
     * rather than one about a missing hash. */
    if (h5_attr_read_str(file, "schema", &t->schema, err) < 0 ||
        h5_attr_read_str(file, "schema_version", &t->schema_version, err) < 0)
        goto fail;
    if (strcmp(t->schema, STORE_SCHEMA) != 0)
        return 0; /* store__check_prov explains */
    if (h5_attr_read_str(file, "kd_hpc_version", &t->kd_hpc_version, err) < 0 ||
        h5_attr_read_json(file, "teacher_config", &t->teacher_config, err) < 0 ||
        h5_attr_read_str(file, "teacher_sha256", &t->teacher_sha256, err) < 0 ||
        h5_attr_read_str(file, "vocab_sha256", &t->vocab_sha256, err) < 0 ||
        h5_attr_read_str(file, "data_sha256", &t->data_sha256, err) < 0 ||
        h5_attr_read_str(file, "created", &t->created, err) < 0)
        goto fail;
    return 0;
fail:
    store__prov_free(t);
    return -1;
}

void store__prov_free(struct store_prov_text *t)
{
    free(t->schema);
    free(t->schema_version);
    free(t->kd_hpc_version);
    free(t->teacher_config);
    free(t->teacher_sha256);
    free(t->vocab_sha256);
    free(t->data_sha256);
    free(t->created);
    memset(t, 0, sizeof *t);
}

/* Appends "; what differs: the store has A, expected B" when both given
 * and different. */
static void diff_hash(char *msg, size_t len, const char *what, const char *have,
                      const char *want)
{
    if (!want || (have && strcmp(have, want) == 0))
        return;
    size_t used = strlen(msg);
    snprintf(msg + used, len - used, "%s%s differs: the store has %s, expected %s",
             used ? "; " : "", what, have ? have : "(none)", want);
}

int store__check_prov(const char *path, const struct store_prov_text *t,
                      const struct store_expect *e, struct kd_err *err)
{
    if (strcmp(t->schema, STORE_SCHEMA) != 0)
        return kd_errf(err, "%s: not a teacher store: attribute schema is \"%s\", "
                       "expected \"%s\"", path, t->schema, STORE_SCHEMA);
    int major = -1, minor = -1;
    char extra;
    int want_major = e && e->schema_major ? e->schema_major : STORE_SCHEMA_MAJOR;
    if (sscanf(t->schema_version, "%d.%d%c", &major, &minor, &extra) != 2 || major < 0 ||
        minor < 0)
        return kd_errf(err, "%s: schema_version: expected MAJOR.MINOR, got \"%s\"", path,
                       t->schema_version);
    if (major != want_major)
        return kd_errf(err, "%s: schema_version differs: the store has %s (major %d), "
                       "expected major version %d (%d.x); HINT: regenerate the store "
                       "with this kd_hpc (stage extract) or use a matching kd_hpc",
                       path, t->schema_version, major, want_major, want_major);
    if (!e)
        return 0;
    char msg[KD_ERR_MSG_MAX - 256] = "";
    diff_hash(msg, sizeof msg, "teacher_sha256", t->teacher_sha256, e->teacher_sha256);
    diff_hash(msg, sizeof msg, "vocab_sha256", t->vocab_sha256, e->vocab_sha256);
    diff_hash(msg, sizeof msg, "data_sha256", t->data_sha256, e->data_sha256);
    if (msg[0])
        return kd_errf(err, "%s: provenance mismatch: %s; HINT: the store was made from "
                       "other inputs, re-run stage extract", path, msg);
    return 0;
}
