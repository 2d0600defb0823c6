/* ckpt_util.c: see ckpt_util.h. */
#include "ckpt_util.h"
#include "../tap.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef KD_TOP_SRCDIR
#define KD_TOP_SRCDIR "."
#endif

char *ckpt_srcpath(const char *rel)
{
    const char *top = getenv("KD_SRCDIR");
    if (!top || !*top)
        top = KD_TOP_SRCDIR;
    size_t n = strlen(top) + strlen(rel) + 2;
    char *p = kd_malloc(n);
    snprintf(p, n, "%s/%s", top, rel);
    return p;
}

char *ckpt_fixture(const char *rel)
{
    size_t n = strlen(rel) + 64;
    char *r = kd_malloc(n);
    snprintf(r, n, "tests/fixtures/checkpoint/%s", rel);
    char *p = ckpt_srcpath(r);
    free(r);
    return p;
}

char *ckpt_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    size_t n = strlen(base) + 32;
    char *p = kd_malloc(n);
    snprintf(p, n, "%s/kd_ckpt_XXXXXX", base);
    if (!mkdtemp(p))
        bail_out("cannot create a temporary directory under %s", base);
    return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void ckpt_rmtree(const char *dir)
{
    if (dir)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *ckpt_write_bytes(const char *dir, const char *name, const void *data, size_t len)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = kd_malloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
        bail_out("cannot write %s", p);
    return p;
}

float ckpt_formula(const char *canonical, int64_t i)
{
    unsigned sum = 0;
    for (const unsigned char *c = (const unsigned char *)canonical; *c; c++)
        sum += *c;
    int64_t seed = sum % 101;
    return (float)((((i * 37 + seed * 11) % 101) - 50)) / 64.0f;
}

int ok_err(int rc, const struct kd_err *err, const char *what, ...)
{
    va_list ap;
    va_start(ap, what);
    int good = rc == -1;
    const char *missing = NULL;
    for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
        if (good && !strstr(err->msg, s)) {
            good = 0;
            missing = s;
        }
    va_end(ap);
    ok(good, "%s", what);
    if (good && getenv("KD_SHOW_ERRORS"))
        diag("%s", err->msg);
    if (!good) {
        diag("rc %d, message: %s", rc, rc == -1 ? err->msg : "(none)");
        if (missing)
            diag("missing substring: %s", missing);
    }
    return good;
}
