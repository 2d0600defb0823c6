/* text.h: a growing NUL-terminated string built by printf-style appends
 * (core layer), for canonical texts that are hashed or compared (stage
 * configurations, fingerprints).
 *   struct kd_text t = {0};
 *   kd_text_add(&t, "%s = %d\n", key, value);   ... as often as needed
 *   use t.buf (t.len bytes), then free(t.buf)
 * Out of memory aborts (kd_realloc), so an append cannot fail. */
#ifndef KD_CORE_TEXT_H
#define KD_CORE_TEXT_H

#include <stddef.h>

struct kd_text {
    char *buf;  /* NULL until the first append; then always NUL-terminated */
    size_t len; /* bytes before the NUL */
    size_t cap;
};

void kd_text_add(struct kd_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
