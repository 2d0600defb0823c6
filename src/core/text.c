/* text.c: printf-style appends to a growing string (see text.h). */
#include "kd/core/text.h"
#include "kd/core/error.h"

#include <stdarg.h>
#include <stdio.h>

void kd_text_add(struct kd_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    KD_ASSERT(k >= 0, "vsnprintf failed");
    if (t->len + (size_t)k + 1 > t->cap) {
        /* doubling keeps a long run of small appends linear */
        t->cap = (t->len + (size_t)k + 1) * 2;
        t->buf = kd_realloc(t->buf, t->cap);
    }
    va_start(ap, fmt);
    vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)k;
}
