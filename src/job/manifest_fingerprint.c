/* manifest_fingerprint.c: what identifies a stage run: its canonical
 * configuration text (from the key table, so a new key is covered without
 * touching this file), the fingerprint over configuration and input
 * digests, probing files on disk, and a one-line explanation of what
 * changed (job layer).
 *
 * Values are printed exactly (%.17g for doubles), so two configurations
 * have the same text only if every value is the same bit pattern; the
 * start-up echo (job_echo.c) prints for humans and is not used here. */
#include "kd/job/manifest.h"
#include "kd/job/keys.h"
#include "kd/core/text.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Keys that change what a stage computes. Not included: job.name,
 * job.output_dir (where, not what), job.ranks, job.log_level,
 * job.checkpoint_every and job.store_budget_gb (how often or how loudly). */
const char *const manifest_default_job_keys[] = {"job.seed", "data.", "teacher.", "student.",
                                                 NULL};

/* ---- canonical configuration text ---------------------------------------- */

static int applies(const struct key_def *k, int kind)
{
    return !k->kinds || (kind >= 0 && (k->kinds & (1u << kind)));
}

static int job_key_wanted(const char *path, const char *const *prefixes)
{
    for (; *prefixes; prefixes++) {
        size_t n = strlen(*prefixes);
        if (n && (*prefixes)[n - 1] == '.' ? strncmp(path, *prefixes, n) == 0
                                           : strcmp(path, *prefixes) == 0)
            return 1;
    }
    return 0;
}

/* "stages.[].losses.[].weight" -> "weight" */
static const char *leaf(const char *path)
{
    const char *d = strrchr(path, '.');
    return d ? d + 1 : path;
}

char *manifest_stage_config(const struct job *job, const struct stage_cfg *st,
                            const char *const *job_keys)
{
    struct kd_text t = {0};
    kd_text_add(&t, "%s", "");
    if (!job_keys)
        job_keys = manifest_default_job_keys;
    /* the stage's own keys; its name only labels it and is not part of what
     * it computes (the manifest entry is found by name anyway) */
    for (size_t i = 0; i < key_table_len; i++) {
        const struct key_def *k = &key_table[i];
        if (k->scope != KEY_SCOPE_STAGE || k->type == KEY_SECTION || !applies(k, st->kind) ||
            strcmp(k->path, "stages.[].name") == 0)
            continue;
        kd_text_add(&t, "stage.%s = ", leaf(k->path));
        key_value_text(&t, k, st);
        kd_text_add(&t, "\n");
    }
    for (int l = 0; l < st->n_losses; l++)
        for (size_t i = 0; i < key_table_len; i++) {
            const struct key_def *k = &key_table[i];
            if (k->scope != KEY_SCOPE_LOSS || k->type == KEY_SECTION ||
                !applies(k, st->losses[l].kind))
                continue;
            kd_text_add(&t, "stage.losses.[%d].%s = ", l, leaf(k->path));
            key_value_text(&t, k, &st->losses[l]);
            kd_text_add(&t, "\n");
        }
    for (size_t i = 0; i < key_table_len; i++) {
        const struct key_def *k = &key_table[i];
        if (k->scope != KEY_SCOPE_JOB || k->type == KEY_SECTION ||
            !job_key_wanted(k->path, job_keys))
            continue;
        kd_text_add(&t, "%s = ", k->path);
        key_value_text(&t, k, job);
        kd_text_add(&t, "\n");
    }
    return t.buf;
}

/* ---- fingerprint ------------------------------------------------------------- */

static int cmp_file_name(const void *a, const void *b)
{
    const struct manifest_file *x = a, *y = b;
    if (x->user != y->user)
        return x->user - y->user;
    return strcmp(x->name, y->name);
}

int manifest_fingerprint(const char *kind, const char *config,
                         const struct manifest_file *inputs, int n_inputs,
                         char hex[FS_SHA256_HEX_LEN], struct kd_err *err)
{
    /* sorted, so the order in which a stage declares its inputs does not
     * matter */
    struct manifest_file *sorted = NULL;
    int n = 0;
    manifest_files_copy(&sorted, &n, inputs, n_inputs);
    if (n > 1)
        qsort(sorted, (size_t)n, sizeof *sorted, cmp_file_name);
    struct kd_text t = {0};
    kd_text_add(&t, "kd_hpc.stage_fingerprint/1\nkind = %s\n%s", kind, config);
    for (int i = 0; i < n; i++)
        kd_text_add(&t, "input %s%s %s\n", sorted[i].user ? "user:" : "", sorted[i].name,
                 sorted[i].sha256);
    int rc = fs_buffer_sha256(t.buf, t.len, hex, err);
    free(t.buf);
    manifest_files_free(sorted, n);
    return rc;
}

