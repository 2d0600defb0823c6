/* teacher_store_batch.c: batches of teacher outputs into the store (io
 * layer). A batch is converted to the file precision (fp16/bf16 by us, so
 * HDF5 never converts), reduced to what is stored (CLS rows, the stored
 * heads' L x L attention blocks), and then written cut at chunk
 * boundaries: the part up to the last chunk boundary it reaches goes to the
 * file now, the rest waits in a per-dataset pending buffer for the next
 * batch of this rank or for store_finish. Every call is collective: each
 * rank hands over exactly one segment per dataset per round, possibly
 * empty. How a segment reaches the file depends on enum store_io: an
 * H5Dwrite by every rank with a collective transfer (MPI-IO), or rank 0
 * writing its own segment and those the others send it, whole chunks
 * directly (H5Dwrite_chunk, with the checksum computed here). */
#define _GNU_SOURCE /* sync_file_range (Linux) */
#include "teacher_store_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

/* The caller's array for a dataset (layer datasets: the slot's array). */
static const void *batch_src(const struct store_batch *b, const struct store_dset *d,
                             int labels_float)
{
    switch (d->ds) {
    case STORE_DS_INPUT_IDS: return b->input_ids;
    case STORE_DS_TOKEN_TYPE_IDS: return b->token_type_ids;
    case STORE_DS_ATTENTION_MASK: return b->attention_mask;
    case STORE_DS_LABELS:
        return labels_float ? (const void *)b->labels_f32 : (const void *)b->labels_i32;
    case STORE_DS_LOGITS: return b->logits;
    case STORE_DS_HIDDEN: return b->hidden ? b->hidden[d->slot] : NULL;
    case STORE_DS_ATTENTION: return b->attention ? b->attention[d->slot] : NULL;
    case STORE_DS_ATTRIBUTION: return b->attribution;
    case STORE_DS_DECISION_TOP1: return b->decision_top1;
    case STORE_DS_DECISION_VOTES: return b->decision_votes;
    case STORE_DS_DECISION_LOGITS_EST: return b->decision_logits_est;
    case STORE_DS_MLM_POSITIONS: return b->mlm_positions;
    case STORE_DS_MLM_TOPK_IDS: return b->mlm_topk_ids;
    case STORE_DS_MLM_TOPK_LOGITS: return b->mlm_topk_logits;
    default: return NULL; /* lengths: written at create */
    }
}

static int check_batch(const struct store_writer *w, const struct store_batch *b,
                       struct kd_err *err)
{
    int64_t n = w->spec.n_examples;
    if (b->first < 0 || b->count < 0 || b->first > n - b->count)
        return kd_errf(err, "%s: store_write_batch: examples [%lld, %lld) are outside "
                       "[0, %lld)", w->path, (long long)b->first,
                       (long long)(b->first + b->count), (long long)n);
    if (b->count == 0)
        return 0;
    for (int i = 0; i < w->nd; i++)
        if (w->d[i].ds != STORE_DS_LENGTHS && !batch_src(b, &w->d[i], w->spec.labels_float))
            return kd_errf(err, "%s: store_write_batch: examples [%lld, %lld): no data "
                           "for %s", w->path, (long long)b->first,
                           (long long)(b->first + b->count), w->d[i].name);
    return 0;
}

/* Keeps the stored heads and each example's L x L block of (n,NH,T,T)
 * probabilities, converted to the file precision: [A,L,L] per example. */
static void pack_attention(const struct store_spec *s, const float *src, int64_t first,
                           int64_t n, enum h5_prec prec, void *dst)
{
    size_t T = (size_t)s->seq_len, NH = (size_t)s->model_heads, es = h5_prec_size(prec);
    char *out = dst;
    for (int64_t i = 0; i < n; i++) {
        size_t L = (size_t)s->lengths[first + i];
        for (int32_t h = 0; h < s->n_heads; h++) {
            const float *map = src + ((size_t)i * NH + (size_t)s->heads[h]) * T * T;
            for (size_t r = 0; r < L; r++) {
                h5_f32_to_prec(prec, out, map + r * T, L);
                out += L * es;
            }
        }
    }
}

/* The batch in file form for dataset d: file units [*u0, *u1) and their
 * bytes (the caller's memory when nothing needs changing, else the stage). */
