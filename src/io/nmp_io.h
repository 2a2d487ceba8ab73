/* nmp_io.h: library-internal helpers of the file layer (atomic output files, safetensors
 * shards and output sets) (not installed) */
#ifndef NMP_IO_H
#define NMP_IO_H

#include "nmp_internal.h"

/* ---------------------------------------------------------- atomic files */

#include <stdio.h>

/* An output file written to a temporary beside path and renamed over it on commit; abort (or a
 * failed commit) removes the temporary, so path never holds a partial file. The temporary is
 * "<path>.nmperm-tmp.<pid>.XXXXXX"; only kill -9 (or a crash) can leave one behind, and the next
 * open of the same path removes those whose pid no longer runs (or is a zombie). Between close and commit the
 * complete temporary (tmp) can be read back, e.g. to verify it, before it replaces path. */
typedef struct nmp_atomic {
    FILE *fp;
    char *path, *tmp;
    /* An output set (nmp_st_out_open of a sharded checkpoint): this file is the index; parts
     * are the shards (parts[0 .. nshards-1]) then the companion files, all in one folder dir.
     * Commit removes the old index, renames every part, fsyncs the folder, then renames the
     * index and fsyncs the folder again; abort removes every temporary (and dir if made). */
    struct nmp_atomic *parts;
    int64_t nparts, nshards;
    char *dir;
    int made_dir;
} nmp_atomic;

nmp_err nmp_atomic_open(nmp_atomic *f, const char *path, nmp_msg *msg);
nmp_err nmp_atomic_write(nmp_atomic *f, const void *data, size_t size, nmp_msg *msg);
nmp_err nmp_atomic_close(nmp_atomic *f, nmp_msg *msg);  /* flush + fsync + close; keeps tmp */
nmp_err nmp_atomic_commit(nmp_atomic *f, nmp_msg *msg); /* close + rename; always releases f */
/* Flushes a folder's entries (renames) to disk; best effort. */
void nmp_atomic_sync_dir(const char *dir);
void nmp_atomic_abort(nmp_atomic *f);                   /* idempotent; accepts a zeroed f */
/* Removes every temporary ("*.nmperm-tmp.<pid>.XXXXXX", regular files of this user, any pid but
 * this process's) under dir, recursively; the count removed. Only for a folder this process
 * owns exclusively (e.g. a batch OUTDIR under its journal's lock): a temporary there can only be
 * left by a killed run, whose workers die with it (or are already unable to run: SIGKILL). */
int64_t nmp_atomic_sweep(const char *dir);

/* ---------------------------------------------------------- safetensors */

#include <jansson.h>

/* One nmp_st over the files paths[0 .. count-1] (each validated as nmp_st_open does, no tensor
 * in two of them); label is what nmp_st_path returns and messages name. */
nmp_err nmp_st_open_files(const char *label, const char *const *paths, int64_t count,
                          nmp_st **out, nmp_msg *msg);
/* nmp_st_open of an index file, or of a folder holding model.safetensors.index.json
 * (nmp_shards.c). */
nmp_err nmp_st_open_index(const char *path, nmp_st **out, nmp_msg *msg);
/* Marks st as opened from index (owned from now on) with its shards' file names (names[k] of
 * shard k, nmp_malloc'd, owned from now on). */
void nmp_st_set_index(nmp_st *st, json_t *index, char **names);
const json_t *nmp_st_index(const nmp_st *st);           /* NULL for a single file */
const char *nmp_st_shard_name(const nmp_st *st, int64_t k); /* sharded only */
/* Drops the mapped pages of every shard from this process (re-read on the next access), so
 * resident memory stops counting what was already read (see nmp_st_open in nmperm.h). */
void nmp_st_drop_pages(const nmp_st *st);

/* Opens the output of `in` at path: a single file, nmp_atomic_open(f, path); a sharded one, the
 * output set in folder path (made when missing; refused, NMP_ERR_ARG, when it is the input's
 * folder): f is the index (the input index's file name), one temporary per shard, and the
 * companion files beside the input index (config.json, generation_config.json, tokenizer*,
 * special_tokens_map.json, *.txt, *.model: regular files ending in .json, .txt, .model or
 * .tiktoken, or named tokenizer*, except indexes) already copied to their temporaries. */
nmp_err nmp_st_out_open(const nmp_st *in, nmp_atomic *f, const char *path, nmp_msg *msg);
/* The output index of a sharded `in` into f (the input's metadata, total_size recomputed, the
 * same weight_map), then nmp_atomic_close(f). */
nmp_err nmp_st_out_index(const nmp_st *in, nmp_atomic *f, nmp_msg *msg);
/* Opens the written (closed, not yet committed) temporaries of f as a checkpoint, sharded like
 * `in`; messages name f->path. */
nmp_err nmp_st_out_reopen(const nmp_atomic *f, nmp_st **out, nmp_msg *msg);
/* The temporary a progress report names: the file's; of a set, the first shard's. */
const char *nmp_st_out_file(const nmp_atomic *f);

/* nmp_st_write into an opened atomic file: header and tensors (through fill), then
 * nmp_atomic_close; the caller commits or aborts f. */
nmp_err nmp_st_write_to(const nmp_st *in, nmp_atomic *f, nmp_st_fill_fn fill, void *user,
                        nmp_msg *msg);

#endif /* NMP_IO_H */
