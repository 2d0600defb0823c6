/* teacher_store_write.c: the collective writer of the teacher store (io
 * layer): create, finish, abort. Sequence (STYLE 12): file access -> create
 * "<path>.tmp.<pid of rank 0>" -> groups, attributes and chunked datasets
 * (Fletcher32, optional shuffle+deflate) -> batches (teacher_store_batch.c)
 * -> coverage check, close, rank 0 fsyncs and renames. Who holds the file
 * depends on enum store_io: every rank with MPI-IO (collective metadata and
 * transfers), rank 0 alone with a serial file. Every rank calls every
 * function the same number of times; local failures are agreed so that no
 * rank is left waiting in a collective. */
#include "teacher_store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *store_writer_tmp_path(const store_writer_t *w) { return w->tmp; }

int store__agree(const struct comm *c, int rc, struct kd_err *err)
{
    int code = comm_agree_max(c, rc < 0 ? c->size - c->rank : 0);
    if (code == 0)
        return 0;
    struct kd_err scratch;
    if (!err)
        err = &scratch;
    comm_bcast_bytes(c, err->msg, sizeof err->msg, c->size - code);
    return -1;
}

void *store__stage(struct store_writer *w, size_t bytes)
{
    if (bytes > w->stage_cap) {
        free(w->stage);
        w->stage = kd_malloc(bytes);
        w->stage_cap = bytes;
    }
    return w->stage;
}

/* Closes every handle; returns H5Fclose's verdict. Collective. */
static int close_all(struct store_writer *w, struct kd_err *err)
{
    int rc = -1;
    store__dsets_close(w->d, w->nd);
    w->d = NULL;
    w->nd = 0;
    h5_close_any(&w->dxpl);
    if (w->file >= 0) {
        hid_t f = w->file;
        w->file = H5I_INVALID_HID;
        H5_CHECK(err, H5Fclose(f), "%s: close", w->tmp);
    }
    rc = 0;
done:
    return rc;
}

static void writer_free(struct store_writer *w)
{
    for (int i = 0; w->pend && i < w->npend; i++) {
        free(w->pend[i].buf);
        free(w->pend[i].addr);
    }
    if (w->sync_fd >= 0)
        close(w->sync_fd);
    free(w->pend);
    free(w->path);
    free(w->tmp);
    free(w->lengths);
    free(w->offsets);
    free(w->written);
    free(w->stage);
    free(w->chunk_buf);
    free(w->recv);
    free(w);
}

/* ---- create ---------------------------------------------------------------- */

static int create_group(hid_t file, const char *name, struct kd_err *err)
{
    int rc = -1;
    hid_t g = H5I_INVALID_HID;
    H5_CHECK(err, g = H5Gcreate2(file, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
             "group %s", name);
    rc = 0;
done:
    h5_close_any(&g);
    return rc;
}

/* Chunked along N (or along elements when ragged), Fletcher32 always, fill
 * time never: every example is written (store_finish checks). Parallel
 * HDF5 1.10 allocates every chunk at creation (early is forced with
 * MPI-IO) and, because a filtered chunk must hold valid filtered bytes,
 * writes each one once as zeros with its checksum, whatever the fill
 * settings; a serial file allocates a chunk when it is first written
 * (incremental), so each byte is written once (docs/store-performance.md). */
static hid_t make_dcpl(const struct store_spec *s, int rank, const hsize_t *chunk,
                       int early, const char *name, struct kd_err *err)
{
    hid_t dcpl = H5I_INVALID_HID, out = H5I_INVALID_HID;
    H5_CHECK(err, dcpl = H5Pcreate(H5P_DATASET_CREATE), "%s: creation list", name);
    H5_CHECK(err, H5Pset_chunk(dcpl, rank, chunk), "%s: chunks", name);
    if (s->deflate > 0) {
        H5_CHECK(err, H5Pset_shuffle(dcpl), "%s: shuffle", name);
        H5_CHECK(err, H5Pset_deflate(dcpl, (unsigned)s->deflate), "%s: deflate", name);
    }
    H5_CHECK(err, H5Pset_fletcher32(dcpl), "%s: Fletcher32", name);
    H5_CHECK(err, H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), "%s: fill time", name);
    H5_CHECK(err, H5Pset_alloc_time(dcpl, early ? H5D_ALLOC_TIME_EARLY : H5D_ALLOC_TIME_INCR),
             "%s: allocation", name);
    out = dcpl;
    dcpl = H5I_INVALID_HID;
done:
    h5_close_any(&dcpl);
    return out;
}

