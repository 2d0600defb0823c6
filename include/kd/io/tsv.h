/* tsv.h: the GLUE-style TSV reader and the label mapping (io layer; knows
 * nothing of MPI, the tokenizer or the job layer: the caller passes the
 * `data` keys it needs in struct tsv_options).
 *
 * File format (what the GLUE release and its processors in transformers use):
 * - UTF-8 text, one row per line. Lines end in LF or CRLF; a UTF-8 byte order
 *   mark before the header is skipped. A CR not followed by LF stays in its
 *   field (the tokenizer reads it as a space). Empty lines at the end of the
 *   file are ignored; an empty line anywhere else is a row with one empty
 *   field (malformed unless the file has a single column).
 * - The first line is the header and names the columns. The job names the
 *   text_a, optional text_b and label columns by header name (exact,
 *   case-sensitive match; a name that is missing or appears twice is an
 *   error naming the file, the column and the columns that exist).
 * - Fields are separated by TAB and by nothing else. There is NO quoting (as
 *   csv.QUOTE_NONE in the GLUE processors): a double quote is an ordinary
 *   character, and a field can hold neither a TAB nor a newline. Fields are
 *   kept byte for byte, spaces included (every SST-2 sentence ends in a
 *   space; the tokenizer drops it).
 * - Every row has exactly as many fields as the header.
 * - A file without a header row (GLUE's CoLA) is not supported: add a header
 *   line naming the columns first.
 *
 * Labels (classification):
 * - Integer labels: when the first row's label of the file that defines the
 *   mapping (the training file) is a decimal integer, every label must be an
 *   integer 0..K-1 and is its own class id; K = num_labels when given, else
 *   the largest label + 1. Names are "0".."K-1".
 * - String labels: otherwise every distinct label string is a class, and the
 *   ids follow the SORTED order of the strings (bytewise strcmp), as
 *   transformers' run_glue.py does for its own CSV/JSON files. Sorting, not
 *   first-seen order, makes the mapping independent of row order, so every
 *   rank, a re-shuffled copy of the file and a later resume agree. With
 *   num_labels given, the file must hold exactly that many distinct labels.
 * - Only the training file defines the mapping. Development and test files are
 *   read against it (train_map below): an integer outside 0..K-1 or a string
 *   the training file does not hold is an error for that row.
 * Labels (regression): a decimal floating-point number (strtod syntax, finite),
 *   stored as float; the mapping has kind LABEL_KIND_REGRESSION and K = 1.
 * Label fields are not trimmed: "1 " is not an integer label.
 *
 * Malformed rows (wrong field count, a bad label, invalid UTF-8 or a NUL
 * byte anywhere in the line) stop the read with "FILE:LINE: expected ... got
 * ..." (bad_rows = error), or are skipped and counted (bad_rows = skip): the
 * table keeps the count and the first TSV_SKIP_REPORT messages, and a
 * warning with the count and those line numbers is logged (rank 0).
 * A file with no data row left (empty, header only, every row skipped) is an
 * error.
 *
 * Every rank may read the same file independently: the result, label mapping
 * included, depends only on the bytes of the files. The whole file is read
 * into one buffer and the text fields point into it (NUL-terminated in
 * place), so memory is the file size plus 40 bytes per row; SST-2 train
 * (67,349 rows, 3.5 MB) reads in about 6 ms on one core (tests/io/t_tsv).
 */
#ifndef KD_IO_TSV_H
#define KD_IO_TSV_H

#include <stddef.h>
#include <stdint.h>

#include "kd/core/error.h"

/* Values equal the job layer's enum data_problem / data_bad_rows, so the
 * job's fields can be passed as they are. */
enum tsv_problem { TSV_PROBLEM_CLASSIFICATION = 0, TSV_PROBLEM_REGRESSION = 1 };
enum tsv_bad_rows { TSV_BAD_ROWS_ERROR = 0, TSV_BAD_ROWS_SKIP = 1 };

