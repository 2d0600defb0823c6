/* overrides.c: `--set PATH=VALUE` applied to the libconfig tree before it is
 * read, so an override goes through exactly the checks of the file itself.
 *
 * PATH is libconfig's path syntax ("data.max_seq_len", "stages.[1].lr");
 * inside stages a stage may also be named ("stages.distill.lr"). VALUE is
 * libconfig value syntax (5e-5, true, "text", [1, 2]); a bare word that does
 * not parse is taken as a string, so `--set job.name=demo2` works unquoted.
 * Overridden settings carry the override text as their libconfig hook, so
 * messages name "--set PATH=VALUE" instead of a file line. */
#include "kd/job/job_read.h"
#include "kd/core/error.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Override texts live as long as the process: hooks point at them. */
static char **hook_texts;
static int n_hook_texts;

static const char *keep_text(const char *t)
{
    hook_texts = kd_realloc(hook_texts, (size_t)(n_hook_texts + 1) * sizeof *hook_texts);
    return hook_texts[n_hook_texts++] = kd_strdup(t);
}

static int valid_name(const char *s)
{
    if (!isalpha((unsigned char)*s))
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
            return 0;
    return 1;
}

/* Copies the value of `src` into a new member `name` of `parent`. */
static config_setting_t *copy_setting(config_setting_t *parent, const char *name,
                                      const config_setting_t *src)
{
    int type = config_setting_type(src);
    config_setting_t *d = config_setting_add(parent, name, type);
    if (!d)
        return NULL;
    switch (type) {
    case CONFIG_TYPE_INT: config_setting_set_int(d, config_setting_get_int(src)); break;
    case CONFIG_TYPE_INT64: config_setting_set_int64(d, config_setting_get_int64(src)); break;
    case CONFIG_TYPE_FLOAT: config_setting_set_float(d, config_setting_get_float(src)); break;
    case CONFIG_TYPE_BOOL: config_setting_set_bool(d, config_setting_get_bool(src)); break;
    case CONFIG_TYPE_STRING: config_setting_set_string(d, config_setting_get_string(src)); break;
    default:
        for (int i = 0; i < config_setting_length(src); i++) {
            const config_setting_t *e = config_setting_get_elem(src, (unsigned)i);
            if (!copy_setting(d, type == CONFIG_TYPE_GROUP ? config_setting_name(e) : NULL, e))
                return NULL;
        }
    }
    return d;
}

/* Finds the child of `parent` named by path component `comp`, creating a
 * group for a missing name when `create` is set. */
static config_setting_t *child_of(config_setting_t *parent, const char *comp, int create)
{
    if (comp[0] == '[') {
        char *end;
        long idx = strtol(comp + 1, &end, 10);
        if (end == comp + 1 || strcmp(end, "]") != 0 || idx < 0)
            return NULL;
        return config_setting_get_elem(parent, (unsigned)idx);
    }
    if (config_setting_is_list(parent)) {
        /* a stage (or loss) named by its "name" member */
        for (int i = 0; i < config_setting_length(parent); i++) {
            config_setting_t *e = config_setting_get_elem(parent, (unsigned)i);
            const char *nm = NULL;
            if (config_setting_is_group(e) && config_setting_lookup_string(e, "name", &nm) &&
                strcmp(nm, comp) == 0)
                return e;
        }
        return NULL;
    }
    if (!config_setting_is_group(parent))
        return NULL;
    config_setting_t *c = config_setting_get_member(parent, comp);
    if (!c && create && valid_name(comp))
        c = config_setting_add(parent, comp, CONFIG_TYPE_GROUP);
    return c;
}

static config_setting_t *parse_value(config_t *tmp, const char *value)
{
    char *text = kd_malloc(strlen(value) * 2 + 16);
    sprintf(text, "v = %s;", value);
    if (!config_read_string(tmp, text)) {
        /* not libconfig syntax: take the text as a string */
        char *q = text + sprintf(text, "v = \"");
        for (const char *p = value; *p; p++) {
            if (*p == '"' || *p == '\\')
                *q++ = '\\';
            *q++ = *p;
        }
        strcpy(q, "\";");
        config_destroy(tmp);
        config_init(tmp);
        if (!config_read_string(tmp, text)) {
            free(text);
            return NULL;
        }
    }
    free(text);
    return config_lookup(tmp, "v");
}

int job_apply_override(config_t *cfg, const char *text, struct job_errors *errs)
{
    const char *eq = strchr(text, '=');
    if (!eq || eq == text) {
        job_errors_add(errs, "--set %s: expected PATH=VALUE, e.g. --set stages.[1].lr=1e-4",
                       text);
        return -1;
    }
    char *path = kd_malloc((size_t)(eq - text) + 1);
    memcpy(path, text, (size_t)(eq - text));
    path[eq - text] = '\0';
    const char *hook = keep_text(text);
    int rc = -1;

    config_t tmp;
    config_init(&tmp);
    config_setting_t *val = parse_value(&tmp, eq + 1);
    if (!val) {
        job_errors_add(errs, "--set %s: cannot parse the value \"%s\"", text, eq + 1);
        goto done;
    }
    config_setting_t *node = config_root_setting(cfg);
    char *save = NULL, *comp = strtok_r(path, ".", &save);
    while (comp) {
        char *next = strtok_r(NULL, ".", &save);
        if (!next)
            break;
        config_setting_t *c = child_of(node, comp, 1);
        if (!c) {
            job_errors_add(errs, "--set %s: \"%s\" names no %s here", text, comp,
                           config_setting_is_list(node) ? "entry of the list" : "group");
            goto done;
        }
        node = c;
        comp = next;
    }
    if (!comp || comp[0] == '[' || !valid_name(comp) || !config_setting_is_group(node)) {
        job_errors_add(errs, "--set %s: the path must end in a key name inside a group", text);
        goto done;
    }
    config_setting_t *old = config_setting_get_member(node, comp);
    if (old)
        config_setting_remove(node, comp);
    config_setting_t *d = copy_setting(node, comp, val);
    if (!d) {
        job_errors_add(errs, "--set %s: cannot store the value", text);
        goto done;
    }
    config_setting_set_hook(d, (void *)hook);
    rc = 0;
done:
    config_destroy(&tmp);
    free(path);
    return rc;
}
