/* st_diff.c: compares two safetensors files tensor by tensor (test tool).
 *
 *   st_diff A B TOL [SKIP]
 *
 * Prints the largest relative difference |a - b| / max(|b|, 1e-2 max|b|)
 * over all tensors (the floor keeps entries near zero from dominating; the
 * same metric as the golden tests) and the tensor it occurs in. Exit 0
 * when it is at most TOL, 1 when larger or when the files hold different
 * tensors or shapes, 2 on a read error. Tensors whose name contains SKIP
 * are left out (e.g. "key.bias": its exact gradient is zero, softmax being
 * blind to a per-query constant, so after Adam it holds amplified rounding
 * noise only). */
#include "kd/model/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_float(enum st_dtype dt)
{
    return dt == ST_DTYPE_F32 || dt == ST_DTYPE_F16 || dt == ST_DTYPE_BF16 ||
           dt == ST_DTYPE_F64;
}

static float *read_all(const st_reader_t *r, const struct st_tensor_info *t)
{
    struct kd_err err;
    float *v = malloc((size_t)(t->numel > 0 ? t->numel : 1) * sizeof *v);
    if (!v || st_reader_read_f32(r, t, v, -1, NULL, &err)) {
        fprintf(stderr, "st_diff: %s\n", v ? err.msg : "out of memory");
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: st_diff A.safetensors B.safetensors TOL [SKIP]\n");
        return 2;
    }
    struct kd_err err;
    st_reader_t *a, *b;
    if (st_reader_open_file(&a, argv[1], &err) || st_reader_open_file(&b, argv[2], &err)) {
        fprintf(stderr, "st_diff: %s\n", err.msg);
        return 2;
    }
    const double tol = atof(argv[3]);
    double worst = 0.0;
    const char *where = "";
    int differ = st_reader_count(a) != st_reader_count(b);
    for (size_t i = 0; !differ && i < st_reader_count(a); i++) {
        const struct st_tensor_info *ta = st_reader_at(a, i);
        const struct st_tensor_info *tb = st_reader_find(b, ta->name);
        if (!tb || tb->numel != ta->numel) {
            differ = 1;
            break;
        }
        if (!is_float(ta->dtype) || /* e.g. position_ids buffers */
            (argc == 5 && strstr(ta->name, argv[4])))
            continue;
        float *va = read_all(a, ta), *vb = read_all(b, tb);
        double scale = 0.0;
        for (int64_t k = 0; k < ta->numel; k++)
            scale = fmax(scale, fabs(vb[k]));
        for (int64_t k = 0; k < ta->numel; k++) {
            const double den = fmax(fabs(vb[k]), 1e-2 * scale);
            const double rel = den > 0 ? fabs((double)va[k] - vb[k]) / den : 0.0;
            if (rel > worst)
                worst = rel, where = ta->name;
        }
        free(va), free(vb);
    }
    if (differ) {
        printf("st_diff: %s and %s hold different tensors\n", argv[1], argv[2]);
        return 1;
    }
    printf("st_diff: max relative difference %.3g (%s), tolerance %.3g\n", worst, where, tol);
    st_reader_close(a), st_reader_close(b);
    return worst <= tol ? 0 : 1;
}
