/* t_tokenizer_vocab.c: reading vocab.txt. Line ends (LF, CRLF, CR, none at
 * the end), lookups in both directions, a vocabulary large enough to grow
 * the hash tables, and the user errors: missing file, empty file, empty
 * line, duplicate token, invalid UTF-8, missing special tokens. Each error
 * must name the file (and line) in "expected ... got ..." form. */
#include "kd/model/tokenizer.h"
#include "t_tokenizer_cases.h"
#include "../tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[512];

/* Writes `size` bytes to <tmpdir>/<name>; returns the path (static buffer). */
static const char *write_vocab(const char *name, const char *bytes, size_t size)
{
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, size, f) != size || fclose(f))
        bail_out("cannot write %s", path);
    return path;
}

#define SPECIALS "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n"

/* Loads a vocabulary that must fail; checks that the message holds every
 * string of `want` (NULL-terminated list). */
static void expect_error(const char *what, const char *path, const char *const *want)
{
    tokenizer_t *tok = (tokenizer_t *)1;
    struct kd_err err = {{0}};
    int rc = tokenizer_load(&tok, path, 1, &err);
    int has_all = 1;
    for (const char *const *w = want; *w; w++)
        if (!strstr(err.msg, *w))
            has_all = 0;
    ok(rc == -1 && tok == NULL && has_all, "%s is an error: %s", what, err.msg);
    if (rc == 0)
        tokenizer_free(tok);
}

static void check_errors(void)
{
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no-such-vocab.txt", tmpdir);
    expect_error("a missing file", missing,
                 (const char *const[]){"no-such-vocab.txt", "cannot open", NULL});

    expect_error("an empty file", write_vocab("empty.txt", "", 0),
                 (const char *const[]){"empty.txt", "expected one token per line",
                                       "got an empty file", NULL});

    const char dup[] = SPECIALS "foo\nbar\nfoo\n";
    expect_error("a duplicate token", write_vocab("dup.txt", dup, sizeof dup - 1),
                 (const char *const[]){"dup.txt:8:", "expected each token once",
                                       "got 'foo' again (first on line 6)", NULL});

    const char blank[] = SPECIALS "foo\n\nbar\n";
    expect_error("an empty line", write_vocab("blank.txt", blank, sizeof blank - 1),
                 (const char *const[]){"blank.txt:7:", "got an empty line", NULL});

    const char bad[] = SPECIALS "ok\nb\xc3(d\n";
    expect_error("invalid UTF-8", write_vocab("utf8.txt", bad, sizeof bad - 1),
                 (const char *const[]){"utf8.txt:7:", "expected UTF-8",
                                       "invalid byte 0xc3", NULL});

    const char surrogate[] = SPECIALS "\xed\xa0\x80\n";
    expect_error("an encoded surrogate", write_vocab("surr.txt", surrogate,
                                                     sizeof surrogate - 1),
                 (const char *const[]){"surr.txt:6:", "expected UTF-8", NULL});

    const char no_unk[] = "[PAD]\n[CLS]\n[SEP]\n[MASK]\nfoo\n";
    expect_error("a vocabulary without [UNK]", write_vocab("nounk.txt", no_unk,
                                                           sizeof no_unk - 1),
                 (const char *const[]){"nounk.txt", "expected the special token [UNK]",
                                       "HINT", NULL});
    const char no_cls[] = "[PAD]\n[UNK]\n[SEP]\n";
    expect_error("a vocabulary without [CLS]", write_vocab("nocls.txt", no_cls,
                                                           sizeof no_cls - 1),
                 (const char *const[]){"nocls.txt", "[CLS]", NULL});
    const char no_sep[] = "[PAD]\n[UNK]\n[CLS]\n";
    expect_error("a vocabulary without [SEP]", write_vocab("nosep.txt", no_sep,
                                                           sizeof no_sep - 1),
                 (const char *const[]){"nosep.txt", "[SEP]", NULL});
    const char no_pad[] = "[UNK]\n[CLS]\n[SEP]\n";
    expect_error("a vocabulary without [PAD]", write_vocab("nopad.txt", no_pad,
                                                           sizeof no_pad - 1),
                 (const char *const[]){"nopad.txt", "[PAD]", NULL});
}