/* MPI-IO: where every chunk of d lives in the file (allocated at create,
 * fixed size without compression), so that finished chunks can be handed to
 * the kernel for writeback while the teacher keeps computing. The lookups are
 * the same on every rank (collective metadata reads); if one fails the
 * table is dropped, which only loses the hint. */
static void chunk_addresses(const struct store_dset *d, hsize_t units,
                            struct store_pending *pend)
{
    hsize_t n = (units + pend->chunk - 1) / pend->chunk;
    hsize_t off[4] = {0}, size = 0;
    unsigned mask = 0;
    pend->addr = kd_malloc((size_t)n * sizeof *pend->addr);
    pend->nchunks = n;
    for (hsize_t k = 0; k < n; k++) {
        off[0] = k * pend->chunk;
        if (H5Dget_chunk_info_by_coord(d->id, off, &mask, &pend->addr[k], &size) < 0 ||
            pend->addr[k] == HADDR_UNDEF) {
            H5Eclear2(H5E_DEFAULT);
            free(pend->addr);
            pend->addr = NULL;
            pend->nchunks = 0;
            return;
        }
        pend->chunk_bytes = size;
    }
}

/* Shape and chunking of d; every rank knows them, whoever holds the file. */
static void dset_dims(const struct store_writer *w, const struct store_dset *d,
                      hsize_t *dims, hsize_t *chunk)
{
    const struct store_spec *s = &w->spec;
    if (d->ragged) {
        dims[0] = (hsize_t)w->offsets[s->n_examples];
        chunk[0] = store__chunk_elems(d->esize, dims[0]);
    } else {
        dims[0] = (hsize_t)s->n_examples;
        chunk[0] = store__chunk_rows(d->row_elems * d->esize, s->n_examples);
        for (int i = 1; i < d->rank; i++)
            dims[i] = chunk[i] = d->row[i - 1];
    }
}

static void plan_pending(const struct store_writer *w, const struct store_dset *d,
                         struct store_pending *pend)
{
    hsize_t dims[4], chunk[4];
    dset_dims(w, d, dims, chunk);
    pend->chunk = chunk[0];
    pend->total = dims[0];
    pend->unit_bytes = d->ragged ? d->esize : d->row_elems * d->esize;
}

static int create_dset(struct store_writer *w, struct store_dset *d,
                       struct store_pending *pend, struct kd_err *err)
{
    int rc = -1;
    hid_t dcpl = H5I_INVALID_HID, space = H5I_INVALID_HID;
    const struct store_spec *s = &w->spec;
    hsize_t dims[4], chunk[4];
    dset_dims(w, d, dims, chunk);
    if ((dcpl = make_dcpl(s, d->rank, chunk, w->io == STORE_IO_MPIIO, d->name, err)) < 0)
        goto done;
    H5_CHECK(err, space = H5Screate_simple(d->rank, dims, NULL), "%s: space", d->name);
    H5_CHECK(err, d->id = H5Dcreate2(w->file, d->name, d->type, space, H5P_DEFAULT, dcpl,
                                     H5P_DEFAULT), "%s: create", d->name);
    if (d->is_float && h5_attr_write_str(d->id, "precision", h5_prec_name(d->prec), err) < 0)
        goto done;
    if (d->layer >= 0 && h5_attr_write_i32(d->id, "layer", d->layer, err) < 0)
        goto done;
    if (d->ds == STORE_DS_LABELS &&
        h5_attr_write_str(d->id, "task", s->labels_float ? "regression" : "classification",
                          err) < 0)
        goto done;
    if (w->io == STORE_IO_MPIIO && s->deflate == 0)
        chunk_addresses(d, dims[0], pend);
    rc = 0;
done:
    h5_close_any(&space);
    h5_close_any(&dcpl);
    return rc;
}

/* A 1-D dataset written whole by rank 0 (with MPI-IO the others select
 * nothing): lengths and attention offsets, known at create time. */
