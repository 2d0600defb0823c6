/* student_setup.c: student.init for the distill stage. */
#include "kd/stages/student_setup.h"
#include "kd/core/log.h"
#include "kd/init/student_init.h"
#include "kd/model/hf_config.h"
#include "kd/parallel/layout.h"
#include "kd/parallel/scalapack.h"
#include "kd/core/fsutil.h"
#include "kd/stages/batch_rows.h"

#include <stdlib.h>

static int open_teacher(struct bert_model *t, const char *dir, int64_t B, int64_t T,
                        struct kd_err *err)
{
    char *p = fs_path_join(dir, "config.json");
    struct bert_config cfg;
    int rc = hf_config_read(p, &cfg, NULL, err);
    free(p);
    if (rc)
        return -1;
    struct bert_opts o = {.B = B, .T = T, .heads = BERT_HEAD_CLASSIFIER};
    if (bert_init(t, &cfg, &o, err))
        return -1;
    if (bert_load_params(t, dir, 0, err)) {
        bert_free(t);
        return -1;
    }
    return 0;
}

static int pca_init(struct bert_model *s, struct bert_model *t, const struct job *job,
                    const struct dataset *train, const struct comm *c, struct kd_err *err)
{
    const int64_t Ls = s->cfg.num_hidden_layers;
    int64_t *map = malloc((size_t)Ls * sizeof *map);
    if (student_layer_map(map, job->student.init_layers.v, job->student.init_layers.n, Ls,
                          t->cfg.num_hidden_layers, err)) {
        free(map);
        return -1;
    }
    long long begin, end;
    const int64_t n_all = train->n < STUDENT_PCA_ROWS ? train->n : STUDENT_PCA_ROWS;
    layout_shard(n_all, c->rank, c->size, &begin, &end);
    struct batch_rows br;
    int64_t *rows = malloc((size_t)(end - begin + 1) * sizeof *rows);
    int rc = batch_rows_alloc(&br, end - begin + 1, train->max_seq_len);
    for (long long i = begin; i < end; i++)
        rows[i - begin] = i;
    batch_rows_gather(&br, train, rows, end - begin);
    struct bert_batch b = batch_rows_view(&br, 0, 0, 0);
    struct scalapack_grid g;
    struct scalapack_pca basis;
    rc = rc || scalapack_grid_init(&g, c, 32, err);
    if (!rc) {
        rc = student_pca_basis(&basis, &g, t, &b, map, Ls, s->cfg.hidden_size, err);
        if (!rc) {
            rc = student_init_pca(s, t, &basis, job->student.init_layers.v,
                                  job->student.init_layers.n, (uint64_t)job->job.seed, err);
            scalapack_pca_free(&basis);
        }
        scalapack_grid_free(&g);
    }
    batch_rows_free(&br);
    free(rows), free(map);
    return rc;
}

int student_setup(struct bert_model *s, const struct job *job, const char *teacher_dir,
                  const struct dataset *train, const struct comm *c, struct kd_err *err)
{
    if (job->student.init == STUDENT_INIT_RANDOM || job->student.checkpoint[0])
        return 0;
    const char *what = job->student.init == STUDENT_INIT_PCA ? "pca" : "teacher_layers";
    int rc = 0;
    if (!teacher_dir) {
        kd_errf(err, "student.init = \"%s\" needs a teacher: set teacher.checkpoint or run a "
                     "finetune stage first", what);
        rc = -1;
    }
    struct bert_model t;
    if (!rc)
        rc = open_teacher(&t, teacher_dir, STUDENT_PCA_ROWS, train->max_seq_len, err);
    if (!rc) {
        rc = job->student.init == STUDENT_INIT_PCA
                 ? pca_init(s, &t, job, train, c, err)
                 : student_init_teacher_layers(s, &t, job->student.init_layers.v,
                                               job->student.init_layers.n,
                                               (uint64_t)job->job.seed, err);
        bert_free(&t);
    }
    if (comm_agree_max(c, rc ? 1 : 0)) {
        if (!rc)
            kd_errf(err, "another rank could not initialise the student");
        return -1;
    }
    log_info0("student initialised from the teacher (student.init = \"%s\")", what);
    return 0;
}
