/* fsutil.h: whole-file reads, whole-buffer atomic writes, path joining and
 * SHA-256 of files (core layer; knows nothing of MPI, HDF5 or models).
 *
 * Atomic writing itself (temp name "<path>.tmp.<pid>", fsync, rename) lives
 * in atomic_file.h; fs_file_write_atomic is the one-call form of it for
 * callers that hold the whole content in memory and report through struct
 * kd_err. Every function returns 0 on success or -1 with a message in *err
 * naming the path and the failing operation (strerror text). */
#ifndef KD_CORE_FSUTIL_H
#define KD_CORE_FSUTIL_H

#include <stddef.h>

#include "kd/core/error.h"

/* Length of a SHA-256 digest as lower-case hex, plus the terminating NUL. */
#define FS_SHA256_HEX_LEN 65

/* 1 if `path` exists and is a regular file (after symlinks), else 0. */
int fs_file_exists(const char *path);

/* Joins a directory and a name with one '/': returns a new string (free()).
 * An empty dir yields a copy of name. */
char *fs_path_join(const char *dir, const char *name);

/* Reads a whole regular file into a new buffer (free() it) that carries one
 * extra NUL byte after the content, so text can be parsed in place.
 * *len receives the content length (without the NUL). */
int fs_file_read(const char *path, char **data, size_t *len, struct kd_err *err);

/* Writes a whole buffer to path through a temporary name and a rename, so
 * path holds either its old content or all of the new one. */
int fs_file_write_atomic(const char *path, const void *data, size_t len,
                         struct kd_err *err);

/* SHA-256 of a file's content through OpenSSL's EVP interface, as 64
 * lower-case hex digits + NUL in hex (FS_SHA256_HEX_LEN bytes). */
int fs_file_sha256(const char *path, char hex[FS_SHA256_HEX_LEN], struct kd_err *err);

/* SHA-256 of a memory buffer, same output form. */
int fs_buffer_sha256(const void *data, size_t len, char hex[FS_SHA256_HEX_LEN],
                     struct kd_err *err);

#endif