static int write_index(struct store_writer *w, hid_t ds, hid_t mtype, hsize_t n,
                       const void *buf, const char *name, struct kd_err *err)
{
    int rc = -1;
    hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    hsize_t one = 1;
    H5_CHECK(err, fs = H5Dget_space(ds), "%s: space", name);
    if (w->comm.rank == 0) {
        H5_CHECK(err, ms = H5Screate_simple(1, &n, NULL), "%s: space", name);
    } else {
        H5_CHECK(err, ms = H5Screate_simple(1, &one, NULL), "%s: space", name);
        H5_CHECK(err, H5Sselect_none(ms), "%s: selection", name);
        H5_CHECK(err, H5Sselect_none(fs), "%s: selection", name);
    }
    H5_CHECK(err, H5Dwrite(ds, mtype, ms, fs, w->dxpl, buf), "%s: write", name);
    rc = 0;
done:
    h5_close_any(&ms);
    h5_close_any(&fs);
    return rc;
}

static int create_offsets(struct store_writer *w, struct kd_err *err)
{
    int rc = -1;
    hid_t dcpl = H5I_INVALID_HID, space = H5I_INVALID_HID, ds = H5I_INVALID_HID;
    const char *name = "/attention/offsets";
    hsize_t n = (hsize_t)w->spec.n_examples + 1;
    hsize_t chunk = store__chunk_rows(8, (int64_t)n);
    if ((dcpl = make_dcpl(&w->spec, 1, &chunk, w->io == STORE_IO_MPIIO, name, err)) < 0)
        goto done;
    H5_CHECK(err, space = H5Screate_simple(1, &n, NULL), "%s: space", name);
    H5_CHECK(err, ds = H5Dcreate2(w->file, name, H5T_STD_I64LE, space, H5P_DEFAULT, dcpl,
                                  H5P_DEFAULT), "%s: create", name);
    rc = write_index(w, ds, H5T_STD_I64LE, n, w->offsets, name, err);
done:
    h5_close_any(&ds);
    h5_close_any(&space);
    h5_close_any(&dcpl);
    return rc;
}

/* Everything of store_create that talks to HDF5 (the ranks that hold the
 * file); the others only plan the datasets. */
static int create_file(struct store_writer *w, const struct store_provenance *prov,
                       const char *created, struct kd_err *err)
{
    int rc = -1;
    hid_t fapl = H5I_INVALID_HID;
    const struct store_spec *s = &w->spec;
    if ((w->nd = store__dsets_plan(s, &w->d, err)) < 0) {
        w->nd = 0;
        goto done;
    }
    w->pend = kd_calloc((size_t)w->nd, sizeof *w->pend);
    w->npend = w->nd;
    for (int i = 0; i < w->nd; i++)
        plan_pending(w, &w->d[i], &w->pend[i]);
    if (!w->holds_file) {
        rc = 0;
        goto done;
    }
    if (w->io == STORE_IO_MPIIO) {
        if ((fapl = h5_fapl_mpio(w->comm.world, 1, err)) < 0)
            goto done;
    } else if ((fapl = h5_fapl_serial(err)) < 0) {
        goto done;
    }
    H5_CHECK(err, w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl),
             "temporary file %s", w->tmp);
    if (w->io == STORE_IO_MPIIO) {
        if ((w->dxpl = h5_dxpl_collective(err)) < 0)
            goto done;
    } else {
        H5_CHECK(err, w->dxpl = H5Pcreate(H5P_DATASET_XFER), "transfer list");
    }
    static const struct {
        const char *name;
        uint32_t bits;
    } groups[] = {
        {"/examples", STORE_BIT(STORE_DS_LENGTHS)}, /* always there */
        {"/hidden", STORE_BIT(STORE_DS_HIDDEN)},
        {"/attention", STORE_BIT(STORE_DS_ATTENTION)},
        {"/decision", STORE_BIT(STORE_DS_DECISION_TOP1) | STORE_BIT(STORE_DS_DECISION_VOTES) |
                          STORE_BIT(STORE_DS_DECISION_LOGITS_EST)},
        {"/mlm", STORE_BIT(STORE_DS_MLM_POSITIONS) | STORE_BIT(STORE_DS_MLM_TOPK_IDS) |
                     STORE_BIT(STORE_DS_MLM_TOPK_LOGITS)},
    };
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++)
        if ((s->datasets | STORE_BIT(STORE_DS_LENGTHS)) & groups[i].bits)
            if (create_group(w->file, groups[i].name, err) < 0)
                goto done;
    if (store__write_attrs(w->file, s, prov, created, err) < 0)
        goto done;
    for (int i = 0; i < w->nd; i++)
        if (create_dset(w, &w->d[i], &w->pend[i], err) < 0)
            goto done;
    for (int i = 0; i < w->nd; i++)
        if (w->d[i].ds == STORE_DS_LENGTHS &&
            write_index(w, w->d[i].id, w->d[i].type, (hsize_t)s->n_examples, w->lengths,
                        w->d[i].name, err) < 0)
            goto done;
    if (w->offsets && create_offsets(w, err) < 0)
        goto done;
    rc = 0;