/* CRLF, a lone CR and no final newline; [MASK] is optional. */
static void check_line_ends(void)
{
    const char crlf[] = "[UNK]\r\n[PAD]\r\n[CLS]\r[SEP]\r\nab\r\n##c\r\nfin";
    const char *path = write_vocab("crlf.txt", crlf, sizeof crlf - 1);
    tokenizer_t *tok;
    struct kd_err err;
    int rc = tokenizer_load(&tok, path, 1, &err);
    ok(rc == 0, "CRLF/CR line ends and no final newline load (%s)", rc ? err.msg : "ok");
    if (rc)
        return;
    ok(tokenizer_vocab_size(tok) == 7, "7 tokens (got %ld)", (long)tokenizer_vocab_size(tok));
    ok(tokenizer_special_id(tok, TOKENIZER_SPECIAL_UNK) == 0 &&
       tokenizer_special_id(tok, TOKENIZER_SPECIAL_PAD) == 1 &&
       tokenizer_special_id(tok, TOKENIZER_SPECIAL_CLS) == 2 &&
       tokenizer_special_id(tok, TOKENIZER_SPECIAL_SEP) == 3 &&
       tokenizer_special_id(tok, TOKENIZER_SPECIAL_MASK) == -1,
       "special ids come from the file; [MASK] is absent (-1)");
    ok_str(tokenizer_id_to_token(tok, 6), "fin", "the last line without newline is a token");
    ok(tokenizer_token_to_id(tok, "ab") == 4 && tokenizer_token_to_id(tok, "##c") == 5 &&
       tokenizer_token_to_id(tok, "ab\r") == -1, "no CR is left in the tokens");
    int32_t ids[8];
    int64_t n = tokenizer_encode(tok, "abc [MASK]", 10, NULL, 0, 8, ids, NULL, NULL, &err);
    /* "[MASK]" is plain text here: "[" "mask" "]" are not in the vocabulary */
    ok(n == 7 && ids[1] == 4 && ids[2] == 5 && ids[3] == 0 && ids[4] == 0 && ids[5] == 0,
       "without [MASK] in the vocabulary, [MASK] in the text is plain text");
    tokenizer_free(tok);
}

/* Every token of the fixture vocabulary maps to its line and back. */
static void check_roundtrip(void)
{
    char *path = tcase_fixture("vocab_cased.txt");
    size_t size;
    char *text = tcase_slurp(path, &size);
    if (!text)
        bail_out("cannot read %s", path);
    tokenizer_t *tok;
    struct kd_err err;
    if (tokenizer_load(&tok, path, 0, &err))
        bail_out("%s", err.msg);
    int32_t line = 0, bad = 0;
    char *save = NULL;
    for (char *t = strtok_r(text, "\n", &save); t; t = strtok_r(NULL, "\n", &save), line++) {
        if (tokenizer_token_to_id(tok, t) != line || strcmp(tokenizer_id_to_token(tok, line), t))
            bad++;
    }
    ok(bad == 0 && line == tokenizer_vocab_size(tok),
       "all %ld tokens of vocab_cased.txt map to their line and back", (long)line);
    ok(tokenizer_id_to_token(tok, -1) == NULL && tokenizer_id_to_token(tok, line) == NULL,
       "ids outside [0, V) have no token");
    ok(tokenizer_token_to_id(tok, "not-a-token") == -1 && tokenizer_token_to_id(tok, "") == -1,
       "unknown strings have no id");
    ok(tokenizer_special_id(tok, (enum tokenizer_special)7) == -1, "bad special index gives -1");
    tokenizer_free(tok);
    free(text);
    free(path);
}

/* 60k tokens: the hash tables grow past their first sizes. */
static void check_large(void)
{
    const int n = 60000;
    size_t cap = (size_t)n * 16 + 64, k = 0;
    char *buf = malloc(cap);
    k += (size_t)snprintf(buf + k, cap - k, SPECIALS);
    for (int i = 5; i < n; i++)
        k += (size_t)snprintf(buf + k, cap - k, (i % 2) ? "w%d\n" : "##p%d\n", i);
    const char *path = write_vocab("large.txt", buf, k);
    tokenizer_t *tok;
    struct kd_err err;
    int rc = tokenizer_load(&tok, path, 1, &err);
    int bad = rc != 0;
    for (int i = 5; i < n && !bad; i++) {
        char t[32];
        snprintf(t, sizeof t, (i % 2) ? "w%d" : "##p%d", i);
        bad = tokenizer_token_to_id(tok, t) != i;
    }
    ok(!bad && tokenizer_vocab_size(tok) == n, "a %d-token vocabulary looks up every token", n);
    /* "w7p8" -> "w7" "##p8": the continuation table works at this size */
    struct tokenizer_ids ids = {0};
    if (!rc)
        tokenizer_tokenize(tok, "w7p8", 4, &ids);
    ok(ids.n == 2 && ids.ids[0] == 7 && ids.ids[1] == 8, "WordPiece uses ## pieces of it");
    tokenizer_ids_free(&ids);
    if (!rc)
        tokenizer_free(tok);
    free(buf);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/t_tokenizer_vocab.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir))
        bail_out("mkdtemp %s failed", tmpdir);
    check_errors();
    check_line_ends();
    check_roundtrip();
    check_large();
    /* remove what we wrote */
    const char *files[] = {"empty.txt", "dup.txt", "blank.txt", "utf8.txt", "surr.txt",
                           "nounk.txt", "nocls.txt", "nosep.txt", "nopad.txt", "crlf.txt",
                           "large.txt"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", tmpdir, files[i]);
        unlink(p);
    }
    rmdir(tmpdir);
    return done_testing();
}
