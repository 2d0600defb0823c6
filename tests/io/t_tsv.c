/* t_tsv.c: the GLUE-style TSV reader: well-formed files (single, pair, BOM +
 * CRLF, string and integer labels, regression, a test file without labels),
 * every malformed case of tests/io/tsv/ with its exact "FILE:LINE: expected
 * ... got ..." message, skip mode, the UTF-8 checker, and SST-2 from
 * $KD_SHARED/data/glue/SST-2 (row counts, dev positives, parse time). */
#include "kd/io/tsv.h"
#include "kd/core/log.h"
#include "../tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fixture_dir[4096];

/* tests/io/tsv under $KD_SRCDIR, or beside this source file when run by hand. */
static void find_fixtures(void)
{
    const char *src = getenv("KD_SRCDIR");
    if (src && src[0]) {
        snprintf(fixture_dir, sizeof fixture_dir, "%s/tests/io/tsv", src);
        return;
    }
    snprintf(fixture_dir, sizeof fixture_dir, "%s", __FILE__);
    char *slash = strrchr(fixture_dir, '/');
    if (slash)
        snprintf(slash, sizeof fixture_dir - (size_t)(slash - fixture_dir), "/tsv");
    else
        snprintf(fixture_dir, sizeof fixture_dir, "tsv");
}

static struct tsv_options single_opts(void)
{
    struct tsv_options o = {.text_a = "sentence", .label = "label",
                            .problem = TSV_PROBLEM_CLASSIFICATION,
                            .bad_rows = TSV_BAD_ROWS_ERROR};
    return o;
}

/* Reads fixture `name`; returns tsv_read's status. */
static int rd(struct tsv_table *t, const char *name, const struct tsv_options *o,
              const struct label_map *train, struct kd_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", fixture_dir, name);
    err->msg[0] = '\0';
    return tsv_read(t, path, o, train, err);
}

/* Expects failure with a message containing `want` (after the directory). */
static void expect_error(const char *name, const struct tsv_options *o,
                         const struct label_map *train, const char *want, const char *what)
{
    struct tsv_table t;
    struct kd_err err;
    int rc = rd(&t, name, o, train, &err);
    const char *msg = strstr(err.msg, name);
    int good = rc == -1 && msg && strstr(msg, want) && t.n_rows == 0 && t.rows == NULL;
    /* the first line of the message (a HINT may follow) */
    const char *shown = msg ? msg : err.msg;
    const char *nl = strchr(shown, '\n');
    ok(good, "%s: %.*s", what, nl ? (int)(nl - shown) : (int)strlen(shown), shown);
    if (!good)
        diag("wanted: ...%s", want);
    tsv_free(&t);
}