done:
    if (rc < 0)
        kd_err_prefix(err, "%s", w->path);
    h5_close_any(&fapl);
    return rc;
}

static int check_provenance(const struct store_provenance *p, struct kd_err *err)
{
    if (!p || !p->teacher_config)
        return kd_errf(err, "store provenance: teacher_config: expected JSON text, got none");
    const char *names[3] = {"teacher_sha256", "vocab_sha256", "data_sha256"};
    const char *vals[3] = {p->teacher_sha256, p->vocab_sha256, p->data_sha256};
    for (int i = 0; i < 3; i++)
        if (!store__is_sha256(vals[i]))
            return kd_errf(err, "store provenance: %s: expected 64 lower-case hex digits, "
                           "got \"%s\"", names[i], vals[i] ? vals[i] : "(none)");
    if (p->created && strlen(p->created) >= 32)
        return kd_errf(err, "store provenance: created: too long (\"%s\")", p->created);
    return 0;
}

/* 1 if every rank of c runs on one node (shares memory with rank 0). */
static int one_node(const struct comm *c)
{
    MPI_Comm node;
    int n = 0;
    MPI_CHECK(MPI_Comm_split_type(c->world, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
    MPI_CHECK(MPI_Comm_size(node, &n));
    MPI_CHECK(MPI_Comm_free(&node));
    /* the same answer everywhere, even if the node groups differ in size */
    return comm_agree_max(c, n != c->size) == 0;
}

static enum store_io choose_io(const struct comm *c, enum store_writer_io want)
{
    if (want == STORE_WRITER_MPIIO)
        return STORE_IO_MPIIO;
    if (c->size == 1)
        return STORE_IO_SERIAL;
    /* Across nodes one writer would funnel every byte through one network
     * link and one client; parallel HDF5 pays the zero pass instead. */
    if (want == STORE_WRITER_ONE_WRITER || one_node(c))
        return STORE_IO_GATHER;
    return STORE_IO_MPIIO;
}

int store_create(store_writer_t **out, const char *path, const struct comm *comm,
                 const struct store_spec *spec, const struct store_provenance *prov,
                 struct kd_err *err)
{
    return store_create_io(out, path, comm, spec, prov, STORE_WRITER_AUTO, err);
}

int store_create_io(store_writer_t **out, const char *path, const struct comm *comm,
                    const struct store_spec *spec, const struct store_provenance *prov,
                    enum store_writer_io io, struct kd_err *err)
{
    *out = NULL;
    h5_init();
    int rc = store_spec_check(spec, err);
    if (rc == 0)
        rc = check_provenance(prov, err);
    if (rc == 0 && (io < STORE_WRITER_AUTO || io > STORE_WRITER_MPIIO))
        rc = kd_errf(err, "store writer: expected AUTO, ONE_WRITER or MPIIO, got %d", (int)io);
    if (rc < 0)
        kd_err_prefix(err, "%s", path);
    if (store__agree(comm, rc, err) < 0)
        return -1;

    struct store_writer *w = kd_calloc(1, sizeof *w);
    w->comm = *comm;
    w->io = choose_io(comm, io);
    w->holds_file = w->io == STORE_IO_MPIIO || comm->rank == 0;
    w->direct = w->io != STORE_IO_MPIIO && spec->deflate == 0;
    w->sync_fd = -1;
    w->file = w->dxpl = H5I_INVALID_HID;
    w->spec = *spec;
    size_t n = (size_t)spec->n_examples;
    w->lengths = kd_malloc(n * sizeof *w->lengths);
    memcpy(w->lengths, spec->lengths, n * sizeof *w->lengths);
    w->spec.lengths = w->lengths;
    if (spec->datasets & STORE_BIT(STORE_DS_ATTENTION))
        w->offsets = store__attention_offsets(&w->spec);
    w->written = kd_calloc(n, 1);

    /* The temporary name and the timestamp come from rank 0, so every rank
     * opens the same file and writes the same attribute value. */
    struct {
        long long pid;
        char created[32];
    } agreed;
    memset(&agreed, 0, sizeof agreed);
    if (comm->rank == 0) {
        agreed.pid = (long long)getpid();
        if (prov->created) {
            snprintf(agreed.created, sizeof agreed.created, "%s", prov->created);
        } else {
            time_t now = time(NULL);
            struct tm tm;
            gmtime_r(&now, &tm);
            strftime(agreed.created, sizeof agreed.created, "%Y-%m-%dT%H:%M:%SZ", &tm);
        }
    }
    comm_bcast_bytes(comm, &agreed, sizeof agreed, 0);
    w->path = kd_strdup(path);
    size_t len = strlen(path) + 32;
    w->tmp = kd_malloc(len);
    snprintf(w->tmp, len, "%s.tmp.%lld", path, agreed.pid);

    rc = create_file(w, prov, agreed.created, err);
    if (store__agree(comm, rc, err) < 0) {
        struct kd_err ignore;
        close_all(w, &ignore);
        if (comm->rank == 0)
            remove(w->tmp);
        writer_free(w);
        return -1;
    }
    if (w->holds_file)
        w->sync_fd = open(w->tmp, O_RDONLY); /* only for writeback hints */
    *out = w;
    return 0;
}

/* ---- finish ---------------------------------------------------------------- */

/* Every example written by exactly one rank? Sums the per-rank marks. */
static int check_coverage(struct store_writer *w, struct kd_err *err)
{
    int64_t n = w->spec.n_examples;
    for (int64_t at = 0; at < n;) {
        int k = n - at > (1 << 30) ? 1 << 30 : (int)(n - at);
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, w->written + at, k, MPI_UINT8_T, MPI_SUM,
                                w->comm.world));
        at += k;
    }
    int64_t missing = 0, first_missing = -1, twice = 0, first_twice = -1;
    for (int64_t i = 0; i < n; i++) {
        if (w->written[i] == 0 && missing++ == 0)
            first_missing = i;
        if (w->written[i] > 1 && twice++ == 0)
            first_twice = i;
    }
    if (missing)
        return kd_errf(err, "%s: incomplete: %lld of %lld examples were never written "
                       "(the first is example %lld)", w->path, (long long)missing,
                       (long long)n, (long long)first_missing);
    if (twice)
        return kd_errf(err, "%s: %lld examples were written by more than one rank (the "
                       "first is example %lld); shards must not overlap", w->path,
                       (long long)twice, (long long)first_twice);
    return 0;
}

