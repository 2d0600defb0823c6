/* atomic_file.h: files that are either complete or absent (core layer).
 * A file is written under "<path>.tmp.<pid>" and renamed over <path> only
 * when complete and flushed, so an interrupted job never leaves a file that
 * looks finished. */
#ifndef KD_CORE_ATOMIC_FILE_H
#define KD_CORE_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

struct fs_atomic {
    FILE *f;
    char *path;     /* final name */
    char *tmp_path; /* name while being written */
};

int fs_atomic_open(struct fs_atomic *a, const char *path, char *err, size_t errlen);
/* Flushes, fsyncs, closes and renames; on any failure removes the temp file. */
int fs_atomic_commit(struct fs_atomic *a, char *err, size_t errlen);
/* Abandons the file: closes and removes the temp file. */
void fs_atomic_abort(struct fs_atomic *a);

/* mkdir -p; 0 on success (also if it exists as a directory). */
int fs_mkdir_p(const char *path, char *err, size_t errlen);
int fs_is_dir(const char *path);

#endif
