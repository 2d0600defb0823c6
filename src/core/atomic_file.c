/* atomic_file.c: write-to-temp-then-rename files and directory helpers. */
#include "kd/core/atomic_file.h"
#include "kd/core/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_atomic_open(struct fs_atomic *a, const char *path, char *err, size_t errlen)
{
    size_t n = strlen(path) + 32;
    a->path = kd_strdup(path);
    a->tmp_path = kd_malloc(n);
    snprintf(a->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    a->f = fopen(a->tmp_path, "w");
    if (!a->f) {
        snprintf(err, errlen, "%s: cannot create: %s", a->tmp_path, strerror(errno));
        free(a->path);
        free(a->tmp_path);
        a->path = a->tmp_path = NULL;
        return -1;
    }
    return 0;
}

static void release(struct fs_atomic *a)
{
    free(a->path);
    free(a->tmp_path);
    a->path = a->tmp_path = NULL;
    a->f = NULL;
}

int fs_atomic_commit(struct fs_atomic *a, char *err, size_t errlen)
{
    int bad = ferror(a->f) || fflush(a->f) != 0 || fsync(fileno(a->f)) != 0;
    int saved = errno;
    if (fclose(a->f) != 0 && !bad) {
        bad = 1;
        saved = errno;
    }
    if (!bad && rename(a->tmp_path, a->path) != 0) {
        bad = 1;
        saved = errno;
    }
    if (bad) {
        snprintf(err, errlen, "%s: cannot write: %s", a->path, strerror(saved));
        remove(a->tmp_path);
    }
    release(a);
    return bad ? -1 : 0;
}

void fs_atomic_abort(struct fs_atomic *a)
{
    if (a->f)
        fclose(a->f);
    if (a->tmp_path)
        remove(a->tmp_path);
    release(a);
}

int fs_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int fs_mkdir_p(const char *path, char *err, size_t errlen)
{
    char *p = kd_strdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "%s: cannot create directory: %s", p, strerror(errno));
            rc = -1;
            break;
        }
        *s = c;
        if (!c)
            break;
    }
    if (rc == 0 && !fs_is_dir(path)) {
        snprintf(err, errlen, "%s: exists and is not a directory", path);
        rc = -1;
    }
    free(p);
    return rc;
}