static const void *file_form(struct store_writer *w, const struct store_dset *d,
                             const struct store_batch *b, hsize_t *u0, hsize_t *u1)
{
    const struct store_spec *s = &w->spec;
    const void *src = batch_src(b, d, s->labels_float);
    int64_t n = b->count;
    if (d->ragged) {
        *u0 = (hsize_t)w->offsets[b->first];
        *u1 = (hsize_t)w->offsets[b->first + n];
        void *st = store__stage(w, (size_t)(*u1 - *u0) * d->esize);
        pack_attention(s, src, b->first, n, d->prec, st);
        return st;
    }
    *u0 = (hsize_t)b->first;
    *u1 = (hsize_t)(b->first + n);
    size_t elems = (size_t)n * d->row_elems;
    if (d->ds == STORE_DS_HIDDEN && s->tokens == STORE_TOKENS_CLS) {
        /* position 0 of each (T,H) block */
        size_t H = (size_t)s->hidden_size, T = (size_t)s->seq_len;
        char *st = store__stage(w, elems * d->esize);
        for (int64_t i = 0; i < n; i++)
            h5_f32_to_prec(d->prec, st + (size_t)i * H * d->esize,
                           (const float *)src + (size_t)i * T * H, H);
        return st;
    }
    if (d->is_float && d->prec != H5_PREC_F32) {
        void *st = store__stage(w, elems * d->esize);
        h5_f32_to_prec(d->prec, st, src, elems);
        return st;
    }
    return src; /* int32 and fp32 are written from the caller's memory */
}

static void pend_reserve(struct store_pending *p, size_t bytes)
{
    if (bytes > p->cap) {
        size_t cap = p->cap ? p->cap : 1 << 16;
        while (cap < bytes)
            cap *= 2;
        p->buf = kd_realloc(p->buf, cap);
        p->cap = cap;
    }
}

/* H5Dwrite of file units [u0, u1) of d from buf (with MPI-IO an empty
 * selection when u1 == u0, so that the collective call is matched). */
static int write_slab(struct store_writer *w, struct store_dset *d, hsize_t u0, hsize_t u1,
                      const void *buf, struct kd_err *err)
{
    int rc = -1;
    hid_t fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    hsize_t start[4] = {0}, count[4], one = 1;
    start[0] = u0;
    count[0] = u1 - u0;
    for (int i = 1; i < d->rank; i++)
        count[i] = d->ragged ? 1 : d->row[i - 1];
    H5_CHECK(err, fs = H5Dget_space(d->id), "%s: space", d->name);
    if (u1 > u0) {
        H5_CHECK(err, H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL),
                 "%s: selection", d->name);
        H5_CHECK(err, ms = H5Screate_simple(d->rank, count, NULL), "%s: space", d->name);
    } else {
        H5_CHECK(err, H5Sselect_none(fs), "%s: selection", d->name);
        H5_CHECK(err, ms = H5Screate_simple(1, &one, NULL), "%s: space", d->name);
        H5_CHECK(err, H5Sselect_none(ms), "%s: selection", d->name);
        buf = &one;
    }
    H5_CHECK(err, H5Dwrite(d->id, d->type, ms, fs, w->dxpl, buf),
             "%s: %s: write of %s [%llu, %llu)", w->path, d->name,
             d->ragged ? "elements" : "examples", (unsigned long long)u0,
             (unsigned long long)u1);
    rc = 0;
done:
    h5_close_any(&ms);
    h5_close_any(&fs);
    return rc;
}

/* Serial file: the whole chunk of dataset i at unit c0 whose first n units
 * are in w->chunk_buf (fewer than a chunk only for the edge chunk, whose
 * padding is zeros, as HDF5 would store it), written as it lies in the
 * file: the data and their Fletcher32 word, little-endian (the filter's
 * output). Skips HDF5's gather copy, the filter's copy and its checksum
 * pass. */
static int seal_chunk(struct store_writer *w, int i, hsize_t c0, hsize_t n, struct kd_err *err)
{
    int rc = -1;
    struct store_dset *d = &w->d[i];
    const struct store_pending *p = &w->pend[i];
    size_t data = (size_t)p->chunk * p->unit_bytes, have = (size_t)n * p->unit_bytes;
    unsigned char *c = (unsigned char *)w->chunk_buf;
    memset(c + have, 0, data - have);
    uint32_t sum = h5_fletcher32(c, data);
    for (int k = 0; k < 4; k++)
        c[data + (size_t)k] = (unsigned char)(sum >> (8 * k));
    hsize_t off[4] = {c0, 0, 0, 0};
    H5_CHECK(err, H5Dwrite_chunk(d->id, w->dxpl, 0, off, data + 4, c),
             "%s: %s: write of the chunk at %s %llu", w->path, d->name,
             d->ragged ? "element" : "example", (unsigned long long)c0);
    rc = 0;
done:
    return rc;
}

