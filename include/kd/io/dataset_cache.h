/* dataset_cache.h: the tokenized dataset cache, one HDF5 file per split
 * (io layer; uses dataset.h and the model layer's tokenizer, knows nothing
 * of MPI or the job layer). Format: hdf5-schemas/dataset_cache.v1.md.
 *
 * dataset_cache_load gives exactly what dataset_load gives (same arrays,
 * label mapping and counts), but tokenizes a split only once per input:
 *
 *   key = SHA-256 of "kd_hpc.dataset_cache/<major>", kd_hpc's version, the
 *         source's SHA-256 (the TSV file's bytes, or the synthetic
 *         generator's parameter string), the vocabulary file's SHA-256 and
 *         the settings JSON (do_lower_case, max_seq_len, columns, problem,
 *         num_labels, bad_rows, synthetic parameters, and the training label
 *         mapping a dev/test file is read against).
 *
 * - <cache_dir>/<split>.h5 (train.h5, dev.h5, test.h5) with the same key and
 *   schema major version is read; HDF5 verifies every chunk's Fletcher32
 *   checksum and the reader checks shapes and value ranges.
 * - Otherwise the split is built with dataset_load and written as
 *   "<path>.tmp.<pid>", fsynced and renamed over <path>, so a file at the
 *   final name is always complete. A stale file (another key) is replaced
 *   with an info line naming what changed; a file that cannot be read, is
 *   corrupt, is not a dataset cache or has another major version is
 *   replaced with a warning naming the file (and the dataset) and the cause.
 *   Failing to write the cache (read-only or full file system) is a warning:
 *   the dataset is still returned.
 *
 * Content, not time stamps, decides: touching a file does not rebuild, any
 * change of its bytes does. Hashing is cheap next to tokenizing (SST-2 train,
 * 3.8 MB, hashes in a few milliseconds).
 *
 * Serial HDF5 (sec2 driver), no MPI: the job layer lets rank 0 call this
 * first and the other ranks after a barrier, so they read the finished
 * file. Two processes building the same split at once each write their own
 * temporary file; the last rename wins and both files are complete.
 */
#ifndef KD_IO_DATASET_CACHE_H
#define KD_IO_DATASET_CACHE_H

#include "kd/core/error.h"
#include "kd/io/dataset.h"
#include "kd/model/tokenizer.h"

#define DATASET_CACHE_SCHEMA "kd_hpc.dataset_cache"
#define DATASET_CACHE_SCHEMA_VERSION "1.0"
#define DATASET_CACHE_SCHEMA_MAJOR 1

/* Loads one split through the cache.
 *   d          out: the dataset (no initialisation needed; dataset_free)
 *   spec       what to load, as for dataset_load
 *   train_map  as for dataset_load (NULL for the split defining the labels)
 *   tok        the tokenizer loaded from vocab_path
 *   vocab_path the vocabulary file tok was loaded from (hashed for the key)
 *   cache_dir  directory of the cache files, created if missing; NULL or ""
 *              disables the cache (plain dataset_load)
 *   rebuilt    out (may be NULL): 1 if the split was tokenized, 0 if it was
 *              read from the cache
 * Returns 0, or -1 with err set when the split cannot be loaded at all (the
 * errors of dataset_load; an unreadable vocabulary file). Cache problems
 * never fail the call. */
int dataset_cache_load(struct dataset *d, const struct dataset_spec *spec,
                       const struct label_map *train_map, tokenizer_t *tok,
                       const char *vocab_path, const char *cache_dir, int *rebuilt,
                       struct kd_err *err);

/* The cache file of a split: "<cache_dir>/<train|dev|test>.h5" (free()). */
char *dataset_cache_path(const char *cache_dir, int split);

#endif
