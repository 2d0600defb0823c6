/* arena.c: mmap'd bump allocator (core layer). See arena.h. */
#include "kd/core/arena.h"
#include "kd/core/error.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

/* Every request starts on a line boundary: no false sharing between
 * tensors and aligned vector loads at every tensor's start. */
size_t arena_round(size_t bytes)
{
    return (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
}

void arena_init(struct arena *a, const char *name, size_t bytes)
{
    a->name = name;
    a->base = NULL;
    a->size = 0;
    a->used = 0;
    if (bytes == 0)
        return;
    /* anonymous private mapping: zero-filled, page aligned, and only the
     * pages actually written become resident */
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        KD_FATAL("cannot map the %s arena: %zu bytes (%.1f MiB): %s", name, bytes,
                 (double)bytes / (1024.0 * 1024.0), strerror(errno));
    a->base = p;
    a->size = bytes;
}

void arena_free(struct arena *a)
{
    if (a->base)
        munmap(a->base, a->size);
    a->base = NULL;
    a->size = 0;
    a->used = 0;
}

/* The model computes its sizes with arena_round in exactly this order
 * before mapping, so in practice overflow means a sizing bug: fatal. */
void *arena_alloc(struct arena *a, size_t bytes)
{
    size_t start = arena_round(a->used);
    if (start > a->size || bytes > a->size - start)
        KD_FATAL("%s arena overflow: %zu bytes needed at offset %zu, %zu available "
                 "(block of %zu bytes)",
                 a->name ? a->name : "?", bytes, start,
                 start > a->size ? (size_t)0 : a->size - start, a->size);
    a->used = start + bytes;
    return a->base ? a->base + start : NULL;
}

/* Only the part handed out: the tail of the last page stays untouched. */
void arena_zero(struct arena *a)
{
    if (a->base && a->used)
        memset(a->base, 0, a->used);
}