/* Number of skipped-row messages a table keeps for the report. */
#define TSV_SKIP_REPORT 5

/* ---- label mapping ------------------------------------------------------ */

enum label_kind {
    LABEL_KIND_NONE = 0,       /* no labels (a test file) */
    LABEL_KIND_INDEX = 1,      /* integer labels 0..K-1 */
    LABEL_KIND_NAME = 2,       /* string labels, ids in sorted order */
    LABEL_KIND_REGRESSION = 3  /* one float target */
};

/* Class id <-> label string. names[i] is the label of class i, as written in
 * the data ("0", "1", ... for integer labels); NULL for regression/none. */
struct label_map {
    int kind;           /* enum label_kind */
    int32_t num_labels; /* K: classes; 1 for regression; 0 for none */
    char **names;       /* (K) owned strings, or NULL */
};

/* Builds a LABEL_KIND_NAME map from K names given in class-id order (e.g.
 * id2label of a checkpoint's config.json); the names are copied. */
void label_map_from_names(struct label_map *m, const char *const *names, int32_t n);
void label_map_copy(struct label_map *dst, const struct label_map *src);
void label_map_free(struct label_map *m);
/* The class id of a label string of len bytes, or -1. Linear in K (use for
 * look-ups outside a hot loop; the reader hashes). */
int32_t label_map_find(const struct label_map *m, const char *s, size_t len);
const char *label_kind_name(int kind);

/* ---- reader --------------------------------------------------------------- */

struct tsv_options {
    const char *text_a;  /* header name of the first text column (required) */
    const char *text_b;  /* second text column, or NULL / "" for single texts */
    const char *label;   /* label column, or NULL / "" to read no labels */
    int labels_optional; /* 1: a label column absent from the header reads the
                          * file without labels (GLUE test sets) */
    int problem;         /* enum tsv_problem */
    int64_t num_labels;  /* classification: K, or 0 to take it from the data */
    int bad_rows;        /* enum tsv_bad_rows */
};

/* One data row; the texts point into the table's buffer. */
struct tsv_row {
    const char *text_a; /* NUL-terminated, len_a bytes */
    const char *text_b; /* NULL for single-text tasks */
    int32_t len_a, len_b;
    int64_t line;       /* 1-based line in the file (the header is line 1) */
};

struct tsv_table {
    char *path;               /* as given */
    char *buf;                /* the file's bytes, fields NUL-terminated */
    int n_columns;
    const char **columns;     /* (n_columns) header names, pointing into buf */
    int64_t n_rows;           /* N: rows kept */
    struct tsv_row *rows;     /* (N) */
    int32_t *labels;          /* (N) class ids, classification with labels; else NULL */
    float *targets;           /* (N) regression targets; else NULL */
    struct label_map map;     /* kind LABEL_KIND_NONE when read without labels */
    int64_t n_skipped;        /* malformed rows skipped (bad_rows = skip) */
    int n_skip_msgs;          /* min(n_skipped, TSV_SKIP_REPORT) */
    char *skip_msgs[TSV_SKIP_REPORT]; /* "FILE:LINE: expected ... got ..." */
};

/* Reads `path` into *t (which needs no initialisation).
 * train_map == NULL: the file defines the label mapping (the training file).
 * train_map != NULL: its labels are read against that mapping (dev/test), and
 *   opt->problem / opt->num_labels are taken from it.
 * Returns 0, or -1 with err = "FILE:LINE: expected ... got ..." (t is then
 * empty; tsv_free is still allowed). */
int tsv_read(struct tsv_table *t, const char *path, const struct tsv_options *opt,
             const struct label_map *train_map, struct kd_err *err);
/* Releases everything; a zeroed or failed table is allowed. */
void tsv_free(struct tsv_table *t);

/* Checks that bytes [s, s+len) are valid UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF) and hold no NUL byte. Returns -1 when
 * valid, else the offset of the first bad byte, with *what describing it. */
ptrdiff_t tsv_utf8_check(const char *s, size_t len, const char **what);

#endif