/* w->chunk_buf, large enough for a chunk of dataset i and its checksum. */
static char *chunk_buf(struct store_writer *w, int i)
{
    size_t need = (size_t)w->pend[i].chunk * w->pend[i].unit_bytes + 4;
    if (need > w->chunk_cap) {
        free(w->chunk_buf);
        w->chunk_buf = kd_malloc(need);
        w->chunk_cap = need;
    }
    return w->chunk_buf;
}

/* How a serial file takes units [u0, u1) of dataset i: a head [u0, *lo)
 * and a tail [*hi, u1) through H5Dwrite (partial chunks: where shards
 * meet, or the tail written by store_finish; HDF5 reads back, checks and
 * rewrites a chunk another segment has begun), whole chunks [*lo, *hi)
 * directly (the edge chunk counts as whole when the segment reaches the
 * end). Without direct writes everything is head. */
static void cut_segment(const struct store_writer *w, int i, hsize_t u0, hsize_t u1,
                        hsize_t *lo, hsize_t *hi)
{
    const struct store_pending *p = &w->pend[i];
    hsize_t c = p->chunk;
    if (!w->direct) {
        *lo = *hi = u1;
        return;
    }
    *lo = (u0 + c - 1) / c * c;
    *hi = u1 == p->total ? u1 : u1 / c * c;
    if (*lo > u1)
        *lo = u1;
    if (*hi < *lo)
        *hi = *lo;
}

/* Serial file: units [u0, u1) of dataset i from buf. */
static int put_serial(struct store_writer *w, int i, hsize_t u0, hsize_t u1, const char *buf,
                      struct kd_err *err)
{
    struct store_dset *d = &w->d[i];
    size_t ub = w->pend[i].unit_bytes;
    hsize_t c = w->pend[i].chunk, lo, hi;
    if (u1 <= u0)
        return 0;
    cut_segment(w, i, u0, u1, &lo, &hi);
    if (lo > u0 && write_slab(w, d, u0, lo, buf, err) < 0)
        return -1;
    for (hsize_t k = lo; k < hi; k += c) {
        hsize_t n = hi - k < c ? hi - k : c;
        memcpy(chunk_buf(w, i), buf + (size_t)(k - u0) * ub, (size_t)n * ub);
        if (seal_chunk(w, i, k, n, err) < 0)
            return -1;
    }
    if (u1 > hi && write_slab(w, d, hi, u1, buf + (size_t)(hi - u0) * ub, err) < 0)
        return -1;
    return 0;
}

/* Point-to-point transfers in pieces below INT_MAX bytes. */
#define GATHER_PIECE ((size_t)1 << 30)
#define GATHER_TAG 4242

static void send_bytes(const struct comm *c, const char *buf, size_t bytes)
{
    for (size_t at = 0; at < bytes; at += GATHER_PIECE) {
        size_t k = bytes - at < GATHER_PIECE ? bytes - at : GATHER_PIECE;
        MPI_CHECK(MPI_Send(buf + at, (int)k, MPI_BYTE, 0, GATHER_TAG, c->world));
    }
}

static void recv_bytes(const struct comm *c, int from, char *buf, size_t bytes)
{
    for (size_t at = 0; at < bytes; at += GATHER_PIECE) {
        size_t k = bytes - at < GATHER_PIECE ? bytes - at : GATHER_PIECE;
        MPI_CHECK(MPI_Recv(buf + at, (int)k, MPI_BYTE, from, GATHER_TAG, c->world,
                           MPI_STATUS_IGNORE));
    }
}

/* w->recv, at least bytes long. */
static char *recv_buf(struct store_writer *w, size_t bytes)
{
    if (bytes > w->recv_cap) {
        free(w->recv);
        w->recv = kd_malloc(bytes);
        w->recv_cap = bytes;
    }
    return w->recv;
}

