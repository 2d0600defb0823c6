/* job_load.c: reading a job file. libconfig parses; this file walks the
 * tree against the key table, reports every unknown, mistyped, misplaced or
 * missing key with FILE:LINE, and fills struct job. */
#include "kd/job/job_read.h"
#include "kd/core/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const stage_kind_names[] = {"finetune", "prune", "extract",
                                                "distill", "evaluate", "export"};
static const char *const loss_kind_names[] = {"hard", "soft", "hidden", "attention"};

const char *stage_kind_name(int kind)
{
    return kind >= 0 && kind < STAGE_KIND_COUNT ? stage_kind_names[kind] : "?";
}

const char *loss_kind_name(int kind)
{
    return kind >= 0 && kind < LOSS_KIND_COUNT ? loss_kind_names[kind] : "?";
}

/* Walking context: the file, the error list and the generic/concrete paths. */
struct walk {
    const char *file;
    struct job_errors *errs;
};

static void unknown_key(struct walk *w, const config_setting_t *s, const char *generic,
                        const char *concrete)
{
    char loc[512];
    setting_location(s, w->file, loc, sizeof loc);
    const struct key_def *near = key_suggest(generic);
    if (near) {
        /* show the suggestion with the same list indices as the user's path */
        char sugg[256];
        const char *leaf = strrchr(near->path, '.');
        const char *cdot = strrchr(concrete, '.');
        size_t prefix = cdot ? (size_t)(cdot - concrete) : 0;
        snprintf(sugg, sizeof sugg, "%.*s%s", (int)prefix, concrete,
                 leaf ? leaf : near->path);
        job_errors_add(w->errs, "%s: setting %s: unknown key; did you mean %s?", loc,
                       concrete, sugg);
    } else {
        job_errors_add(w->errs, "%s: setting %s: unknown key", loc, concrete);
    }
}

static void missing_key(struct walk *w, const config_setting_t *group, const char *concrete)
{
    char loc[512];
    setting_location(group, w->file, loc, sizeof loc);
    job_errors_add(w->errs, "%s: setting %s: missing required key", loc, concrete);
}

static int expect_type(struct walk *w, const config_setting_t *s, const char *concrete,
                       int type, const char *want)
{
    if (config_setting_type(s) == type)
        return 0;
    char loc[512], got[320];
    setting_location(s, w->file, loc, sizeof loc);
    setting_describe(s, got, sizeof got);
    job_errors_add(w->errs, "%s: setting %s: expected %s, got %s", loc, concrete, want, got);
    return -1;
}

/* Reads the members of group `g` whose keys live under `generic_prefix`.
 * `kind_bit` (0 = no restriction) filters keys by stage/loss kind;
 * `kind_name` names the kind for the message. Sub-sections are returned
 * through `sub` (only "losses" exists) instead of being read here. */
static void read_group(struct walk *w, const config_setting_t *g, const char *generic_prefix,
                       const char *concrete_prefix, void *base, unsigned kind_bit,
                       const char *kind_word, const char *kind_name,
                       const config_setting_t **sub)
{
    int n = config_setting_length(g);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
        char generic[256], concrete[256];
        snprintf(generic, sizeof generic, "%s.%s", generic_prefix, config_setting_name(s));
        snprintf(concrete, sizeof concrete, "%s.%s", concrete_prefix, config_setting_name(s));
        const struct key_def *k = key_lookup(generic);
        if (!k) {
            unknown_key(w, s, generic, concrete);
            continue;
        }
        if (strcmp(config_setting_name(s), "kind") == 0 && kind_word[0])
            continue; /* read first by read_kind */
        if (kind_bit && k->kinds && !(k->kinds & kind_bit)) {
            char loc[512];
            setting_location(s, w->file, loc, sizeof loc);
            char valid[160];
            key_kinds_text(k, valid, sizeof valid);
            job_errors_add(w->errs, "%s: setting %s: not used by a %s of kind \"%s\" "
                           "(only by %s)", loc, concrete, kind_word, kind_name, valid);
            continue;
        }
        if (k->type == KEY_SECTION) {
            if (sub)
                *sub = s;
            continue;
        }
        key_read_value(k, s, base, concrete, w->file, w->errs);
    }
}