static void test_good_files(void)
{
    struct tsv_options o = single_opts();
    struct tsv_table t;
    struct kd_err err;

    if (!ok(rd(&t, "good_single.tsv", &o, NULL, &err) == 0, "good_single.tsv reads"))
        bail_out("%s", err.msg);
    ok(t.n_rows == 3 && t.n_columns == 2 && t.rows[2].line == 4,
       "3 rows, trailing empty lines ignored, line numbers kept");
    ok_str(t.rows[0].text_a, "it is a charming and often affecting journey . ",
           "text kept byte for byte, trailing space included");
    ok_str(t.rows[2].text_a, "the \"quoted\" word stays as it is ",
           "no quoting: double quotes are ordinary characters");
    ok(t.labels && t.labels[0] == 1 && t.labels[1] == 0 && t.labels[2] == 1 && !t.targets &&
       t.rows[0].text_b == NULL, "integer labels 1 0 1");
    ok(t.map.kind == LABEL_KIND_INDEX && t.map.num_labels == 2 &&
       !strcmp(t.map.names[0], "0") && !strcmp(t.map.names[1], "1"),
       "integer labels: K = max + 1 = 2, names \"0\" \"1\"");
    struct label_map int_map;
    label_map_copy(&int_map, &t.map);
    tsv_free(&t);

    if (!ok(rd(&t, "bom_crlf.tsv", &o, NULL, &err) == 0, "BOM + CRLF + no final newline"))
        bail_out("%s", err.msg);
    ok(t.n_rows == 3 && !strcmp(t.columns[0], "sentence") &&
       !strcmp(t.rows[0].text_a, "windows line endings ") &&
       !strcmp(t.rows[2].text_a, "no newline at the end ") && t.labels[2] == 1 &&
       t.rows[1].len_a == (int32_t)strlen("and a byte order mark "),
       "BOM stripped from the header, CR stripped from every line");
    tsv_free(&t);

    /* string labels: sorted, not first-seen */
    ok(rd(&t, "names_train.tsv", &o, NULL, &err) == 0, "string labels read");
    ok(t.map.kind == LABEL_KIND_NAME && t.map.num_labels == 2 &&
       !strcmp(t.map.names[0], "neg") && !strcmp(t.map.names[1], "pos") &&
       t.labels[0] == 1 && t.labels[1] == 0 && t.labels[2] == 1,
       "string labels get sorted ids (neg = 0, pos = 1) although pos comes first");
    struct label_map name_map;
    label_map_copy(&name_map, &t.map);
    tsv_free(&t);
    ok(rd(&t, "names_train.tsv", &o, &name_map, &err) == 0 && t.labels[0] == 1 &&
       t.labels[1] == 0 && t.map.kind == LABEL_KIND_NAME && t.map.num_labels == 2,
       "a dev file is read against the training mapping");
    tsv_free(&t);
    ok(label_map_find(&name_map, "pos", 3) == 1 && label_map_find(&name_map, "po", 2) == -1,
       "label_map_find");

    /* integer dev labels against a larger training range */
    o.num_labels = 0;
    ok(rd(&t, "int_range.tsv", &o, NULL, &err) == 0 && t.map.num_labels == 3,
       "integer labels 0..2 without num_labels: K = 3");
    struct label_map three;
    label_map_copy(&three, &t.map);
    tsv_free(&t);
    ok(rd(&t, "good_single.tsv", &o, &three, &err) == 0 && t.map.num_labels == 3,
       "dev labels 0/1 inside a 3-class training range");
    tsv_free(&t);

    /* regression */
    struct tsv_options r = single_opts();
    r.label = "score";
    r.problem = TSV_PROBLEM_REGRESSION;
    ok(rd(&t, "regression.tsv", &r, NULL, &err) == 0 && t.targets && !t.labels &&
       t.map.kind == LABEL_KIND_REGRESSION && t.map.num_labels == 1,
       "regression targets read");
    ok(t.n_rows == 3 && t.targets[0] == 3.8f && t.targets[1] == -0.01f && t.targets[2] == 5.0f,
       "targets 3.8 -0.01 5");
    tsv_free(&t);

    /* a pair task with string labels */
    struct tsv_options p = {.text_a = "sentence1", .text_b = "sentence2", .label = "label"};
    if (!ok(rd(&t, "pair.tsv", &p, NULL, &err) == 0, "pair file reads"))
        bail_out("%s", err.msg);
    ok(t.n_rows == 3 && !strcmp(t.rows[1].text_a, "the dog ran .") &&
       !strcmp(t.rows[1].text_b, "nothing moved .") && t.rows[1].len_b == 15 &&
       t.labels[0] == 0 && t.labels[1] == 1 && t.labels[2] == 0 &&
       !strcmp(t.map.names[1], "not_entailment"), "pair texts and labels");
    tsv_free(&t);

    /* a GLUE test file: no label column */
    o = single_opts();
    o.labels_optional = 1;
    ok(rd(&t, "test_nolabel.tsv", &o, &int_map, &err) == 0 && t.n_rows == 2 &&
       !t.labels && !t.targets && t.map.kind == LABEL_KIND_NONE &&
       !strcmp(t.rows[1].text_a, "another one "), "test file without labels (optional)");
    tsv_free(&t);
    o.labels_optional = 0;
    expect_error("test_nolabel.tsv", &o, &int_map,
                 "test_nolabel.tsv:1: expected a column 'label' (data.label) in the header, "
                 "got 2 columns: index, sentence", "label column required unless optional");

    /* label_map helpers */
    const char *names[] = {"b", "a"};
    struct label_map m, c;
    label_map_from_names(&m, names, 2);
    label_map_copy(&c, &m);
    label_map_free(&m);
    ok(c.kind == LABEL_KIND_NAME && c.num_labels == 2 && !strcmp(c.names[0], "b") &&
       label_map_find(&c, "a", 1) == 1, "label_map_from_names keeps the given order");
    label_map_free(&c);

    /* malformed cases that need a training map */
    expect_error("names_dev_unknown.tsv", &o, &name_map,
                 "names_dev_unknown.tsv:3: expected one of the training file's labels "
                 "(neg, pos) in column 'label', got 'neutral'", "unknown dev label");
    expect_error("int_range.tsv", &o, &int_map,
                 "int_range.tsv:3: expected an integer class label 0..1 (as in the training "
                 "file) in column 'label', got '2'", "dev integer label outside training K");
    label_map_free(&int_map);
    label_map_free(&name_map);
    label_map_free(&three);
}