/* Rank 0: the segment [u0, u1) of dataset i that rank `from` sends, cut
 * as cut_segment cuts it; whole chunks are received straight into the
 * chunk buffer. After a failure the rest is still received (and dropped),
 * so that the sender is not left waiting. */
static int recv_segment(struct store_writer *w, int i, int from, hsize_t u0, hsize_t u1,
                        int rc, struct kd_err *err)
{
    struct store_dset *d = &w->d[i];
    size_t ub = w->pend[i].unit_bytes;
    hsize_t c = w->pend[i].chunk, lo, hi;
    cut_segment(w, i, u0, u1, &lo, &hi);
    if (lo > u0) {
        char *b = recv_buf(w, (size_t)(lo - u0) * ub);
        recv_bytes(&w->comm, from, b, (size_t)(lo - u0) * ub);
        if (rc == 0)
            rc = write_slab(w, d, u0, lo, b, err);
    }
    for (hsize_t k = lo; k < hi; k += c) {
        hsize_t n = hi - k < c ? hi - k : c;
        recv_bytes(&w->comm, from, chunk_buf(w, i), (size_t)n * ub);
        if (rc == 0)
            rc = seal_chunk(w, i, k, n, err);
    }
    if (u1 > hi) {
        char *b = recv_buf(w, (size_t)(u1 - hi) * ub);
        recv_bytes(&w->comm, from, b, (size_t)(u1 - hi) * ub);
        if (rc == 0)
            rc = write_slab(w, d, hi, u1, b, err);
    }
    return rc;
}

/* One writer: every rank's segment goes to rank 0, which writes them in
 * rank order. Rank 0 returns the verdict of its writes, the others 0 (the
 * caller agrees them). */
static int gather_units(struct store_writer *w, int i, hsize_t u0, hsize_t u1,
                        const char *buf, struct kd_err *err)
{
    const struct comm *c = &w->comm;
    size_t ub = w->pend[i].unit_bytes;
    uint64_t mine[2] = {u0, u1}, *all = NULL;
    if (c->rank == 0)
        all = kd_malloc(2 * (size_t)c->size * sizeof *all);
    MPI_CHECK(MPI_Gather(mine, 2, MPI_UINT64_T, all, 2, MPI_UINT64_T, 0, c->world));
    if (c->rank != 0) {
        /* the pieces rank 0 expects, in its order */
        hsize_t lo, hi, ch = w->pend[i].chunk;
        if (u1 <= u0)
            return 0;
        cut_segment(w, i, u0, u1, &lo, &hi);
        send_bytes(c, buf, (size_t)(lo - u0) * ub);
        for (hsize_t k = lo; k < hi; k += ch)
            send_bytes(c, buf + (size_t)(k - u0) * ub, (size_t)(hi - k < ch ? hi - k : ch) * ub);
        send_bytes(c, buf + (size_t)(hi - u0) * ub, (size_t)(u1 - hi) * ub);
        return 0;
    }
    int rc = put_serial(w, i, u0, u1, buf, err);
    for (int r = 1; r < c->size; r++)
        if (all[2 * r + 1] > all[2 * r])
            rc = recv_segment(w, i, r, all[2 * r], all[2 * r + 1], rc, err);
    free(all);
    return rc;
}

/* Hands file units [u0, u1) of dataset i (buf) to the file; every rank
 * calls it once per dataset per round, u1 == u0 when it has nothing. */
static int write_units(struct store_writer *w, int i, hsize_t u0, hsize_t u1,
                       const void *buf, struct kd_err *err)
{
    switch (w->io) {
    case STORE_IO_MPIIO: return write_slab(w, &w->d[i], u0, u1, buf, err);
    case STORE_IO_GATHER: return gather_units(w, i, u0, u1, buf, err);
    default: return put_serial(w, i, u0, u1, buf, err);
    }
}

/* Asks the kernel to start writing back what has been written to a serial
 * file so far (rank 0 of SERIAL and GATHER; a hint, errors are ignored), so
 * that store_finish's fsync finds little left. */
