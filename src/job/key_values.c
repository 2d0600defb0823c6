/* key_values.c: converting libconfig settings into typed job fields, with
 * the "expected ... got ..." messages, and the defaults of the key table. */
#include "kd/job/job_read.h"
#include "kd/core/error.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void setting_location(const config_setting_t *s, const char *job_path, char *buf, size_t n)
{
    const char *over = config_setting_get_hook(s);
    for (const config_setting_t *p = s; !over && p; p = config_setting_parent(p))
        over = config_setting_get_hook(p);
    if (over) {
        snprintf(buf, n, "--set %s", over);
        return;
    }
    const char *file = config_setting_source_file(s);
    snprintf(buf, n, "%s:%d", file ? file : job_path, (int)config_setting_source_line(s));
}

void setting_describe(const config_setting_t *s, char *buf, size_t n)
{
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT: snprintf(buf, n, "integer %d", config_setting_get_int(s)); break;
    case CONFIG_TYPE_INT64:
        snprintf(buf, n, "integer %lld", (long long)config_setting_get_int64(s));
        break;
    case CONFIG_TYPE_FLOAT: {
        snprintf(buf, n, "number %g", config_setting_get_float(s));
        if (!strpbrk(buf + 7, ".eEn"))
            strncat(buf, ".0", n - strlen(buf) - 1); /* show 128.0 as written */
        break;
    }
    case CONFIG_TYPE_STRING:
        snprintf(buf, n, "string \"%s\"", config_setting_get_string(s));
        break;
    case CONFIG_TYPE_BOOL:
        snprintf(buf, n, "boolean %s", config_setting_get_bool(s) ? "true" : "false");
        break;
    case CONFIG_TYPE_GROUP: snprintf(buf, n, "a group { ... }"); break;
    case CONFIG_TYPE_ARRAY: snprintf(buf, n, "an array [ ... ]"); break;
    case CONFIG_TYPE_LIST: snprintf(buf, n, "a list ( ... )"); break;
    default: snprintf(buf, n, "an unknown value"); break;
    }
}

static int is_int(const config_setting_t *s)
{
    int t = config_setting_type(s);
    return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

static int in_range(const struct key_def *k, double v)
{
    return k->min > k->max || (v >= k->min && v <= k->max);
}

static int type_error(const struct key_def *k, const config_setting_t *s, const char *path,
                      const char *job_path, struct job_errors *errs, const char *what)
{
    char loc[512], want[640], got[320];
    setting_location(s, job_path, loc, sizeof loc);
    key_describe_type(k, want, sizeof want);
    setting_describe(s, got, sizeof got);
    job_errors_add(errs, "%s: setting %s: expected %s, got %s%s", loc, path, want,
                   what ? what : "", got);
    return -1;
}

static int read_int_list(const struct key_def *k, const config_setting_t *s, void *dest,
                         const char *path, const char *job_path, struct job_errors *errs)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
        return type_error(k, s, path, job_path, errs, NULL);
    int n = config_setting_length(s);
    struct int_list *l = dest;
    free(l->v);
    l->n = 0;
    l->v = kd_calloc((size_t)(n ? n : 1), sizeof *l->v);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        char what[64];
        snprintf(what, sizeof what, "element %d ", i);
        if (!is_int(e) || !in_range(k, (double)config_setting_get_int64(e)))
            return type_error(k, e, path, job_path, errs, what);
        l->v[l->n++] = config_setting_get_int64(e);
    }
    return 0;
}

static int read_enum_list(const struct key_def *k, const config_setting_t *s, void *dest,
                          const char *path, const char *job_path, struct job_errors *errs)
{
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST)
        return type_error(k, s, path, job_path, errs, NULL);
    int n = config_setting_length(s);
    struct enum_list *l = dest;
    free(l->v);
    l->n = 0;
    l->v = kd_calloc((size_t)(n ? n : 1), sizeof *l->v);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        char what[64];
        snprintf(what, sizeof what, "element %d ", i);
        int idx = config_setting_type(e) == CONFIG_TYPE_STRING
                      ? key_choice_index(k, config_setting_get_string(e)) : -1;
        if (idx < 0)
            return type_error(k, e, path, job_path, errs, what);
        for (int j = 0; j < l->n; j++)
            if (l->v[j] == idx) {
                char loc[512];
                setting_location(e, job_path, loc, sizeof loc);
                job_errors_add(errs, "%s: setting %s: \"%s\" listed twice", loc, path,
                               config_setting_get_string(e));
                return -1;
            }
        l->v[l->n++] = idx;
    }
    return 0;
}

