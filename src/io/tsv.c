/* tsv.c: GLUE-style TSV reader and label mapping (io layer; no MPI, no
 * tokenizer). The format, the label rules and the error contract are in
 * include/kd/io/tsv.h.
 *
 * One pass over a buffer holding the whole file: memchr finds line ends and
 * TABs, the needed fields are NUL-terminated in place, labels are parsed as
 * the rows go by. String labels are interned in a small hash table with
 * provisional first-seen ids and renumbered in sorted order at the end.
 */
#include "kd/io/tsv.h"
#include "kd/core/log.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- label mapping -------------------------------------------------------- */

void label_map_from_names(struct label_map *m, const char *const *names, int32_t n)
{
    m->kind = LABEL_KIND_NAME;
    m->num_labels = n;
    m->names = kd_calloc((size_t)(n > 0 ? n : 1), sizeof *m->names);
    for (int32_t i = 0; i < n; i++)
        m->names[i] = kd_strdup(names[i]);
}

void label_map_copy(struct label_map *dst, const struct label_map *src)
{
    dst->kind = src->kind;
    dst->num_labels = src->num_labels;
    dst->names = NULL;
    if (src->names) {
        dst->names = kd_calloc((size_t)(src->num_labels > 0 ? src->num_labels : 1),
                               sizeof *dst->names);
        for (int32_t i = 0; i < src->num_labels; i++)
            dst->names[i] = kd_strdup(src->names[i]);
    }
}

void label_map_free(struct label_map *m)
{
    if (m->names)
        for (int32_t i = 0; i < m->num_labels; i++)
            free(m->names[i]);
    free(m->names);
    m->names = NULL;
    m->num_labels = 0;
    m->kind = LABEL_KIND_NONE;
}

int32_t label_map_find(const struct label_map *m, const char *s, size_t len)
{
    if (!m->names)
        return -1;
    for (int32_t i = 0; i < m->num_labels; i++)
        if (strlen(m->names[i]) == len && memcmp(m->names[i], s, len) == 0)
            return i;
    return -1;
}

const char *label_kind_name(int kind)
{
    static const char *const names[] = {"none", "integer", "string", "regression"};
    return kind >= 0 && kind <= LABEL_KIND_REGRESSION ? names[kind] : "?";
}

/* ---- UTF-8 ---------------------------------------------------------------- */

/* Nonzero when one of the 8 bytes of v is 0 (the classic bit trick). */
static inline int has_zero_byte(uint64_t v)
{
    return ((v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull) != 0;
}

ptrdiff_t tsv_utf8_check(const char *s, size_t len, const char **what)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* fast path: 8 ASCII bytes without NUL */
        if (i + 8 <= len) {
            uint64_t v;
            memcpy(&v, u + i, 8);
            if (!(v & 0x8080808080808080ull) && !has_zero_byte(v)) {
                i += 8;
                continue;
            }
        }
        unsigned c = u[i];
        if (c == 0) {
            *what = "a NUL byte";
            return (ptrdiff_t)i;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            *what = (c & 0xC0) == 0x80   ? "a continuation byte without a lead byte"
                    : c == 0xC0 || c == 0xC1 ? "an overlong encoding"
                                             : "a byte that never occurs in UTF-8";
            return (ptrdiff_t)i;
        }
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (u[i + k] & 0xC0) != 0x80) {
                *what = "a multi-byte sequence cut short";
                return (ptrdiff_t)i;
            }
            cp = (cp << 6) | (u[i + k] & 0x3F);
        }
        if (cp < min) {
            *what = "an overlong encoding";
            return (ptrdiff_t)i;
        }
        if (cp >= 0xD800 && cp <= 0xDFFF) {
            *what = "an encoded UTF-16 surrogate";
            return (ptrdiff_t)i;
        }
        if (cp > 0x10FFFF) {
            *what = "a code point above U+10FFFF";
            return (ptrdiff_t)i;
        }
        i += n + 1;
    }
    return -1;
}

/* ---- string interning for labels ---------------------------------------- */

struct intern_slot {
    const char *s; /* NULL: empty slot */
    uint32_t len;
    int32_t id;
};

