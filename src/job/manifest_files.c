/* manifest_files.c: the lists of files a stage declares (struct
 * stage_files, kd/job/stage.h) and their conversion into manifest records
 * (job layer). */
#include "kd/job/manifest.h"
#include "kd/job/stage.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void add(struct stage_files *l, const char *name, int user)
{
    KD_ASSERT(name && name[0], "a stage declared a file with an empty name");
    for (int i = 0; i < l->n; i++)
        if (l->v[i].user == user && strcmp(l->v[i].name, name) == 0)
            return; /* declared twice: once is enough */
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->v = kd_realloc(l->v, (size_t)l->cap * sizeof *l->v);
    }
    l->v[l->n].name = kd_strdup(name);
    l->v[l->n].user = user;
    l->n++;
}

void stage_files_add(struct stage_files *l, const char *name) { add(l, name, 0); }

void stage_files_add_user(struct stage_files *l, const char *path) { add(l, path, 1); }

static int is_regular(const char *path)
{
    return fs_file_exists(path);
}

/* scandir's alphasort depends on the locale; byte order is the same on
 * every machine, so the fingerprint is too. */
static int by_bytes(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int stage_files_add_user_dir(struct stage_files *l, const char *dir, struct kd_err *err)
{
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, by_bytes);
    if (n < 0)
        return kd_errf(err, "%s: cannot list the directory: %s", dir, strerror(errno));
    for (int i = 0; i < n; i++) {
        if (list[i]->d_name[0] != '.') {
            char *p = fs_path_join(dir, list[i]->d_name);
            if (is_regular(p))
                add(l, p, 1);
            free(p);
        }
        free(list[i]);
    }
    free(list);
    return 0;
}

void stage_files_free(struct stage_files *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    memset(l, 0, sizeof *l);
}