/* Rank 0: makes the file durable, then gives it its final name. */
static int publish(const char *tmp, const char *path, struct kd_err *err)
{
    int fd = open(tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return kd_errf(err, "%s: cannot sync: %s", tmp, strerror(e));
    }
    close(fd);
    if (rename(tmp, path) != 0)
        return kd_errf(err, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    /* the directory entry too, so the new name survives a crash */
    char *dir = kd_strdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[slash == dir ? 1 : 0] = '\0';
    int dfd = open(slash ? dir : ".", O_RDONLY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dir);
    return 0;
}

int store_finish(store_writer_t *w, struct kd_err *err)
{
    /* the tails still pending, then the coverage (same verdict everywhere) */
    int rc = store__flush_all(w, err);
    if (rc == 0)
        rc = check_coverage(w, err);
    struct kd_err close_err;
    int crc = close_all(w, &close_err);
    if (rc == 0 && crc < 0) {
        rc = -1;
        if (err)
            *err = close_err;
    }
    rc = store__agree(&w->comm, rc, err);
    if (rc == 0)
        rc = store__agree(&w->comm, w->comm.rank == 0 ? publish(w->tmp, w->path, err) : 0, err);
    if (rc < 0 && w->comm.rank == 0)
        remove(w->tmp);
    writer_free(w);
    return rc;
}

void store_abort(store_writer_t *w)
{
    if (!w)
        return;
    struct kd_err ignore;
    close_all(w, &ignore);
    comm_barrier(&w->comm);
    if (w->comm.rank == 0)
        remove(w->tmp);
    writer_free(w);
}