struct intern {
    struct intern_slot *slots;
    size_t cap;  /* power of two */
    int32_t n;   /* distinct strings */
    const char **order; /* (n) strings by id */
    uint32_t *order_len;
    size_t order_cap;
};

static uint64_t fnv1a(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static void intern_init(struct intern *t)
{
    memset(t, 0, sizeof *t);
    t->cap = 64;
    t->slots = kd_calloc(t->cap, sizeof *t->slots);
}

static void intern_free(struct intern *t)
{
    free(t->slots);
    free(t->order);
    free(t->order_len);
    memset(t, 0, sizeof *t);
}

static struct intern_slot *intern_slot_of(struct intern *t, const char *s, size_t len)
{
    size_t mask = t->cap - 1, i = (size_t)fnv1a(s, len) & mask;
    while (t->slots[i].s &&
           !(t->slots[i].len == len && memcmp(t->slots[i].s, s, len) == 0))
        i = (i + 1) & mask;
    return &t->slots[i];
}

/* The id of s, or -1 when absent and add == 0; s must outlive the table. */
static int32_t intern_get(struct intern *t, const char *s, size_t len, int add)
{
    struct intern_slot *slot = intern_slot_of(t, s, len);
    if (slot->s)
        return slot->id;
    if (!add)
        return -1;
    if ((size_t)(t->n + 1) * 2 > t->cap) {
        /* grow: keep the load factor under 1/2 */
        struct intern_slot *old = t->slots;
        size_t old_cap = t->cap;
        t->cap *= 2;
        t->slots = kd_calloc(t->cap, sizeof *t->slots);
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].s)
                *intern_slot_of(t, old[i].s, old[i].len) = old[i];
        free(old);
        slot = intern_slot_of(t, s, len);
    }
    if ((size_t)t->n == t->order_cap) {
        t->order_cap = t->order_cap ? 2 * t->order_cap : 16;
        t->order = kd_realloc(t->order, t->order_cap * sizeof *t->order);
        t->order_len = kd_realloc(t->order_len, t->order_cap * sizeof *t->order_len);
    }
    slot->s = s;
    slot->len = (uint32_t)len;
    slot->id = t->n;
    t->order[t->n] = s;
    t->order_len[t->n] = (uint32_t)len;
    return t->n++;
}

/* ---- reader state --------------------------------------------------------- */

struct reader {
    struct tsv_table *t;
    const struct tsv_options *opt;
    const struct label_map *train_map; /* NULL: this file defines the mapping */
    struct kd_err *err;
    int problem;
    int64_t num_labels;  /* 0: from the data */
    int mode;            /* enum label_kind being read */
    int64_t mode_line;   /* line whose label decided an integer/string file */
    int64_t max_index;   /* largest integer label seen */
    struct intern names; /* string labels */
    int64_t line;        /* current line */
    char msg[KD_ERR_MSG_MAX];
};

/* A shortened copy of a field for messages: at most 40 bytes, then "...". */
static const char *excerpt(char *out, size_t cap, const char *s, size_t len)
{
    if (len <= 40)
        snprintf(out, cap, "%.*s", (int)len, s);
    else
        snprintf(out, cap, "%.*s...", 40, s);
    return out;
}

/* "a, b, c" of up to max strings (then ", ..."). */
static void join_names(char *out, size_t cap, const char *const *names, int64_t n, int max)
{
    size_t used = 0;
    out[0] = '\0';
    for (int64_t i = 0; i < n && used < cap; i++) {
        if (i == max) {
            snprintf(out + used, cap - used, ", ... (%lld in all)", (long long)n);
            return;
        }
        used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? ", " : "", names[i]);
    }
}

/* A malformed row: with bad_rows = error it ends the read (returns -1 with the
 * message and a HINT in err); with skip it is counted and reported (returns 0
 * and the caller drops the row). */
