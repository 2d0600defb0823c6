/* teacher_store_batch.c: batches of teacher outputs into the store (io
 * layer). A batch is converted to the file precision (fp16/bf16 by us, so
 * HDF5 never converts), reduced to what is stored (CLS rows, the stored
 * heads' L x L attention blocks), and then written cut at chunk
 * boundaries: the part up to the last chunk boundary it reaches goes to the
 * file now, the rest waits in a per-dataset pending buffer for the next
 * batch of this rank or for store_finish. Every call is collective: each
 * rank issues exactly one H5Dwrite per dataset per round, possibly with an
 * empty selection. */
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

/* Writes file units [u0, u1) of d from buf (nothing when u1 == u0); every
 * rank calls it once per dataset per round. */
static int write_units(struct store_writer *w, struct store_dset *d, hsize_t u0, hsize_t u1,
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

/* Asks the kernel to start writing back the chunks holding file units
 * [u0, u1) of dataset i, so that the disk works while the teacher computes
 * and store_finish's fsync finds little left; chunks still holding only the
 * creation-time fill are never touched (their pages are overwritten in the
 * page cache before they reach the disk). A hint: errors are ignored. */
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
        return write_units(w, d, 0, 0, NULL, err);
    hsize_t b0, b1;
    const char *src = file_form(w, d, b, &b0, &b1);
    if (p->u1 > p->u0 && b0 != p->u1) {
        /* Not a continuation: write out what was pending, keep the batch. */
        int rc = write_units(w, d, p->u0, p->u1, p->buf, err);
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
    int rc = write_units(w, d, u0, q, from, err);
    if (rc == 0)
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
    return 0;
}

int store__flush_all(struct store_writer *w, struct kd_err *err)
{
    for (int i = 0; i < w->nd; i++) {
        if (w->d[i].ds == STORE_DS_LENGTHS)
            continue;
        struct store_pending *p = &w->pend[i];
        int rc = write_units(w, &w->d[i], p->u0, p->u1, p->buf, err);
        p->u0 = p->u1 = 0;
        if (store__agree(&w->comm, rc, err) < 0)
            return -1;
    }
    return 0;
}
