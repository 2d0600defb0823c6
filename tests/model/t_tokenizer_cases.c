/* t_tokenizer_cases.c: see t_tokenizer_cases.h. */
#include "t_tokenizer_cases.h"

#include "../tap.h"
#include "kd/core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

char *tcase_slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = kd_malloc(cap + 1);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = kd_realloc(buf, cap + 1);
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (size)
        *size = n;
    return buf;
}

char *tcase_fixture(const char *name)
{
    const char *top = getenv("KD_SRCDIR");
    if (!top || !*top)
        top = "."; /* run by hand from the repository root */
    size_t n = strlen(top) + strlen(name) + 32;
    char *p = kd_malloc(n);
    snprintf(p, n, "%s/tests/fixtures/tokenizer/%s", top, name);
    return p;
}

static int hex_value(const char *s, int digits, long *out)
{
    long v = 0;
    for (int i = 0; i < digits; i++) {
        char c = s[i];
        int d = (c >= '0' && c <= '9') ? c - '0'
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10
              : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

size_t tcase_unescape(char *s)
{
    char *out = s;
    const char *in = s;
    while (*in) {
        if (*in != '\\') {
            *out++ = *in++;
            continue;
        }
        in++;
        switch (*in) {
        case '\\': *out++ = '\\'; in++; break;
        case 't': *out++ = '\t'; in++; break;
        case 'n': *out++ = '\n'; in++; break;
        case 'r': *out++ = '\r'; in++; break;
        case 'u':
        case 'U': {
            int digits = *in == 'u' ? 4 : 8;
            long cp;
            if (strlen(in + 1) < (size_t)digits || hex_value(in + 1, digits, &cp) ||
                !utf8proc_codepoint_valid((utf8proc_int32_t)cp))
                return (size_t)-1;
            out += utf8proc_encode_char((utf8proc_int32_t)cp, (utf8proc_uint8_t *)out);
            in += 1 + digits; /* UTF-8 is never longer than the escape */
            break;
        }
        default:
            return (size_t)-1;
        }
    }
    *out = '\0';
    return (size_t)(out - s);
}

/* Splits line at tabs in place into at most max fields; returns the count. */
static int split_tabs(char *line, char **fields, int max)
{
    int n = 0;
    fields[n++] = line;
    for (char *p = line; *p && n < max; p++) {
        if (*p == '\t') {
            *p = '\0';
            fields[n++] = p + 1;
        }
    }
    return n;
}

/* Parses exactly n space-separated integers. */
static int32_t *parse_ints(const char *s, size_t n, int line, const char *path)
{
    int32_t *v = kd_malloc((n ? n : 1) * sizeof *v);
    char *end;
    for (size_t i = 0; i < n; i++) {
        long x = strtol(s, &end, 10);
        if (end == s)
            bail_out("%s:%d: expected %zu integers, got %zu", path, line, n, i);
        v[i] = (int32_t)x;
        s = end;
    }
    while (*s == ' ')
        s++;
    if (*s)
        bail_out("%s:%d: expected %zu integers, got more", path, line, n);
    return v;
}

size_t tcase_read(const char *path, struct tcase **cases)
{
    char *text = tcase_slurp(path, NULL);
    if (!text)
        bail_out("cannot read the fixture %s (regenerate with "
                 "tests/gen/make_tokenizer_cases.py)", path);
    size_t n = 0, cap = 64;
    struct tcase *cs = kd_malloc(cap * sizeof *cs);
    int line = 0;
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        line++; /* strtok_r skips empty lines; the generator writes none */
        if (l[0] == '#')
            continue;
        char *f[10];
        if (split_tabs(l, f, 10) != 10)
            bail_out("%s:%d: expected 10 tab-separated fields", path, line);
        if (n == cap) {
            cap *= 2;
            cs = kd_realloc(cs, cap * sizeof *cs);
        }
        struct tcase *c = &cs[n++];
        memset(c, 0, sizeof *c);
        c->line = line;
        c->name = kd_strdup(f[0]);
        c->vocab = kd_strdup(f[1]);
        c->max_len = strtoll(f[2], NULL, 10);
        c->pair = strcmp(f[3], "pair") == 0;
        c->a = kd_strdup(f[4]);
        c->b = kd_strdup(f[5]);
        c->a_len = tcase_unescape(c->a);
        c->b_len = tcase_unescape(c->b);
        if (c->a_len == (size_t)-1 || c->b_len == (size_t)-1 || c->max_len <= 0)
            bail_out("%s:%d: bad text escape or max_len", path, line);
        c->ids = parse_ints(f[6], (size_t)c->max_len, line, path);
        c->types = parse_ints(f[7], (size_t)c->max_len, line, path);
        c->mask = parse_ints(f[8], (size_t)c->max_len, line, path);
        c->tokens = kd_strdup(f[9]);
        if (tcase_unescape(c->tokens) == (size_t)-1)
            bail_out("%s:%d: bad escape in tokens", path, line);
    }
    free(text);
    *cases = cs;
    return n;
}

void tcase_free(struct tcase *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct tcase *c = &cases[i];
        free(c->name);
        free(c->vocab);
        free(c->a);
        free(c->b);
        free(c->ids);
        free(c->types);
        free(c->mask);
        free(c->tokens);
    }
    free(cases);
}

/* Prints an int array as a diagnostic line. */
static void diag_ints(const char *what, const int32_t *v, size_t n)
{
    size_t cap = 16 * n + 1, k = 0;
    char *s = kd_malloc(cap);
    s[0] = '\0';
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(s + k, cap - k, "%s%ld", i ? " " : "", (long)v[i]);
    diag("%s: %s", what, s);
    free(s);
}

int tcase_check(tokenizer_t *tok, const struct tcase *c)
{
    size_t t = (size_t)c->max_len;
    int32_t *ids = kd_malloc(t * sizeof *ids);
    int32_t *types = kd_malloc(t * sizeof *types);
    int32_t *mask = kd_malloc(t * sizeof *mask);
    struct kd_err err = {{0}};
    int64_t real = tokenizer_encode(tok, c->a, c->a_len, c->pair ? c->b : NULL, c->b_len,
                                    c->max_len, ids, types, mask, &err);
    int64_t want_real = 0;
    for (size_t i = 0; i < t; i++)
        want_real += c->mask[i];
    char got_tokens[8192] = "";
    if (real >= 0)
        tokenizer_ids_format(tok, ids, (size_t)real, got_tokens, sizeof got_tokens);
    int same = real == want_real && memcmp(ids, c->ids, t * sizeof *ids) == 0 &&
               memcmp(types, c->types, t * sizeof *types) == 0 &&
               memcmp(mask, c->mask, t * sizeof *mask) == 0 &&
               strcmp(got_tokens, c->tokens) == 0;
    ok(same, "%s (%s, line %d): %s, max_len %lld", c->name, c->vocab, c->line,
       c->pair ? "pair" : "single", (long long)c->max_len);
    if (!same) {
        if (real < 0)
            diag("error: %s", err.msg);
        diag("real length: got %lld, want %lld", (long long)real, (long long)want_real);
        diag("got tokens:  %s", got_tokens);
        diag("want tokens: %s", c->tokens);
        diag_ints("got ids   ", ids, t);
        diag_ints("want ids  ", c->ids, t);
        diag_ints("got types ", types, t);
        diag_ints("want types", c->types, t);
    }
    free(ids);
    free(types);
    free(mask);
    return same;
}
