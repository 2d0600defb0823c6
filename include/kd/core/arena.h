/* arena.h: one aligned memory block per lifetime class (core layer; knows
 * nothing of models, MPI or HDF5).
 *
 * The model layer sizes each block from a size table before anything is
 * allocated (STYLE.md principle 1), so the same numbers drive `--dry-run`'s
 * memory estimate and the real allocation. The arena is then a bump
 * allocator over that one block:
 *
 *   arena_init(&a, "activations", bytes)   one mmap'd block, zero-filled
 *   p = arena_alloc(&a, n)                 ARENA_ALIGN-aligned bump
 *   arena_free(&a)                         unmaps the block
 *
 * Why mmap: anonymous pages are zero without being touched, so a block that
 * must start at zero (gradients, Adam moments) costs no pass over memory,
 * and pages never used (a batch smaller than the maximum) never count
 * towards the resident set. Running past the end is an internal error that
 * names the block, the bytes asked for and the bytes left. */
#ifndef KD_CORE_ARENA_H
#define KD_CORE_ARENA_H

#include <stddef.h>

/* Alignment of every allocation: one cache line, which is also a full
 * AVX-512 vector. */
#define ARENA_ALIGN ((size_t)64)

struct arena {
    const char *name; /* for messages, e.g. "parameters" (borrowed) */
    char *base;       /* start of the block, page aligned; NULL if empty */
    size_t size;      /* bytes in the block */
    size_t used;      /* bytes handed out so far (the high-water mark) */
};

/* Rounds bytes up to a multiple of ARENA_ALIGN. */
size_t arena_round(size_t bytes);

/* Maps a zero-filled block of `bytes` (0 is allowed: an empty arena).
 * Failure to map is fatal with the size and the OS error: a job that does
 * not fit must stop at start-up, not in the middle of a step. */
void arena_init(struct arena *a, const char *name, size_t bytes);

/* Releases the block; the struct is left empty (safe to free twice). */
void arena_free(struct arena *a);

/* Next `bytes` of the block, aligned to ARENA_ALIGN. A zero-size request
 * returns the current (aligned) position, NULL in an empty arena; such a
 * pointer is valid for zero-length loops only. Overflow is fatal, naming
 * the arena, the request and what is left. */
void *arena_alloc(struct arena *a, size_t bytes);

/* Fills the first `used` bytes with zeros (e.g. gradients before a step). */
void arena_zero(struct arena *a);

#endif
