/* teacher_store_int.h: what the writer, the reader and the schema code of
 * the teacher store share (io layer, private to src/io/teacher_store*.c). */
#ifndef KD_IO_TEACHER_STORE_INT_H
#define KD_IO_TEACHER_STORE_INT_H

#include "kd/io/teacher_store.h"

/* One HDF5 dataset of the store: a fixed dataset or one layer_NN. */
struct store_dset {
    enum store_ds ds;
    int layer;          /* layer number for hidden/attention, else -1 */
    int slot;           /* index of the layer in the spec's list, else 0 */
    char name[48];      /* full path, e.g. "/hidden/layer_04" */
    hid_t id;           /* open dataset */
    hid_t type;         /* file type, also passed as the memory type */
    int is_float;       /* stored as fp32/fp16/bf16 */
    enum h5_prec prec;  /* valid when is_float */
    size_t esize;       /* bytes per stored element */
    int ragged;         /* 1-D concatenation of per-example blocks (attention) */
    int rank;           /* dataspace rank */
    hsize_t row[3];     /* per-example file shape (dims after N); rank - 1 used */
    size_t row_elems;   /* product of row[]; ragged: 0 */
};

/* Builds the table of datasets for a spec in the canonical order (the
 * order of enum store_ds, layers ascending). Types are created here and
 * ids left invalid. Returns the count, or -1. *out is malloc'd. */
int store__dsets_plan(const struct store_spec *s, struct store_dset **out,
                      struct kd_err *err);
void store__dsets_close(struct store_dset *d, int n);

/* Rows per chunk for a per-example row of row_bytes bytes. */
hsize_t store__chunk_rows(size_t row_bytes, int64_t n_examples);
/* Elements per chunk of a ragged 1-D dataset. */
hsize_t store__chunk_elems(size_t esize, uint64_t total_elems);

/* Element offsets of every example's attention block in a layer dataset:
 * off[i] = A * sum_{j<i} L_j^2, off[N] = total. (N+1) values, malloc'd. */
int64_t *store__attention_offsets(const struct store_spec *s);

/* The "components" root attribute: comma-separated dataset paths without
 * the leading '/', hidden and attention once each, in enum order. */
void store__components_text(uint32_t datasets, char *buf, size_t len);
int store__components_parse(const char *text, uint32_t *datasets, struct kd_err *err);

/* Root and group attributes (writer) and their reading and checking
 * (reader). `created` is the timestamp agreed by all ranks. */
int store__write_attrs(hid_t file, const struct store_spec *s,
                       const struct store_provenance *p, const char *created,
                       struct kd_err *err);
/* Strings read from the root; freed with store__prov_free. */
struct store_prov_text {
    char *schema, *schema_version, *kd_hpc_version, *teacher_config;
    char *teacher_sha256, *vocab_sha256, *data_sha256, *created;
};
int store__read_prov(hid_t file, struct store_prov_text *t, struct kd_err *err);
void store__prov_free(struct store_prov_text *t);
/* Schema name and major version, then the expected hashes. */
int store__check_prov(const char *path, const struct store_prov_text *t,
                      const struct store_expect *e, struct kd_err *err);

/* ---- writer state (teacher_store_write.c, teacher_store_batch.c) ---- */

/* How the file is written. Parallel HDF5 1.10 allocates every chunk of a
 * filtered dataset at creation and writes it once as zeros (a checksummed
 * chunk must be valid), so an MPI-IO store costs twice its size in writes;
 * a serial (sec2) file allocates each chunk when it is first written and
 * skips that pass. */
enum store_io {
    STORE_IO_SERIAL = 0, /* one rank: a serial file */
    STORE_IO_GATHER,     /* one node: rank 0 holds a serial file and writes
                          * what the others send it */
    STORE_IO_MPIIO       /* several nodes: parallel HDF5, collective writes */
};

/* Examples a rank has accepted but not yet written, in file precision.
 * Writes are cut at chunk boundaries so that every chunk is written whole,
 * once (a partly written chunk costs HDF5 a read, a checksum check and a
 * rewrite); only the chunks shared with a neighbouring rank's shard and the
 * tail written by store_finish are partial. */
struct store_pending {
    char *buf;
    size_t cap;
    hsize_t u0, u1;     /* file units held: rows, or elements when ragged */
    hsize_t chunk;      /* units per chunk */
    hsize_t total;      /* units in the dataset */
    size_t unit_bytes;  /* bytes per unit in the file */
    haddr_t *addr;      /* (nchunks) file offset of every chunk, or NULL */
    hsize_t nchunks;
    hsize_t chunk_bytes; /* stored bytes of a chunk (data + checksum) */
};

struct store_writer {
    struct comm comm;       /* the caller's communicators (not owned) */
    char *path;             /* final name */
    char *tmp;              /* name while being written */
    struct store_spec spec; /* lengths points to our copy */
    int32_t *lengths;       /* (N) */
    int64_t *offsets;       /* (N+1) attention element offsets, or NULL */
    enum store_io io;
    int holds_file;         /* this rank has the HDF5 file open (all ranks
                             * for MPI-IO, rank 0 otherwise) */
    int direct;             /* serial file without deflate: whole chunks go
                             * out through H5Dwrite_chunk with our checksum */
    hid_t file;
    hid_t dxpl;             /* collective transfer (MPI-IO), else default */
    struct store_dset *d;   /* datasets in canonical order */
    int nd;
    uint8_t *written;       /* (N) 1 where this rank wrote the example */
    struct store_pending *pend; /* (npend = nd) accepted, not yet written */
    int npend;
    int sync_fd;            /* read-only descriptor of tmp for writeback hints */
    void *stage;            /* conversion / packing buffer */
    size_t stage_cap;
    char *chunk_buf;        /* one chunk + checksum for direct writes */
    size_t chunk_cap;
    char *recv;             /* gather: a partial chunk from another rank */
    size_t recv_cap;
};

/* Makes a local result collective: if any rank failed, every rank returns
 * -1 with the message of the lowest failing rank. */
int store__agree(const struct comm *c, int rc, struct kd_err *err);
/* The writer's scratch buffer, at least `bytes` long. */
void *store__stage(struct store_writer *w, size_t bytes);
/* Writes everything still pending, every dataset (collective). */
int store__flush_all(struct store_writer *w, struct kd_err *err);

/* 1 if s is 64 lower-case hex digits. */
int store__is_sha256(const char *s);

#endif