int key_read_value(const struct key_def *k, const config_setting_t *s, void *base,
                   const char *path, const char *job_path, struct job_errors *errs)
{
    void *dest = (char *)base + k->offset;
    switch (k->type) {
    case KEY_INT: {
        if (!is_int(s) || !in_range(k, (double)config_setting_get_int64(s)))
            return type_error(k, s, path, job_path, errs, NULL);
        *(int64_t *)dest = config_setting_get_int64(s);
        return 0;
    }
    case KEY_FLOAT: {
        int t = config_setting_type(s);
        double v = t == CONFIG_TYPE_FLOAT ? config_setting_get_float(s)
                   : is_int(s)            ? (double)config_setting_get_int64(s) : NAN;
        if (isnan(v) || !in_range(k, v))
            return type_error(k, s, path, job_path, errs, NULL);
        *(double *)dest = v;
        return 0;
    }
    case KEY_BOOL:
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
            return type_error(k, s, path, job_path, errs, NULL);
        *(bool *)dest = config_setting_get_bool(s) != 0;
        return 0;
    case KEY_STRING:
        if (config_setting_type(s) != CONFIG_TYPE_STRING)
            return type_error(k, s, path, job_path, errs, NULL);
        free(*(char **)dest);
        *(char **)dest = kd_strdup(config_setting_get_string(s));
        return 0;
    case KEY_ENUM: {
        int idx = config_setting_type(s) == CONFIG_TYPE_STRING
                      ? key_choice_index(k, config_setting_get_string(s)) : -1;
        if (idx < 0)
            return type_error(k, s, path, job_path, errs, NULL);
        *(int *)dest = idx;
        return 0;
    }
    case KEY_INT_LIST: return read_int_list(k, s, dest, path, job_path, errs);
    case KEY_ENUM_LIST: return read_enum_list(k, s, dest, path, job_path, errs);
    case KEY_SECTION: break;
    }
    KD_FATAL("key %s has no value type", k->path);
}

void keys_apply_defaults(enum key_scope scope, void *base)
{
    for (size_t i = 0; i < key_table_len; i++) {
        const struct key_def *k = &key_table[i];
        if (k->scope != scope || k->type == KEY_SECTION || !k->def)
            continue;
        /* Defaults are job-file text parsed by the same path as user values,
         * so the table cannot hold a default its own checks would refuse. */
        config_t c;
        config_init(&c);
        char text[512];
        snprintf(text, sizeof text, "v = %s;", k->def);
        struct job_errors errs = {0};
        KD_ASSERT(config_read_string(&c, text), "default of %s does not parse", k->path);
        int rc = key_read_value(k, config_lookup(&c, "v"), base, k->path, "(default)", &errs);
        KD_ASSERT(rc == 0, "default of %s is invalid: %s", k->path, errs.n ? errs.msgs[0] : "");
        job_errors_free(&errs);
        config_destroy(&c);
    }
}

void keys_free_fields(enum key_scope scope, void *base)
{
    for (size_t i = 0; i < key_table_len; i++) {
        const struct key_def *k = &key_table[i];
        if (k->scope != scope || k->type == KEY_SECTION)
            continue;
        void *dest = (char *)base + k->offset;
        if (k->type == KEY_STRING) {
            free(*(char **)dest);
            *(char **)dest = NULL;
        } else if (k->type == KEY_INT_LIST) {
            free(((struct int_list *)dest)->v);
            ((struct int_list *)dest)->v = NULL;
        } else if (k->type == KEY_ENUM_LIST) {
            free(((struct enum_list *)dest)->v);
            ((struct enum_list *)dest)->v = NULL;
        }
    }
}