static void writeback_all(struct store_writer *w)
{
#ifdef SYNC_FILE_RANGE_WRITE
    /* serial file: every chunk is written once, so whatever is dirty may go */
    if (w->io != STORE_IO_MPIIO && w->sync_fd >= 0)
        sync_file_range(w->sync_fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#else
    (void)w;
#endif
}

/* MPI-IO: asks the kernel to start writing back the chunks holding file
 * units [u0, u1) of dataset i, so that the disk works while the teacher
 * computes and store_finish's fsync finds little left; chunks still holding
 * only the creation-time fill are never touched (their pages are
 * overwritten in the page cache before they reach the disk). A hint: errors
 * are ignored. */
static void start_writeback(struct store_writer *w, int i, hsize_t u0, hsize_t u1)
{
#ifdef SYNC_FILE_RANGE_WRITE
    const struct store_pending *p = &w->pend[i];
    if (w->sync_fd < 0 || !p->addr || u1 <= u0)
        return;
    hsize_t k = u0 / p->chunk, k1 = (u1 - 1) / p->chunk;
    while (k <= k1 && k < p->nchunks) {
        haddr_t lo = p->addr[k], hi = lo + p->chunk_bytes;
        for (k++; k <= k1 && k < p->nchunks && p->addr[k] == hi; k++)
            hi += p->chunk_bytes; /* merge neighbours */
        sync_file_range(w->sync_fd, (off_t)lo, (off_t)(hi - lo), SYNC_FILE_RANGE_WRITE);
    }
#else
    (void)w;
    (void)i;
    (void)u0;
    (void)u1;
#endif
}

/* One dataset of one batch: what can be written whole now is written, the
 * rest is kept. */
static int put_batch(struct store_writer *w, int i, const struct store_batch *b,
                     struct kd_err *err)
{
    struct store_dset *d = &w->d[i];
    struct store_pending *p = &w->pend[i];
    size_t ub = p->unit_bytes;
    if (b->count == 0) /* nothing new: this rank only takes part */
        return write_units(w, i, 0, 0, NULL, err);
    hsize_t b0, b1;
    const char *src = file_form(w, d, b, &b0, &b1);
    if (p->u1 > p->u0 && b0 != p->u1) {
        /* Not a continuation: write out what was pending, keep the batch. */
        int rc = write_units(w, i, p->u0, p->u1, p->buf, err);
        pend_reserve(p, (size_t)(b1 - b0) * ub);
        memcpy(p->buf, src, (size_t)(b1 - b0) * ub);
        p->u0 = b0;
        p->u1 = b1;
        return rc;
    }
    hsize_t u0 = p->u1 > p->u0 ? p->u0 : b0; /* contiguous region [u0, b1) */
    hsize_t q = b1 / p->chunk * p->chunk;   /* last chunk boundary reached */
    if (q < u0)
        q = u0;
    const char *from = src; /* bytes of [u0, b1) */
    if (p->u1 > p->u0) {
        pend_reserve(p, (size_t)(b1 - u0) * ub);
        memcpy(p->buf + (size_t)(b0 - u0) * ub, src, (size_t)(b1 - b0) * ub);
        from = p->buf;
    }
    int rc = write_units(w, i, u0, q, from, err);
    if (rc == 0 && w->io == STORE_IO_MPIIO)
        start_writeback(w, i, u0, q);
    /* keep [q, b1) */
    size_t keep = (size_t)(b1 - q) * ub;
    pend_reserve(p, keep);
    memmove(p->buf, from + (size_t)(q - u0) * ub, keep);
    p->u0 = q;
    p->u1 = b1;
    return rc;
}

int store_write_batch(store_writer_t *w, const struct store_batch *b, struct kd_err *err)
{
    if (store__agree(&w->comm, check_batch(w, b, err), err) < 0)
        return -1;
    for (int i = 0; i < w->nd; i++) {
        if (w->d[i].ds == STORE_DS_LENGTHS)
            continue;
        /* agreed per dataset: the next write is collective again */
        if (store__agree(&w->comm, put_batch(w, i, b, err), err) < 0)
            return -1;
    }
    if (b->count > 0)
        memset(w->written + b->first, 1, (size_t)b->count);
    writeback_all(w);
    return 0;
}

int store__flush_all(struct store_writer *w, struct kd_err *err)
{
    for (int i = 0; i < w->nd; i++) {
        if (w->d[i].ds == STORE_DS_LENGTHS)
            continue;
        struct store_pending *p = &w->pend[i];
        int rc = write_units(w, i, p->u0, p->u1, p->buf, err);
        p->u0 = p->u1 = 0;
        if (store__agree(&w->comm, rc, err) < 0)
            return -1;
    }
    return 0;
}