static int row_error(struct reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int row_error(struct reader *r, const char *fmt, ...)
{
    int at = snprintf(r->msg, sizeof r->msg, "%s:%lld: ", r->t->path, (long long)r->line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg + at, sizeof r->msg - (size_t)at, fmt, ap);
    va_end(ap);
    if (r->opt->bad_rows != TSV_BAD_ROWS_SKIP)
        return kd_errf(r->err, "%s\nHINT: data.bad_rows = \"skip\" skips and counts "
                       "malformed rows", r->msg);
    struct tsv_table *t = r->t;
    if (t->n_skip_msgs < TSV_SKIP_REPORT)
        t->skip_msgs[t->n_skip_msgs++] = kd_strdup(r->msg);
    t->n_skipped++;
    return 0;
}

/* Parses a decimal integer label of only digits (at most 9). -1 if not one. */
static int64_t parse_index(const char *s, size_t len)
{
    if (len == 0 || len > 9)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Parses the label field s (NUL-terminated, len bytes) of the current row.
 * Returns 1 with *id / *target set, 0 when the row was skipped, -1 on error. */
static int parse_label(struct reader *r, const char *s, size_t len, int32_t *id,
                       float *target)
{
    char ex[64];
    const char *col = r->opt->label;
    if (r->problem == TSV_PROBLEM_REGRESSION) {
        char *end = NULL;
        double v = len ? strtod(s, &end) : 0.0;
        /* strtod would skip leading spaces; overflow gives inf */
        if (len == 0 || end != s + len || isspace((unsigned char)s[0]) || !isfinite(v) ||
            fabs(v) > FLT_MAX)
            return row_error(r, "expected a finite number in column '%s' (regression), "
                             "got '%s'", col, excerpt(ex, sizeof ex, s, len)) ? -1 : 0;
        *target = (float)v;
        return 1;
    }
    if (r->mode == LABEL_KIND_NONE) {
        /* the first labelled row of the training file decides */
        r->mode = parse_index(s, len) >= 0 ? LABEL_KIND_INDEX : LABEL_KIND_NAME;
        r->mode_line = r->line;
    }
    if (r->mode == LABEL_KIND_INDEX) {
        int64_t v = parse_index(s, len);
        if (v < 0 || (r->num_labels > 0 && v >= r->num_labels)) {
            char range[96];
            if (r->num_labels > 0)
                snprintf(range, sizeof range, " 0..%lld (%s)", (long long)r->num_labels - 1,
                         r->train_map ? "as in the training file" : "data.num_labels");
            else
                snprintf(range, sizeof range, " (the file's labels are integers, "
                         "from line %lld)", (long long)r->mode_line);
            return row_error(r, "expected an integer class label%s in column '%s', "
                             "got '%s'", range, col, excerpt(ex, sizeof ex, s, len)) ? -1 : 0;
        }
        if (v > r->max_index)
            r->max_index = v;
        *id = (int32_t)v;
        return 1;
    }
    /* string labels */
    int32_t k = intern_get(&r->names, s, len, r->train_map == NULL);
    if (k < 0) {
        char known[512];
        join_names(known, sizeof known, (const char *const *)r->train_map->names,
                   r->train_map->num_labels, 10);
        return row_error(r, "expected one of the training file's labels (%s) in column "
                         "'%s', got '%s'", known, col, excerpt(ex, sizeof ex, s, len))
                   ? -1 : 0;
    }
    *id = k;
    return 1;
}

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* After the last row of a training file: fixes K and the names, and renumbers
 * string labels in sorted order. */
static int finish_labels(struct reader *r)
{
    struct tsv_table *t = r->t;
    struct label_map *m = &t->map;
    if (r->problem == TSV_PROBLEM_REGRESSION) {
        m->kind = LABEL_KIND_REGRESSION;
        m->num_labels = 1;
        return 0;
    }
    if (r->mode == LABEL_KIND_INDEX) {
        int64_t k = r->num_labels > 0 ? r->num_labels : r->max_index + 1;
        m->kind = LABEL_KIND_INDEX;
        m->num_labels = (int32_t)k;
        m->names = kd_calloc((size_t)k, sizeof *m->names);
        for (int64_t i = 0; i < k; i++) {
            char num[24];
            snprintf(num, sizeof num, "%lld", (long long)i);
            m->names[i] = kd_strdup(num);
        }
        return 0;
    }
    int32_t n = r->names.n;
    const char **sorted = kd_malloc((size_t)n * sizeof *sorted);
    memcpy(sorted, r->names.order, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_str_ptr);
    if (r->num_labels > 0 && n != r->num_labels) {
        char list[512];
        join_names(list, sizeof list, sorted, n, 10);
        free(sorted);
        return kd_errf(r->err, "%s: expected %lld distinct labels (data.num_labels), got "
                       "%d: %s", t->path, (long long)r->num_labels, (int)n, list);
    }
    /* provisional (first-seen) id -> sorted id */
    int32_t *remap = kd_malloc((size_t)n * sizeof *remap);
    for (int32_t i = 0; i < n; i++)
        remap[intern_get(&r->names, sorted[i], strlen(sorted[i]), 0)] = i;
    for (int64_t i = 0; i < t->n_rows; i++)
        t->labels[i] = remap[t->labels[i]];
    label_map_from_names(m, sorted, n);
    free(remap);
    free(sorted);
    return 0;
}

/* Looks a header name up; returns the column index, -1 when absent (error
 * set), -2 when duplicated (error set). */
static int find_column(struct reader *r, const char *name, const char *key)
{
    struct tsv_table *t = r->t;
    int found = -1;
    for (int c = 0; c < t->n_columns; c++) {
        if (strcmp(t->columns[c], name) != 0)
            continue;
        if (found >= 0) {
            kd_errf(r->err, "%s:1: column '%s' (%s) appears twice in the header, as "
                    "columns %d and %d; expected unique column names", t->path, name, key,
                    found + 1, c + 1);
            return -2;
        }
        found = c;
    }
    if (found < 0) {
        char cols[1024];
        join_names(cols, sizeof cols, t->columns, t->n_columns, 20);
        kd_errf(r->err, "%s:1: expected a column '%s' (%s) in the header, got %d column%s: "
                "%s", t->path, name, key, t->n_columns, t->n_columns == 1 ? "" : "s", cols);
    }
    return found;
}

static int read_whole_file(const char *path, char **out, size_t *size, struct kd_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return kd_errf(err, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = kd_malloc(cap);
    for (;;) {
        if (cap - n < 2) {
            cap *= 2;
            buf = kd_realloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return kd_errf(err, "%s: read error", path);
    }
    buf[n] = '\0';
    *out = buf;
    *size = n;
    return 0;
}

/* Splits the header line [p, q) into column names (NUL-terminated in place). */
static void split_header(struct tsv_table *t, char *p, char *q)
{
    int n = 1;
    for (char *s = p; (s = memchr(s, '\t', (size_t)(q - s))) != NULL; s++)
        n++;
    t->n_columns = n;
    t->columns = kd_malloc((size_t)n * sizeof *t->columns);
    for (int c = 0; c < n; c++) {
        char *tab = memchr(p, '\t', (size_t)(q - p));
        char *e = tab ? tab : q;
        *e = '\0';
        t->columns[c] = p;
        p = e + 1;
    }
}

void tsv_free(struct tsv_table *t)
{
    free(t->path);
    free(t->buf);
    free(t->columns);
    free(t->rows);
    free(t->labels);
    free(t->targets);
    label_map_free(&t->map);
    for (int i = 0; i < t->n_skip_msgs; i++)
        free(t->skip_msgs[i]);
    memset(t, 0, sizeof *t);
}

/* The read proper; tsv_read wraps it to clean up on failure. */
static int read_rows(struct reader *r)
{
    struct tsv_table *t = r->t;
    const struct tsv_options *opt = r->opt;
    size_t size = 0;
    if (read_whole_file(t->path, &t->buf, &size, r->err))
        return -1;
    char *p = t->buf, *end = t->buf + size;
    if (size >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3; /* UTF-8 byte order mark */
    while (end > p && (end[-1] == '\n' || end[-1] == '\r'))
        end--; /* empty trailing lines */
    *end = '\0';
    if (end == p)
        return kd_errf(r->err, "%s: expected a header row naming the columns (e.g. "
                       "sentence<TAB>label), got an empty file", t->path);

    /* header */
    char *nl = memchr(p, '\n', (size_t)(end - p));
    char *le = nl ? nl : end, *q = le;
    if (q > p && q[-1] == '\r')
        q--;
    const char *what;
    ptrdiff_t bad = tsv_utf8_check(p, (size_t)(q - p), &what);
    if (bad >= 0)
        return kd_errf(r->err, "%s:1: expected UTF-8 text in the header, got %s at byte "
                       "%td (0x%02x)", t->path, what, bad + 1, (unsigned char)p[bad]);
    split_header(t, p, q);
    int ia = find_column(r, opt->text_a, "data.text_a"), ib = -1, il = -1;
    if (ia < 0)
        return -1;
    if (opt->text_b && opt->text_b[0] && (ib = find_column(r, opt->text_b, "data.text_b")) < 0)
        return -1;
    if (opt->label && opt->label[0] &&
        (!r->train_map || r->train_map->kind != LABEL_KIND_NONE)) {
        il = find_column(r, opt->label, "data.label");
        /* absent and optional: a test file without labels */
        if (il == -2 || (il == -1 && !opt->labels_optional))
            return -1;
    }
    int has_labels = il >= 0;

    /* rows: count lines to size the arrays once (an upper bound: skipped
     * rows leave their slots unused), so the loop never reallocates */
    int64_t cap = 1;
    for (char *s = le; s < end && (s = memchr(s, '\n', (size_t)(end - s))) != NULL; s++)
        cap++;
    t->rows = kd_malloc((size_t)cap * sizeof *t->rows);
    if (has_labels && r->problem == TSV_PROBLEM_REGRESSION)
        t->targets = kd_malloc((size_t)cap * sizeof *t->targets);
    else if (has_labels)
        t->labels = kd_malloc((size_t)cap * sizeof *t->labels);
    /* dev/test string labels: seed the table with the training names in id
     * order, so a look-up returns the training id and nothing is ever added */
    if (has_labels && r->train_map && r->train_map->kind == LABEL_KIND_NAME)
        for (int32_t i = 0; i < r->train_map->num_labels; i++)
            intern_get(&r->names, r->train_map->names[i], strlen(r->train_map->names[i]), 1);

    /* Row loop. Each line is validated as a whole before it is split, so
     * every text handed out is valid UTF-8 without NUL bytes; the needed
     * fields are then NUL-terminated in place (over their TAB, CR or LF),
     * which is safe because the line has been scanned already. */
    int ncol = t->n_columns;
    r->line = 1;
    p = nl ? nl + 1 : end;
    int64_t n_data_lines = 0;
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        le = nl ? nl : end;
        q = le;
        if (q > p && q[-1] == '\r')
            q--;
        r->line++;
        n_data_lines++;
        char *line_start = p;
        p = nl ? nl + 1 : end;

        bad = tsv_utf8_check(line_start, (size_t)(q - line_start), &what);
        if (bad >= 0) {
            if (row_error(r, "expected UTF-8 text, got %s at byte %td of the line (0x%02x)",
                          what, bad + 1, (unsigned char)line_start[bad]))
                return -1;
            continue;
        }
        /* split on TAB, keeping the fields we need */
        char *fs[3] = {NULL, NULL, NULL}, *fe[3] = {NULL, NULL, NULL};
        int nf = 0;
        for (char *f = line_start;; nf++) {
            char *tab = memchr(f, '\t', (size_t)(q - f));
            char *e = tab ? tab : q;
            if (nf == ia)
                fs[0] = f, fe[0] = e;
            if (nf == ib)
                fs[1] = f, fe[1] = e;
            if (nf == il)
                fs[2] = f, fe[2] = e;
            if (!tab)
                break;
            f = tab + 1;
        }
        nf++;
        if (nf != ncol) {
            char cols[256], got[64];
            join_names(cols, sizeof cols, t->columns, ncol, 6);
            if (q == line_start)
                snprintf(got, sizeof got, "an empty line");
            else
                snprintf(got, sizeof got, "%d field%s", nf, nf == 1 ? " (no TAB)" : "s");
            if (row_error(r, "expected %d TAB-separated field%s (%s), got %s", ncol,
                          ncol == 1 ? "" : "s", cols, got))
                return -1;
            continue;
        }
        for (int k = 0; k < 3; k++)
            if (fe[k])
                *fe[k] = '\0';
        int64_t i = t->n_rows;
        /* the label goes last: a row skipped for any other reason must not
         * decide the integer/string mode or add a string label */
        if (has_labels) {
            int32_t id = -1;
            float target = 0.0f;
            int rc = parse_label(r, fs[2], (size_t)(fe[2] - fs[2]), &id, &target);
            if (rc < 0)
                return -1;
            if (rc == 0)
                continue;
            if (t->labels)
                t->labels[i] = id;
            else
                t->targets[i] = target;
        }
        struct tsv_row *row = &t->rows[i];
        row->text_a = fs[0];
        row->len_a = (int32_t)(fe[0] - fs[0]);
        row->text_b = fs[1];
        row->len_b = fs[1] ? (int32_t)(fe[1] - fs[1]) : 0;
        row->line = r->line;
        t->n_rows++;
    }

    /* a file that yields no example is an error in either mode: training
     * on nothing, or evaluating on nothing, is never what was meant */
    if (n_data_lines == 0)
        return kd_errf(r->err, "%s: expected at least one data row after the header "
                       "(line 1), got none", t->path);
    if (t->n_rows == 0)
        return kd_errf(r->err, "%s: expected at least one well-formed data row, got %lld "
                       "malformed (skipped); first: %s", t->path, (long long)t->n_skipped,
                       t->skip_msgs[0]);
    if (!has_labels) {
        t->map.kind = LABEL_KIND_NONE;
        return 0;
    }
    if (r->train_map) {
        label_map_copy(&t->map, r->train_map);
        return 0;
    }
    return finish_labels(r);
}

/* Logs the skipped rows (rank 0): the count, the first messages' lines and
 * the first message in full. */
static void report_skipped(const struct tsv_table *t)
{
    if (t->n_skipped == 0)
        return;
    char lines[128] = "";
    size_t used = 0;
    for (int i = 0; i < t->n_skip_msgs; i++) {
        const char *colon = t->skip_msgs[i] + strlen(t->path) + 1;
        long long ln = strtoll(colon, NULL, 10);
        used += (size_t)snprintf(lines + used, sizeof lines - used, "%s%lld", i ? ", " : "",
                                 ln);
        if (used >= sizeof lines)
            break;
    }
    log_warn0("%s: skipped %lld malformed row%s (data.bad_rows = \"skip\"), first at "
              "line%s %s%s; %s", t->path, (long long)t->n_skipped,
              t->n_skipped == 1 ? "" : "s", t->n_skip_msgs == 1 ? "" : "s", lines,
              t->n_skipped > t->n_skip_msgs ? ", ..." : "", t->skip_msgs[0]);
}

int tsv_read(struct tsv_table *t, const char *path, const struct tsv_options *opt,
             const struct label_map *train_map, struct kd_err *err)
{
    memset(t, 0, sizeof *t);
    t->path = kd_strdup(path);
    KD_ASSERT(opt->text_a && opt->text_a[0], "tsv_read needs the text_a column name");
    struct reader r;
    memset(&r, 0, sizeof r);
    r.t = t;
    r.opt = opt;
    r.train_map = train_map;
    r.err = err;
    r.problem = opt->problem;
    r.num_labels = opt->num_labels;
    r.max_index = -1;
    intern_init(&r.names);
    if (train_map) {
        /* dev/test: the training file's mapping decides everything */
        r.problem = train_map->kind == LABEL_KIND_REGRESSION ? TSV_PROBLEM_REGRESSION
                                                              : TSV_PROBLEM_CLASSIFICATION;
        r.num_labels = train_map->num_labels;
        r.mode = train_map->kind;
        r.mode_line = 0;
    }
    int rc = read_rows(&r);
    intern_free(&r.names);
    if (rc) {
        tsv_free(t);
        return -1;
    }
    report_skipped(t);
    return 0;
}