/* The kind of a stage or loss group, read first because it decides which
 * other keys are allowed. Returns -1 when absent or invalid (reported). */
static int read_kind(struct walk *w, const config_setting_t *g, const char *generic_prefix,
                     const char *concrete_prefix, void *base)
{
    char generic[256], concrete[256];
    snprintf(generic, sizeof generic, "%s.kind", generic_prefix);
    snprintf(concrete, sizeof concrete, "%s.kind", concrete_prefix);
    const config_setting_t *s = config_setting_get_member(g, "kind");
    if (!s) {
        missing_key(w, g, concrete);
        return -1;
    }
    const struct key_def *k = key_lookup(generic);
    if (key_read_value(k, s, base, concrete, w->file, w->errs))
        return -1;
    return *(int *)((char *)base + k->offset);
}

static void read_losses(struct walk *w, const config_setting_t *list, struct stage_cfg *st,
                        const char *stage_path)
{
    char concrete[256];
    snprintf(concrete, sizeof concrete, "%s.losses", stage_path);
    if (expect_type(w, list, concrete, CONFIG_TYPE_LIST, "list of groups ( { ... }, ... )"))
        return;
    int n = config_setting_length(list);
    st->losses = kd_calloc((size_t)(n ? n : 1), sizeof *st->losses);
    st->n_losses = n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        struct loss_cfg *lc = &st->losses[i];
        char path[256];
        snprintf(path, sizeof path, "%s.losses.[%d]", stage_path, i);
        keys_apply_defaults(KEY_SCOPE_LOSS, lc);
        lc->kind = -1;
        lc->line = config_setting_source_line(g);
        if (expect_type(w, g, path, CONFIG_TYPE_GROUP, "group { kind = ...; ... }"))
            continue;
        int kind = read_kind(w, g, "stages.[].losses.[]", path, lc);
        read_group(w, g, "stages.[].losses.[]", path, lc, kind >= 0 ? 1u << kind : 0, "loss",
                   loss_kind_name(kind), NULL);
    }
}

static void read_stages(struct walk *w, const config_setting_t *list, struct job *job)
{
    if (expect_type(w, list, "stages", CONFIG_TYPE_LIST, "list of groups ( { ... }, ... )"))
        return;
    int n = config_setting_length(list);
    job->stages = kd_calloc((size_t)(n ? n : 1), sizeof *job->stages);
    job->n_stages = n;
    for (int i = 0; i < n; i++) {
        const config_setting_t *g = config_setting_get_elem(list, (unsigned)i);
        struct stage_cfg *st = &job->stages[i];
        char path[64];
        snprintf(path, sizeof path, "stages.[%d]", i);
        keys_apply_defaults(KEY_SCOPE_STAGE, st);
        st->kind = -1;
        st->line = config_setting_source_line(g);
        if (expect_type(w, g, path, CONFIG_TYPE_GROUP, "group { name = ...; kind = ...; }"))
            continue;
        if (!config_setting_get_member(g, "name")) {
            char concrete[96];
            snprintf(concrete, sizeof concrete, "%s.name", path);
            missing_key(w, g, concrete);
        }
        int kind = read_kind(w, g, "stages.[]", path, st);
        const config_setting_t *losses = NULL;
        read_group(w, g, "stages.[]", path, st, kind >= 0 ? 1u << kind : 0, "stage",
                   stage_kind_name(kind), &losses);
        if (losses)
            read_losses(w, losses, st, path);
    }
}