static void test_malformed(void)
{
    struct tsv_options o = single_opts();
    expect_error("missing_column.tsv", &o, NULL,
                 "missing_column.tsv:1: expected a column 'sentence' (data.text_a) in the "
                 "header, got 2 columns: text, label", "missing text column");
    struct tsv_options ob = o;
    ob.text_b = "sentence2";
    expect_error("good_single.tsv", &ob, NULL,
                 "good_single.tsv:1: expected a column 'sentence2' (data.text_b) in the "
                 "header, got 2 columns: sentence, label", "missing text_b column");
    expect_error("duplicate_column.tsv", &o, NULL,
                 "duplicate_column.tsv:1: column 'label' (data.label) appears twice in the "
                 "header, as columns 2 and 3", "duplicate column");
    expect_error("field_count.tsv", &o, NULL,
                 "field_count.tsv:4: expected 2 TAB-separated fields (sentence, label), got "
                 "3 fields\nHINT: data.bad_rows = \"skip\"", "wrong field count with its line");
    expect_error("bad_int_label.tsv", &o, NULL,
                 "bad_int_label.tsv:4: expected an integer class label (the file's labels "
                 "are integers, from line 2) in column 'label', got 'pos'", "bad integer label");
    struct tsv_options o2 = o;
    o2.num_labels = 2;
    expect_error("int_range.tsv", &o2, NULL,
                 "int_range.tsv:3: expected an integer class label 0..1 (data.num_labels) in "
                 "column 'label', got '2'", "integer label above num_labels");
    o2.num_labels = 3;
    expect_error("names_train.tsv", &o2, NULL,
                 "names_train.tsv: expected 3 distinct labels (data.num_labels), got 2: neg, "
                 "pos", "string labels fewer than num_labels");
    struct tsv_options r = o;
    r.label = "score";
    r.problem = TSV_PROBLEM_REGRESSION;
    expect_error("regression_bad.tsv", &r, NULL,
                 "regression_bad.tsv:3: expected a finite number in column 'score' "
                 "(regression), got 'abc'", "bad float label (regression)");
    expect_error("invalid_utf8.tsv", &o, NULL,
                 "invalid_utf8.tsv:3: expected UTF-8 text, got a multi-byte sequence cut "
                 "short at byte 8 of the line (0xc3)", "invalid UTF-8 line");
    expect_error("nul_byte.tsv", &o, NULL,
                 "nul_byte.tsv:3: expected UTF-8 text, got a NUL byte at byte 5 of the line",
                 "NUL byte");
    expect_error("empty.tsv", &o, NULL,
                 "empty.tsv: expected a header row naming the columns (e.g. "
                 "sentence<TAB>label), got an empty file", "empty file");
    expect_error("header_only.tsv", &o, NULL,
                 "header_only.tsv: expected at least one data row after the header (line 1), "
                 "got none", "header only");
    expect_error("mixed_bad.tsv", &o, NULL,
                 "mixed_bad.tsv:3: expected 2 TAB-separated fields (sentence, label), got 3 "
                 "fields", "error mode stops at the first bad row");
    expect_error("no_such_file.tsv", &o, NULL, "no_such_file.tsv: cannot open: No such file",
                 "missing file");

    /* skip mode */
    struct tsv_table t;
    struct kd_err err;
    o.bad_rows = TSV_BAD_ROWS_SKIP;
    if (!ok(rd(&t, "mixed_bad.tsv", &o, NULL, &err) == 0, "skip mode reads mixed_bad.tsv"))
        bail_out("%s", err.msg);
    int64_t want_lines[] = {2, 4, 7, 9, 10, 12};
    int lines_ok = t.n_rows == 6;
    for (int i = 0; lines_ok && i < 6; i++)
        lines_ok = t.rows[i].line == want_lines[i] && t.labels[i] == (i == 0 || i == 2 || i == 4);
    ok(lines_ok, "skip mode keeps the 6 good rows (lines 2 4 7 9 10 12) with their labels");
    ok(t.n_skipped == 5 && t.n_skip_msgs == 5, "skip mode counts 5 skipped rows");
    const char *want[5] = {":3: expected 2 TAB-separated fields", ":5: expected an integer",
                           ":6: expected 2 TAB-separated fields (sentence, label), got an "
                           "empty line",
                           ":8: expected UTF-8 text, got an overlong encoding at byte 10",
                           ":11: expected 2 TAB-separated fields (sentence, label), got 1 "
                           "field (no TAB)"};
    for (int i = 0; i < 5 && i < t.n_skip_msgs; i++)
        ok(strstr(t.skip_msgs[i], want[i]) != NULL, "skip report %d: %s", i + 1,
           strstr(t.skip_msgs[i], "mixed_bad"));
    tsv_free(&t);

    /* every row bad in skip mode is still an error */
    char tmp[] = "/tmp/t_tsv_allbad.XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0)
        bail_out("mkstemp failed");
    const char body[] = "sentence\tlabel\nno tab\nstill no tab\n";
    if (write(fd, body, sizeof body - 1) != (ssize_t)(sizeof body - 1))
        bail_out("write failed");
    close(fd);
    int rc = tsv_read(&t, tmp, &o, NULL, &err);
    ok(rc == -1 && strstr(err.msg, "expected at least one well-formed data row, got 2 "
                          "malformed (skipped)"), "all rows skipped is an error: %s", err.msg);
    tsv_free(&t);
    unlink(tmp);
}

