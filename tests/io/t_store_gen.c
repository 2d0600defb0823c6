/* t_store_gen.c: writes the small teacher store whose `h5dump -H -p` is the
 * golden hdf5-schemas/teacher_store.v1.ddl (run by tests/io/schema.sh, not
 * a test by itself). Every dataset of the schema, in all three precisions:
 * hidden states fp16, attention bf16, the other float datasets fp32.
 * Usage: t_store_gen PATH. */
#include "kd/io/teacher_store.h"
#include "t_store_fixture.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    struct comm c;
    comm_init(&c, &argc, &argv);
    if (argc != 2) {
        fprintf(stderr, "usage: t_store_gen PATH\n");
        comm_finalize(&c);
        return 2;
    }
    enum { N = 4 };
    int32_t lengths[N];
    struct store_spec s;
    struct kd_err err = {""};
    fx_spec_full(&s, lengths, N, 5, H5_PREC_F32, STORE_TOKENS_ALL, 0);
    s.precision[STORE_DS_HIDDEN] = H5_PREC_F16;
    s.precision[STORE_DS_ATTENTION] = H5_PREC_BF16;
    int rc = fx_write(argv[1], &c, &s, 3, &err);
    if (rc < 0)
        fprintf(stderr, "t_store_gen: %s\n", err.msg);
    comm_finalize(&c);
    return rc < 0;
}
