/* fsutil.c: whole-file reads, one-call atomic writes (on top of
 * atomic_file.c) and SHA-256 of files (core layer; no MPI, no HDF5). The
 * digest goes through OpenSSL's EVP interface: we never carry our own hash
 * implementation. */
#include "kd/core/fsutil.h"
#include "kd/core/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/evp.h>

int fs_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* No normalisation ("a//b", "./x" stay as given): paths end up in messages
 * and should read as the user wrote them. */
char *fs_path_join(const char *dir, const char *name)
{
    size_t nd = strlen(dir), nn = strlen(name);
    if (nd == 0)
        return kd_strdup(name);
    int slash = dir[nd - 1] != '/';
    char *out = kd_malloc(nd + (size_t)slash + nn + 1);
    memcpy(out, dir, nd);
    if (slash)
        out[nd] = '/';
    memcpy(out + nd + (size_t)slash, name, nn + 1);
    return out;
}

/* fstat gives the size up front, so one allocation suffices; the read loop
 * still handles short reads and EINTR. A file that shrinks while being read
 * is an error rather than a silently short buffer. */
int fs_file_read(const char *path, char **data, size_t *len, struct kd_err *err)
{
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kd_errf(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return kd_errf(err, "%s: expected a regular file", path);
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *buf = kd_malloc(size + 1);
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = errno;
            kd_errf(err, "%s: read failed after %zu of %zu bytes: %s", path, got, size,
                    r == 0 ? "unexpected end of file" : strerror(e));
            free(buf);
            close(fd);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    buf[size] = '\0';
    *data = buf;
    *len = size;
    return 0;
}

/* atomic_file.c reports into a char buffer; this wrapper carries its text
 * over into struct kd_err so model-layer callers have one error type. */
int fs_file_write_atomic(const char *path, const void *data, size_t len, struct kd_err *err)
{
    struct fs_atomic a;
    char msg[512];
    if (fs_atomic_open(&a, path, msg, sizeof msg) != 0)
        return kd_errf(err, "%s", msg);
    if (len > 0 && fwrite(data, 1, len, a.f) != len) {
        int e = errno;
        fs_atomic_abort(&a);
        return kd_errf(err, "%s: write failed: %s", path, strerror(e));
    }
    if (fs_atomic_commit(&a, msg, sizeof msg) != 0)
        return kd_errf(err, "%s", msg);
    return 0;
}

/* Lower-case hex of a digest, as sha256sum prints it (the manifest compares
 * these strings). */
static void digest_to_hex(const unsigned char *md, unsigned n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[2 * n] = '\0';
}

int fs_buffer_sha256(const void *data, size_t len, char hex[FS_SHA256_HEX_LEN],
                     struct kd_err *err)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return kd_errf(err, "sha256: OpenSSL EVP_Digest failed");
    digest_to_hex(md, n, hex);
    return 0;
}

/* Streams the file through EVP in 1 MiB chunks: constant memory for
 * checkpoints and teacher stores of any size. One cleanup label frees the
 * context, buffer and descriptor on every path. */
int fs_file_sha256(const char *path, char hex[FS_SHA256_HEX_LEN], struct kd_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return kd_errf(err, "%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = -1;
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = kd_malloc(CHUNK);
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        kd_errf(err, "%s: sha256: OpenSSL digest initialisation failed", path);
        goto done;
    }
    for (;;) {
        ssize_t r = read(fd, buf, CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            kd_errf(err, "%s: read failed: %s", path, strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        if (EVP_DigestUpdate(ctx, buf, (size_t)r) != 1) {
            kd_errf(err, "%s: sha256: OpenSSL digest update failed", path);
            goto done;
        }
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(ctx, md, &n) != 1 || n != 32) {
        kd_errf(err, "%s: sha256: OpenSSL digest finalisation failed", path);
        goto done;
    }
    digest_to_hex(md, n, hex);
    rc = 0;
done:
    free(buf);
    EVP_MD_CTX_free(ctx);
    close(fd);
    return rc;
}