static void test_utf8(void)
{
    const char *what = NULL;
    const char valid[] = "ascii caf\xc3\xa9 \xe2\x82\xac \xf0\x9d\x84\x9e end of a longer line";
    ok(tsv_utf8_check(valid, sizeof valid - 1, &what) == -1, "valid 1-4 byte sequences pass");
    struct {
        const char *s;
        ptrdiff_t at;
        const char *what;
    } bad[] = {
        {"ab\x80", 2, "a continuation byte without a lead byte"},
        {"\xed\xa0\x80", 0, "an encoded UTF-16 surrogate"},
        {"x\xf4\x90\x80\x80", 1, "a code point above U+10FFFF"},
        {"\xe0\x80\x80", 0, "an overlong encoding"},
        {"\xc1\xbf", 0, "an overlong encoding"},
        {"0123456789\xe2\x82", 10, "a multi-byte sequence cut short"},
        {"\xff", 0, "a byte that never occurs in UTF-8"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ptrdiff_t at = tsv_utf8_check(bad[i].s, strlen(bad[i].s), &what);
        ok(at == bad[i].at && !strcmp(what, bad[i].what), "UTF-8 case %zu: %s at %td", i + 1,
           what, at);
    }
}

static void test_sst2(void)
{
    const char *shared = getenv("KD_SHARED");
    char train[4096], dev[4096];
    snprintf(train, sizeof train, "%s/data/glue/SST-2/train.tsv", shared ? shared : "");
    snprintf(dev, sizeof dev, "%s/data/glue/SST-2/dev.tsv", shared ? shared : "");
    if (!shared || access(train, R_OK) || access(dev, R_OK)) {
        skip(5, "SST-2 not found under $KD_SHARED/data/glue/SST-2");
        return;
    }
    struct tsv_options o = single_opts();
    struct tsv_table t, d;
    struct kd_err err;
    double best = 1e9;
    int rc = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = wall_seconds();
        rc |= tsv_read(&t, train, &o, NULL, &err);
        double dt = wall_seconds() - t0;
        best = dt < best ? dt : best;
        if (rep < 2)
            tsv_free(&t);
    }
    ok(rc == 0 && t.n_rows == 67349 && t.n_skipped == 0, "SST-2 train: %lld rows",
       (long long)t.n_rows);
    int64_t pos = 0, bytes = 0;
    for (int64_t i = 0; i < t.n_rows; i++)
        pos += t.labels[i], bytes += t.rows[i].len_a;
    ok(t.map.kind == LABEL_KIND_INDEX && t.map.num_labels == 2, "SST-2 labels 0/1");
    ok(best < 0.5, "SST-2 train parses in %.1f ms (best of 3; %.1f MB of text, %lld positive)",
       1e3 * best, (double)bytes / 1e6, (long long)pos);
    rc = tsv_read(&d, dev, &o, &t.map, &err);
    ok(rc == 0 && d.n_rows == 872, "SST-2 dev: %lld rows, read against the train mapping",
       (long long)d.n_rows);
    int64_t dpos = 0;
    for (int64_t i = 0; i < d.n_rows; i++)
        dpos += d.labels[i];
    ok(dpos == 444, "SST-2 dev: %lld positive (want 444)", (long long)dpos);
    tsv_free(&t);
    tsv_free(&d);
}

int main(void)
{
    log_init(0, 1);
    log_set_level(LOG_LEVEL_ERROR); /* skip-mode warnings are checked, not printed */
    find_fixtures();
    test_good_files();
    test_malformed();
    test_utf8();
    test_sst2();
    return done_testing();
}
