/* keys.h: the job-file key table, the single source of truth for parsing,
 * validation, `--set`, `--help-keys`, docs/job-config.md and the start-up
 * echo (job layer). */
#ifndef KD_JOB_KEYS_H
#define KD_JOB_KEYS_H

#include <stddef.h>
#include <stdio.h>

enum key_type {
    KEY_INT,       /* int64_t */
    KEY_FLOAT,     /* double; integers accepted */
    KEY_BOOL,      /* bool */
    KEY_STRING,    /* char * (owned) */
    KEY_ENUM,      /* int: index into choices */
    KEY_INT_LIST,  /* struct int_list */
    KEY_ENUM_LIST, /* struct enum_list */
    KEY_SECTION    /* a group (job, data, ...) or list of groups (stages, losses) */
};

/* Where a key's value lives: the struct its offset is relative to. */
enum key_scope { KEY_SCOPE_JOB, KEY_SCOPE_STAGE, KEY_SCOPE_LOSS };

struct key_def {
    const char *path;    /* "data.max_seq_len", "stages.[].lr", "stages.[].losses.[].weight" */
    enum key_type type;
    enum key_scope scope;
    size_t offset;       /* into struct job, struct stage_cfg or struct loss_cfg */
    const char *def;     /* default as job-file text; NULL = required */
    double min, max;     /* numeric range (each element for lists); min > max: none */
    const char *choices; /* "a|b|c" for enums */
    unsigned kinds;      /* stage/loss keys: bit k set = valid for kind k; 0 = all */
    const char *doc;
};

extern const struct key_def key_table[];
extern const size_t key_table_len;

/* The key whose path (indices written as "[]") equals `generic_path`. */
const struct key_def *key_lookup(const char *generic_path);
/* The closest known key to an unknown one in the same section, or NULL. */
const struct key_def *key_suggest(const char *generic_path);

/* "integer in [8, 4096]", "one of \"adamw\", \"adam\"", ... */
void key_describe_type(const struct key_def *k, char *buf, size_t n);
/* Index of `s` in the key's choices, or -1. */
int key_choice_index(const struct key_def *k, const char *s);
/* The text of choice i (copied into buf). */
const char *key_choice_name(const struct key_def *k, int i, char *buf, size_t n);

/* Appends the value of key k in the struct at base to t, exactly: %.17g
 * for floats, strings quoted with \ escapes, choices by name, lists as
 * [a, b]. The canonical text of stage fingerprints (manifest.h). */
struct kd_text;
void key_value_text(struct kd_text *t, const struct key_def *k, const void *base);

/* The stage/loss kinds a key applies to: "finetune, distill" ("" = all). */
void key_kinds_text(const struct key_def *k, char *buf, size_t n);

/* Key reference: plain text for --help-keys, Markdown for docs/. */
void keys_print_reference(FILE *out, int markdown);

/* Levenshtein distance (for suggestions). */
int edit_distance(const char *a, const char *b);

#endif