static void read_root(struct walk *w, const config_setting_t *root, struct job *job)
{
    static const char *const required[] = {"job", "stages"};
    int n = config_setting_length(root);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
        const char *name = config_setting_name(s);
        const struct key_def *k = key_lookup(name);
        if (!k || k->type != KEY_SECTION) {
            unknown_key(w, s, name, name);
            continue;
        }
        if (strcmp(name, "stages") == 0) {
            read_stages(w, s, job);
            continue;
        }
        if (expect_type(w, s, name, CONFIG_TYPE_GROUP, "group { ... }"))
            continue;
        read_group(w, s, name, name, job, 0, "", "", NULL);
    }
    for (size_t r = 0; r < sizeof required / sizeof *required; r++)
        if (!config_setting_get_member(root, required[r]))
            job_errors_add(w->errs, "%s:1: setting %s: missing required section", w->file,
                           required[r]);
    const config_setting_t *jg = config_setting_get_member(root, "job");
    if (jg && config_setting_type(jg) == CONFIG_TYPE_GROUP &&
        !config_setting_get_member(jg, "name"))
        missing_key(w, jg, "job.name");
}

static char *dir_of(const char *path)
{
    char *d = kd_strdup(path);
    char *slash = strrchr(d, '/');
    if (slash)
        slash[slash == d ? 1 : 0] = '\0';
    else
        strcpy(d, ".");
    return d;
}

int job_load(struct job *job, const char *path, const char *const *overrides,
             int n_overrides, struct job_errors *errs)
{
    memset(job, 0, sizeof *job);
    job->path = kd_strdup(path);
    keys_apply_defaults(KEY_SCOPE_JOB, job);
    int n_before = errs->n;

    config_t cfg;
    config_init(&cfg);
    char *dir = dir_of(path);
    config_set_include_dir(&cfg, dir);
    free(dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        job_errors_add(errs, "%s: cannot open job file: %s", path, strerror(errno));
        config_destroy(&cfg);
        return -1;
    }
    int parsed = config_read(&cfg, f);
    fclose(f);
    if (!parsed) {
        const char *file = config_error_file(&cfg);
        /* libconfig's own line and text ("syntax error", "cannot open
         * include file") */
        job_errors_add(errs, "%s:%d: %s", file ? file : path, config_error_line(&cfg),
                       config_error_text(&cfg));
        config_destroy(&cfg);
        return -1;
    }
    for (int i = 0; i < n_overrides; i++)
        job_apply_override(&cfg, overrides[i], errs);

    struct walk w = {path, errs};
    read_root(&w, config_root_setting(&cfg), job);
    if (job->job.name && !job->job.output_dir[0]) {
        /* derived default: runs/<name> */
        size_t n = strlen(job->job.name) + 6;
        free(job->job.output_dir);
        job->job.output_dir = kd_malloc(n);
        snprintf(job->job.output_dir, n, "runs/%s", job->job.name);
    }
    /* cross-key checks only on a well-formed job: on a broken one they
     * would mostly repeat the errors above in other words */
    if (errs->n == n_before)
        job_check(job, &cfg, errs);
    config_destroy(&cfg);
    return errs->n == n_before ? 0 : -1;
}

void job_free(struct job *job)
{
    for (int i = 0; i < job->n_stages; i++) {
        struct stage_cfg *st = &job->stages[i];
        for (int j = 0; j < st->n_losses; j++)
            keys_free_fields(KEY_SCOPE_LOSS, &st->losses[j]);
        free(st->losses);
        keys_free_fields(KEY_SCOPE_STAGE, st);
    }
    free(job->stages);
    keys_free_fields(KEY_SCOPE_JOB, job);
    free(job->path);
    memset(job, 0, sizeof *job);
}

const struct stage_cfg *job_find_stage(const struct job *job, const char *name)
{
    for (int i = 0; i < job->n_stages; i++)
        if (job->stages[i].name && strcmp(job->stages[i].name, name) == 0)
            return &job->stages[i];
    return NULL;
}