/* ---- files on disk ------------------------------------------------------------- */

char *manifest_file_path(const char *output_dir, const struct manifest_file *f)
{
    return f->user ? kd_strdup(f->name) : fs_path_join(output_dir, f->name);
}

int manifest_file_probe(const char *output_dir, struct manifest_file *f,
                        const struct manifest_file *known, struct kd_err *err)
{
    char *path = manifest_file_path(output_dir, f);
    struct stat st;
    int rc = -1;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            rc = 1;
        else
            kd_errf(err, "%s: cannot stat: %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        kd_errf(err, "%s: expected a regular file", path);
        goto done;
    }
    f->size = (int64_t)st.st_size;
    f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + (int64_t)st.st_mtim.tv_nsec;
    if (known && known->sha256[0] && known->size == f->size && known->mtime_ns == f->mtime_ns)
        memcpy(f->sha256, known->sha256, FS_SHA256_HEX_LEN);
    else if (fs_file_sha256(path, f->sha256, err) < 0)
        goto done;
    rc = 0;
done:
    free(path);
    return rc;
}

/* ---- what changed ------------------------------------------------------------- */

/* The line of `text` that starts with "key = ", copied (without newline)
 * into out; "" if absent. */
static void find_line(const char *text, const char *key, size_t klen, char *out, size_t len)
{
    out[0] = '\0';
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (n > klen + 2 && strncmp(p, key, klen) == 0 && strncmp(p + klen, " = ", 3) == 0) {
            size_t v = n - klen - 3;
            if (v >= len)
                v = len - 1;
            memcpy(out, p + klen + 3, v);
            out[v] = '\0';
            return;
        }
        p = nl ? nl + 1 : NULL;
    }
}

/* First line of `now` whose value differs in `old` (or is absent there). */
static int first_config_change(const char *old, const char *now, char *why, size_t len)
{
    for (const char *p = now; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        const char *eq = strstr(p, " = ");
        if (eq && eq < p + n) {
            char key[256], a[512], b[512];
            size_t klen = (size_t)(eq - p) < sizeof key - 1 ? (size_t)(eq - p) : sizeof key - 1;
            memcpy(key, p, klen);
            key[klen] = '\0';
            find_line(old, key, klen, a, sizeof a);
            find_line(now, key, klen, b, sizeof b);
            if (strcmp(a, b) != 0) {
                snprintf(why, len, "setting %s changed from %s to %s", key, a[0] ? a : "(unset)",
                         b);
                return 1;
            }
        }
        p = nl ? nl + 1 : NULL;
    }
    return 0;
}

static const struct manifest_file *find_file(const struct manifest_file *f, int n,
                                             const struct manifest_file *like)
{
    for (int i = 0; i < n; i++)
        if (f[i].user == like->user && strcmp(f[i].name, like->name) == 0)
            return &f[i];
    return NULL;
}

void manifest_explain_change(const struct manifest_entry *e, const char *config,
                             const struct manifest_file *inputs, int n_inputs, char *why,
                             size_t len)
{
    if (first_config_change(e->config ? e->config : "", config, why, len) ||
        first_config_change(config, e->config ? e->config : "", why, len))
        return;
    for (int i = 0; i < n_inputs; i++) {
        const struct manifest_file *old = find_file(e->inputs, e->n_inputs, &inputs[i]);
        if (!old) {
            snprintf(why, len, "new input %s", inputs[i].name);
            return;
        }
        if (strcmp(old->sha256, inputs[i].sha256) != 0) {
            snprintf(why, len, "input %s changed (sha256 %.12s... -> %.12s...)",
                     inputs[i].name, old->sha256, inputs[i].sha256);
            return;
        }
    }
    for (int i = 0; i < e->n_inputs; i++)
        if (!find_file(inputs, n_inputs, &e->inputs[i])) {
            snprintf(why, len, "input %s is no longer read", e->inputs[i].name);
            return;
        }
    snprintf(why, len, "fingerprint changed (stage kind or fingerprint format)");
}
