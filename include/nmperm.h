/* nmperm.h: N:M channel permutations of neural-network weights, the one public header */
#ifndef NMPERM_H
#define NMPERM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NMP_VERSION_MAJOR 0
#define NMP_VERSION_MINOR 1
#define NMP_VERSION_PATCH 0
#define NMP_VERSION_STRING "0.1.0"

/* Largest group size m of an N:M pattern. */
#define NMP_MAX_M 32

/* ---------------------------------------------------------------- errors */

/* "Did the call work": every function that can fail returns one of these. */
typedef enum nmp_err {
    NMP_OK = 0,
    NMP_ERR_ARG,         /* an argument is out of range or inconsistent */
    NMP_ERR_NOMEM,       /* an allocation failed */
    NMP_ERR_IO,          /* a file could not be opened, read or written */
    NMP_ERR_FORMAT,      /* a file is malformed or of an unsupported kind */
    NMP_ERR_UNSUPPORTED, /* the request is valid but beyond this build or solver */
    NMP_ERR_LP,          /* the LP/MIP solver failed */
    NMP_ERR_GPU,         /* a CUDA call failed or no device is present */
    NMP_ERR_INTERNAL     /* an invariant broke: a bug */
} nmp_err;

/* "How did the search end": a time limit is a result, not an error. */
typedef enum nmp_status {
    NMP_STATUS_OPTIMAL = 0, /* the permutation is proven optimal */
    NMP_STATUS_FEASIBLE,    /* the search ended by its own rule, optimality not proven */
    NMP_STATUS_TIME_LIMIT,  /* the time limit stopped the search */
    NMP_STATUS_ITER_LIMIT,  /* an iteration or node limit stopped the search */
    NMP_STATUS_INTERRUPTED  /* the progress callback asked to stop */
} nmp_status;

/* Static strings; never NULL. */
const char *nmp_err_str(nmp_err e);
const char *nmp_status_str(nmp_status s);
const char *nmp_version(void);

/* A one-line reason for a failure, filled by loaders and solvers when msg is not NULL,
 * e.g. "fc1.weight: 3-D tensor, expected 2-D". Empty when nothing was said. */
typedef struct nmp_msg {
    char text[512];
} nmp_msg;

/* ------------------------------------------------------------ allocation */

/* All heap use of the library goes through these (like CSparse's cs_malloc). nmp_free accepts
 * NULL. Sizes of 0 allocate 1 byte so that NULL always means failure. */
void *nmp_malloc(size_t size);
void *nmp_calloc(size_t count, size_t size);
void *nmp_realloc(void *p, size_t size);
void nmp_free(void *p);

/* Test hook: the k-th allocation from now (k = 0, 1, ...) and all later ones fail; k < 0 turns
 * failure injection off. nmp_alloc_count returns the number of allocations made so far. */
void nmp_alloc_fail_after(int64_t k);
int64_t nmp_alloc_count(void);

/* ---------------------------------------------------------------- matrix */

/* A strided float32 view: never owns data. Element (row j, col i) is data[j * rs + i * cs];
 * row-major has rs = cols, cs = 1. A transpose swaps rows/cols and rs/cs. */
typedef struct nmp_matrix {
    const float *data;
    int64_t rows, cols, rs, cs;
} nmp_matrix;

nmp_matrix nmp_matrix_view(const float *data, int64_t rows, int64_t cols); /* row-major */
nmp_matrix nmp_matrix_transpose(nmp_matrix a);

static inline float nmp_matrix_at(const nmp_matrix *a, int64_t j, int64_t i)
{
    return a->data[j * a->rs + i * a->cs];
}

/* NMP_OK when data is not NULL, rows, cols >= 1 and every value is finite; otherwise NMP_ERR_ARG
 * and msg names the first bad element, e.g. "NaN at row 3, col 7". */
nmp_err nmp_matrix_check(const nmp_matrix *a, nmp_msg *msg);

/* An owned row-major float32 matrix, as loaders return it. Release with nmp_array_free. */
typedef struct nmp_array {
    float *data;
    int64_t rows, cols;
} nmp_array;

nmp_matrix nmp_array_view(const nmp_array *a);
void nmp_array_free(nmp_array *a); /* frees data and zeroes *a; accepts NULL */

/* ----------------------------------------------------------- permutation */

/* perm[k] = source column placed at slot k. NULL stands for the identity wherever a const perm is
 * taken. pinv is the inverse: pinv[perm[k]] = k. */
int nmp_perm_is_valid(const int32_t *perm, int64_t n); /* 1 if a bijection on 0..n-1 */
void nmp_perm_identity(int32_t *perm, int64_t n);
void nmp_perm_invert(const int32_t *perm, int32_t *pinv, int64_t n);
/* out[k] = p[q[k]]: permute by p, then by q (q indexes slots of the p-permuted matrix). out may
 * not alias p or q. */
void nmp_perm_compose(const int32_t *p, const int32_t *q, int32_t *out, int64_t n);
/* Canonical form of a group partition: columns sorted within each group of m, groups ordered by
 * their first column. Two perms with the same kept score for every matrix map to the same form. */
void nmp_perm_canonical(int32_t *perm, int64_t n, int m);

/* ------------------------------------------------------------------- rng */

/* xoshiro256** seeded through splitmix64: one seed, one stream, on any machine. */
typedef struct nmp_rng {
    uint64_t s[4];
} nmp_rng;

void nmp_rng_seed(nmp_rng *r, uint64_t seed);
uint64_t nmp_rng_next(nmp_rng *r);
double nmp_rng_uniform(nmp_rng *r);               /* [0, 1), 53 random bits */
uint64_t nmp_rng_below(nmp_rng *r, uint64_t n);   /* uniform on 0..n-1 (unbiased); n >= 1 */
double nmp_rng_normal(nmp_rng *r);                /* N(0, 1), polar method, no cached state */
void nmp_perm_random(int32_t *perm, int64_t n, nmp_rng *r); /* uniform random perm */

/* NumPy's legacy RandomState stream (MT19937, np.random.seed(s); np.random.rand(...)): doubles
 * built from two 32-bit draws, (a >> 5) * 2^26 + (b >> 6), divided by 2^53. */
typedef struct nmp_mt19937 {
    uint32_t mt[624];
    int index;
} nmp_mt19937;

void nmp_mt19937_seed(nmp_mt19937 *g, uint32_t seed);
uint32_t nmp_mt19937_next(nmp_mt19937 *g);
double nmp_mt19937_uniform(nmp_mt19937 *g);

/* --------------------------------------------------------------- problem */

typedef struct nmp_pattern {
    int n, m; /* keep n of every m consecutive weights; 1 <= n < m <= NMP_MAX_M */
} nmp_pattern;

/* Parses "2:4"; NMP_ERR_ARG with a reason in msg when malformed or out of range. */
nmp_err nmp_pattern_parse(const char *s, nmp_pattern *out, nmp_msg *msg);

typedef enum nmp_objective {
    NMP_OBJ_ABS = 0,    /* s = |w| (the default) */
    NMP_OBJ_SQ,         /* s = w^2 */
    NMP_OBJ_IMPORTANCE, /* s = |w(j, i)| * x[i], x a per-column importance >= 0 (e.g. act. norms) */
    NMP_OBJ_SALIENCY    /* s given as a full matrix >= 0 of the weights' shape */
} nmp_objective;

const char *nmp_objective_name(nmp_objective o); /* "abs", "sq", "importance", "saliency" */
nmp_err nmp_objective_parse(const char *s, nmp_objective *out);

typedef struct nmp_problem_desc {
    nmp_matrix weights;       /* rows = output channels, cols = input channels */
    nmp_pattern nm;
    nmp_objective objective;
    const float *importance;  /* cols values, for NMP_OBJ_IMPORTANCE; else ignored */
    nmp_matrix saliency;      /* for NMP_OBJ_SALIENCY: same shape as weights; else ignored */
} nmp_problem_desc;

/* An immutable problem: the saliency matrix (float32, copied column-major so each column is
 * contiguous), the pattern, and cached identity score, row bound and total. Thread-safe to share.
 * Errors: NMP_ERR_ARG (cols not divisible by m, pattern out of range, non-finite or negative
 * values, shape mismatch, values summing to more than FLT_MAX / 16), NMP_ERR_NOMEM. Release with nmp_problem_free (accepts NULL). */
typedef struct nmp_problem nmp_problem;

nmp_err nmp_problem_create(const nmp_problem_desc *d, nmp_problem **out, nmp_msg *msg);
void nmp_problem_free(nmp_problem *pb);

int64_t nmp_problem_rows(const nmp_problem *pb);
int64_t nmp_problem_cols(const nmp_problem *pb);
int64_t nmp_problem_groups(const nmp_problem *pb); /* cols / m */
nmp_pattern nmp_problem_pattern(const nmp_problem *pb);
nmp_objective nmp_problem_objective(const nmp_problem *pb);
/* Column-major saliency: s[i * rows + j] for row j, column i. Owned by pb. */
const float *nmp_problem_saliency(const nmp_problem *pb);

/* --------------------------------------------------------------- scoring */

/* kept = sum_g sum_j topn(s(j, perm[g*m .. g*m+m-1])): the saliency that survives N:M pruning
 * after permuting the columns. Accumulated in double. perm NULL = identity. */
nmp_err nmp_score(const nmp_problem *pb, const int32_t *perm, double *kept);
/* out[g] = kept saliency of group g (cols / m values). */
nmp_err nmp_score_groups(const nmp_problem *pb, const int32_t *perm, double *out);
/* D(q) = sum_j topn(s(j, q)) of one group of m source columns. */
double nmp_score_group_value(const nmp_problem *pb, const int32_t *cols);

double nmp_score_identity(const nmp_problem *pb);  /* kept score of the identity perm */
double nmp_score_total(const nmp_problem *pb);     /* sum of all saliencies (unpruned) */
/* Row bound: per row the sum of its top cols*n/m values (unstructured pruning, same density).
 * Every permutation keeps at most this. */
double nmp_score_row_bound(const nmp_problem *pb);
/* (kept - identity) / (row bound - identity); 0 when the bound equals the identity score. */
double nmp_score_efficacy(const nmp_problem *pb, double kept);

/* ------------------------------------------------------- move evaluation */

/* Cached per-(row, group) state of one permutation: for each group g and row j the sum of the n
 * largest saliencies, the n-th and the (n+1)-th largest. With it the exact change of the score
 * for a swap of two columns in different groups costs O(rows) (see nmp_eval.c), and regrouping
 * a set of groups costs O(rows * m) per new group. Not thread-safe to mutate; const calls may be
 * shared. Release with nmp_eval_free (accepts NULL). */
typedef struct nmp_eval nmp_eval;

nmp_err nmp_eval_create(const nmp_problem *pb, const int32_t *perm, nmp_eval **out);
void nmp_eval_free(nmp_eval *ev);
/* Re-point at another permutation (copied). */
void nmp_eval_reset(nmp_eval *ev, const int32_t *perm);

const nmp_problem *nmp_eval_problem(const nmp_eval *ev);
const int32_t *nmp_eval_perm(const nmp_eval *ev); /* current permutation, owned by ev */
double nmp_eval_score(const nmp_eval *ev);        /* current kept score (sum of group scores) */
double nmp_eval_group_score(const nmp_eval *ev, int64_t g);

/* Change of the kept score if slots a and b (in different groups) exchange their columns.
 * Same group: 0. */
double nmp_eval_swap_delta(const nmp_eval *ev, int64_t a, int64_t b);
/* out[x * m + y] = delta of swapping slot g*m + x with slot h*m + y, for g != h: all m*m swaps
 * between two groups, a block of rows at a time (the data stay in L1 across the m*m sums). */
void nmp_eval_pair_deltas(const nmp_eval *ev, int64_t g, int64_t h, double *out);
/* Apply the swap: updates the perm and the two groups' cached state. */
void nmp_eval_swap(nmp_eval *ev, int64_t a, int64_t b);

/* Regrouping k distinct groups: groups[0..k-1] are group indices, cols[t*m .. t*m+m-1] the source
 * columns that group groups[t] is to hold; together they must be the columns those groups hold now.
 * Returns the change of the score (new - old). */
double nmp_eval_regroup_delta(const nmp_eval *ev, const int64_t *groups, int k, const int32_t *cols);
void nmp_eval_regroup(nmp_eval *ev, const int64_t *groups, int k, const int32_t *cols);

/* ---------------------------------------------------------------- solvers */

/* A solver parameter: its name, default, range and one line of help. Lists end with { 0 }. */
typedef struct nmp_param_desc {
    const char *name;
    double def, lo, hi;
    const char *help;
} nmp_param_desc;

typedef struct nmp_progress {
    double elapsed;    /* seconds since the solve started */
    int64_t iteration; /* solver-specific count (moves, sweeps, nodes) */
    double best;       /* best kept score so far */
    double bound;      /* best proven upper bound so far (row bound if nothing better) */
    const char *phase; /* short static text, e.g. "descent", "escape", "lp" */
} nmp_progress;

/* Called now and then by long solves (at most a few times a second); a nonzero return stops the
 * search with NMP_STATUS_INTERRUPTED. */
typedef int (*nmp_progress_fn)(const nmp_progress *p, void *user);

#define NMP_MAX_PARAMS 32

/* Where a solver's search runs (nmp_params.device). The zero value is the default. */
typedef enum nmp_device {
    NMP_DEVICE_CPU = 0, /* the solvers' own CPU code (reproducible per seed and threads) */
    NMP_DEVICE_AUTO,    /* the GPU where this build has CUDA, a device is present and the size
                         * pays (the NMP_DEVICE_AUTO_* column counts below); else the CPU */
    NMP_DEVICE_GPU,     /* the GPU backend; NMP_ERR_GPU without a device, NMP_ERR_UNSUPPORTED in
                         * a build without CUDA or for a solver or shape it does not serve */
    NMP_DEVICE_REF,     /* the device search with the backend's CPU reference entries: the GPU
                         * code path run on the CPU (tests; checking a GPU run; slow) */
} nmp_device;

#define NMP_DEVICE_AUTO_COLS 1024      /* osg's (and auto's) device search from here */
#define NMP_DEVICE_AUTO_PRICE_COLS 96  /* colgen's and bnp's device pricing from here */

/* "cpu", "auto", "gpu", "ref" */
const char *nmp_device_name(nmp_device d);
/* The device of a name above; NMP_ERR_ARG "device 'x': expected cpu, auto, gpu or ref". */
nmp_err nmp_device_parse(const char *name, nmp_device *out, nmp_msg *msg);

typedef struct nmp_params {
    uint64_t seed;       /* all randomness derives from it */
    double time_limit;   /* seconds; <= 0 means none */
    int threads;         /* 0: OpenMP's default; results are reproducible per (seed, threads) */
    int verbose;         /* let an external solver (GLPK) print */
    nmp_progress_fn progress;
    void *progress_user;
    nmp_device device;   /* where the search runs: osg's windows, colgen/bnp pricing (nmp_device) */
    int count;           /* solver-specific values set by name */
    struct {
        char name[32];
        double value;
    } values[NMP_MAX_PARAMS];
} nmp_params;

void nmp_params_init(nmp_params *p); /* seed 0, no time limit, no values */
/* Sets (or replaces) a named value. NMP_ERR_ARG if the name is too long or the table is full. */
nmp_err nmp_params_set(nmp_params *p, const char *name, double value);
/* Parses "key=value" and sets it. */
nmp_err nmp_params_parse(nmp_params *p, const char *key_value, nmp_msg *msg);

typedef struct nmp_result {
    nmp_status status;
    double score;       /* kept score of the returned perm (recomputed) */
    double start_score; /* kept score of the start perm */
    double bound;       /* best proven upper bound on the optimum (>= score) */
    double seconds;     /* wall time of the solve */
    int64_t iterations; /* solver-specific count */
    int64_t nodes;      /* branch-and-bound nodes, 0 for heuristics */
} nmp_result;

/* A solver plugs in through this table (solvers/nmp_<name>.c exports only its ops). create checks
 * the problem and allocates all scratch; solve never allocates in its inner loops; it reads the
 * start perm from perm and writes its best into it; it never returns a perm worse than the start.
 * create may fill msg with a reason for a refusal (e.g. dp's column limit). */
typedef struct nmp_solver_ops {
    const char *name;
    const char *summary;
    const nmp_param_desc *params;
    nmp_err (*create)(const nmp_problem *pb, const nmp_params *par, void **state, nmp_msg *msg);
    nmp_err (*solve)(void *state, int32_t *perm, nmp_result *res);
    void (*destroy)(void *state);
    int device; /* 1: has a device search (par->device); others refuse gpu and ref */
} nmp_solver_ops;

/* NULL-terminated list of the solvers in this build. */
const nmp_solver_ops *const *nmp_solver_list(void);
const nmp_solver_ops *nmp_solver_find(const char *name); /* NULL when unknown */

/* Value of parameter `name` of a solver: the one set in par, else the default. */
double nmp_param_get(const nmp_params *par, const nmp_param_desc *descs, const char *name);
/* NMP_ERR_ARG when par sets a name the solver does not have or a value out of its range. */
nmp_err nmp_params_check(const nmp_params *par, const nmp_solver_ops *ops, nmp_msg *msg);

/* Runs a solver end to end: checks the parameters, creates, solves, destroys, validates the
 * returned perm and recomputes its score. perm (cols entries) holds the start on entry (or is
 * set to the identity when start_is_identity is nonzero) and the best perm on return. */
nmp_err nmp_solve(const nmp_problem *pb, const char *solver, const nmp_params *par, int32_t *perm,
                  int start_is_identity, nmp_result *res, nmp_msg *msg);

/* ------------------------------------------------------------------ .npy */

/* Reads a 2-D float32/float64/float16 .npy (C or Fortran order, little-endian or '|') into a
 * row-major float32 array. NMP_ERR_IO / NMP_ERR_FORMAT with msg naming the file and reason. */
nmp_err nmp_npy_read_matrix(const char *path, nmp_array *out, nmp_msg *msg);
/* Reads a 1-D float .npy (e.g. per-column importance). *out is released with nmp_free. */
nmp_err nmp_npy_read_vector(const char *path, float **out, int64_t *len, nmp_msg *msg);
/* Reads a 1-D integer .npy (int32/int64/uint32/...) as a permutation; does not validate it.
 * *out is released with nmp_free. */
nmp_err nmp_npy_read_perm(const char *path, int32_t **out, int64_t *len, nmp_msg *msg);
/* Writes atomically (temporary file in the same folder, then rename): a float32 C-order matrix;
 * a 1-D int64 permutation. */
nmp_err nmp_npy_write_matrix(const char *path, const nmp_matrix *a, nmp_msg *msg);
nmp_err nmp_npy_write_perm(const char *path, const int32_t *perm, int64_t n, nmp_msg *msg);

/* ----------------------------------------------------------- safetensors */

/* A safetensors file opened read-only with mmap: 8-byte little-endian header length, a JSON
 * header, then the byte buffer. Validated as the reference reader does: header <= 100 MB, no
 * duplicate keys, offsets contiguous from 0 without holes, overlaps or trailing bytes, byte size
 * = shape product x dtype size (overflow-checked), __metadata__ a string-to-string map. The
 * input is never modified. Release with nmp_st_close (accepts NULL).
 *
 * Sharded checkpoints: a path that is a folder (holding model.safetensors.index.json) or that
 * ends in ".json" is read as an index, {"metadata": {...}, "weight_map": {tensor: file}}, and
 * the nmp_st spans all its shards (each validated as above); every other call works unchanged
 * (a tensor knows its shard). The index is refused (NMP_ERR_FORMAT, one line naming the index,
 * the tensor and the files) when a shard name is not a plain file name in the index's folder
 * (no '/', no ".."), a weight_map entry is not in the shard it names, a shard holds a tensor the
 * weight_map does not list (or lists under another shard), or a tensor is in two shards; a
 * missing shard is NMP_ERR_IO. Shards are ordered by file name.
 *
 * Memory: tensors are read in place from the mapping, so pages count as resident once touched;
 * the writer (nmp_st_write) gives back each input tensor's pages once written. */
typedef struct nmp_st nmp_st;

#define NMP_ST_MAX_DIMS 8

typedef struct nmp_st_tensor {
    const char *name;        /* owned by the nmp_st */
    char dtype[16];          /* "F32", "F16", "BF16", "F64", "I8", "U8", "F8_E4M3", "BOOL", ... */
    int ndim;
    int64_t shape[NMP_ST_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end;     /* byte offsets into the data buffer of its shard */
    int64_t shard;           /* the file holding it (nmp_st_shard_path); 0 for a single file */
} nmp_st_tensor;

nmp_err nmp_st_open(const char *path, nmp_st **out, nmp_msg *msg);
void nmp_st_close(nmp_st *st);
const char *nmp_st_path(const nmp_st *st);   /* the file, or the index of a sharded one */
int64_t nmp_st_count(const nmp_st *st);
/* Tensors in file (shard, then offset) order, k = 0 .. count-1. */
const nmp_st_tensor *nmp_st_tensor_at(const nmp_st *st, int64_t k);
const nmp_st_tensor *nmp_st_find(const nmp_st *st, const char *name); /* NULL if absent */
const void *nmp_st_bytes(const nmp_st *st, const nmp_st_tensor *t);   /* t's raw bytes */
/* The __metadata__ of the (first) file. */
int64_t nmp_st_metadata_count(const nmp_st *st);
void nmp_st_metadata_at(const nmp_st *st, int64_t k, const char **key, const char **value);
/* 1 when opened from an index; the number of files (1 for a single file) and their paths. */
int nmp_st_is_sharded(const nmp_st *st);
int64_t nmp_st_shard_count(const nmp_st *st);
const char *nmp_st_shard_path(const nmp_st *st, int64_t k);
/* 1 if the dtype is F32, F16, BF16 or F64 (readable as float). */
int nmp_st_dtype_is_float(const char *dtype);
/* Size in bytes of one element of dtype; 0 if unknown. */
size_t nmp_st_dtype_size(const char *dtype);
/* Converts a float tensor to float32 (numel values, row-major); NMP_ERR_FORMAT for other dtypes. */
nmp_err nmp_st_read_f32(const nmp_st *st, const nmp_st_tensor *t, float *out, nmp_msg *msg);
/* Converts numel float32 values to t's dtype into dst (t->end - t->begin bytes). */
nmp_err nmp_st_encode_f32(const nmp_st_tensor *t, const float *in, void *dst, nmp_msg *msg);

/* Called once per tensor, in file order, while writing: fill dst (the tensor's bytes, already a
 * copy of the input's) in place to change a tensor, or leave it as is. Nonzero nmp_err aborts. */
typedef nmp_err (*nmp_st_fill_fn)(void *user, const nmp_st_tensor *t, void *dst, nmp_msg *msg);

/* Writes a file with the same tensors, order, dtypes and shapes as `in`, the metadata of `in` plus
 * "format": "pt", header padded with spaces to a multiple of 8; tensor bytes are streamed one at a
 * time through fill (may be NULL: a plain copy). Atomic: temporary file + rename; nothing is left
 * at path on failure. Peak extra memory: the largest tensor.
 * A sharded `in` is written to the folder path (made when missing; NMP_ERR_ARG when it is the
 * input's folder): the same shards (names, tensors, order), the files beside the input index that
 * describe the model (config.json, generation_config.json, tokenizer*, *.txt, *.model) copied,
 * and the index (same weight_map, total_size recomputed) last. Every file goes to a temporary
 * "<file>.nmperm-tmp.<pid>.XXXXXX" in path first; only when all are written and fsynced is the
 * old index removed, the other files renamed over theirs, the folder fsynced, and the new index
 * renamed in place. A failure before that leaves the folder as it was; a kill -9 or power loss
 * during the renames (microseconds) leaves a folder without an index (some files new, some old),
 * which loaders refuse; run again. */
nmp_err nmp_st_write(const nmp_st *in, const char *path, nmp_st_fill_fn fill, void *user,
                     nmp_msg *msg);

/* ------------------------------------------------- backend (CPU reference, GPU overrides) */

/* Batch scoring kernels behind one table, as BLIS's context: nmp_backend_init fills it with the
 * CPU reference (src/core/nmp_backend.c), then, in a CUDA build with a device present, gpu/
 * (gpu/nmp_device.c picks the device) replaces the entries it implements. The environment variable NMP_BACKEND=cpu forces the reference.
 * Every entry reads the problem it was opened on; perm NULL = identity. Window and pricing
 * values are float partial sums over 64 rows added in double on the CPU; the GPU sums in another
 * order, so results agree within rounding (about 1e-5 relative), and ties may pick another
 * member. */
typedef struct nmp_backend nmp_backend;
struct nmp_backend {
    const char *name;          /* "cpu" or "cuda" */
    const nmp_problem *pb;
    void *dev;                 /* device state of gpu/ (problem uploaded once); NULL on the CPU */
    void (*release)(nmp_backend *be); /* frees dev and restores the reference; NULL on the CPU */
    /* out[g] = kept saliency of group g (nmp_score_groups). */
    nmp_err (*score_groups)(const nmp_backend *be, const int32_t *perm, double *out);
    /* out[t] = change of the kept score if slots a and b[t] exchange columns (0 for the same
     * group), for t < count: one slot against many. */
    nmp_err (*swap_deltas)(const nmp_backend *be, const int32_t *perm, int64_t a, const int64_t *b,
                           int64_t count, double *out);
    /* For every pair of groups g < h (pair index p = g*G - g*(g+1)/2 + h-g-1, G groups): the best
     * split of their 2m columns into two groups of m. mask[p] bit t (t < 2m) puts window column t
     * (perm[g*m + t] for t < m, else perm[h*m + t-m]) into the first group; bit 0 is always set;
     * the first maximum in increasing mask order wins. gain[p] = best - current >= 0. Needs
     * 2m <= 16 (NMP_ERR_UNSUPPORTED otherwise). This is the work of apex's stripe-pair kernels. */
    nmp_err (*window_repartitions)(const nmp_backend *be, const int32_t *perm, double *gain,
                                   uint32_t *mask);
    /* Column-generation pricing by enumeration: for each column i, the m-subset S with smallest
     * member i that maximises rc(S) = D(S) - sum_{s in S} y[s]; rc[i] (-inf when i > cols - m)
     * and its members ascending in cols[i*m .. i*m+m-1] (lexicographically first among ties).
     * NMP_ERR_UNSUPPORTED when C(cols, m) exceeds 2^40 or m > 8. */
    nmp_err (*pricing)(const nmp_backend *be, const double *y, double *rc, int32_t *cols);
};

/* device: NULL or "auto" (the GPU when this build has CUDA and a device is present, unless
 * NMP_BACKEND=cpu), "cpu" (the reference), "gpu" (NMP_ERR_GPU when no device; NMP_ERR_UNSUPPORTED
 * when built without CUDA). pb must outlive be. Release with nmp_backend_release. */
nmp_err nmp_backend_init(nmp_backend *be, const nmp_problem *pb, const char *device,
                         nmp_msg *msg);
void nmp_backend_init_cpu(nmp_backend *be, const nmp_problem *pb); /* the reference only */
void nmp_backend_release(nmp_backend *be); /* frees device state; accepts a zeroed be */

/* Number of masks the window entry tries for group size m: C(2m-1, m-1) (35 for m = 4). */
int64_t nmp_backend_split_count(int m);
/* Value of one window split: sum_j topn(first group) + topn(second group) (in double). */
double nmp_backend_split_value(const nmp_problem *pb, const int32_t *perm, int64_t g, int64_t h,
                              uint32_t mask);

/* ------------------------------------------- 2:4 layers: CPU references of the GPU evaluator */

/* out (rows x cols, row-major) = columns of a in slot order: out(j, k) = a(j, perm[k]); perm
 * NULL = identity. NMP_ERR_ARG for an invalid perm. */
nmp_err nmp_gather_cols(const nmp_matrix *a, const int32_t *perm, float *out);
/* In place: in each row keep the n largest |w| of every m consecutive entries and zero the rest;
 * ties keep the lower index (element t survives when fewer than n others beat it). cols % m == 0
 * or NMP_ERR_ARG. The device prune computes the same rule. */
nmp_err nmp_prune_nm(float *w, int64_t rows, int64_t cols, nmp_pattern nm);
/* Number of groups of m that hold more than n nonzeros (0: a valid N:M matrix). */
int64_t nmp_prune_violations(const float *w, int64_t rows, int64_t cols, nmp_pattern nm);

/* Differences of y against a reference (count values, read in double). */
typedef struct nmp_diff {
    double max_abs;     /* max |y - ref| */
    double max_ref;     /* max |ref| */
    double rel_fro;     /* ||y - ref||_F / ||ref||_F (0 when ref is all zero and y == ref) */
    int64_t nonfinite;  /* entries of y that are NaN or infinite */
} nmp_diff;
nmp_err nmp_diff_compute(const float *y, const float *ref, int64_t count, nmp_diff *out);

/* Y = X W^T for row-major X (t x k) and W (n x k) into Y (t x n), in double: the reference of
 * the device GEMMs on small shapes. */
nmp_err nmp_gemm_xwt(const float *x, const float *w, int64_t t, int64_t n, int64_t k, float *y);

/* ------------------------------------------------------------- GPU evaluator (gpu/) */

typedef enum nmp_dtype {
    NMP_DTYPE_F16 = 0, NMP_DTYPE_BF16, NMP_DTYPE_I8, NMP_DTYPE_E4M3, NMP_DTYPE_F32
} nmp_dtype;
const char *nmp_dtype_name(nmp_dtype d); /* "fp16", "bf16", "int8", "e4m3", "fp32" */
/* Parses those names (and "f16", "half", "i8", "fp8"); NMP_ERR_ARG when unknown. fp32/tf32 are
 * parsed but refused by the sparse GEMM: in cuSPARSELt they are 1:2, not 2:4. */
nmp_err nmp_dtype_parse(const char *s, nmp_dtype *out);
/* Largest |sparse - dense| / max |dense| accepted for a dtype's outputs (fp16 out, bf16 out,
 * int32 out, bf16 out): differences come from summation order and output rounding only. */
double nmp_dtype_tolerance(nmp_dtype d);

/* CPU reference of the evaluator's error columns. The layer Y = X W^T (X: tokens x k inputs,
 * W: n x k) is pruned N:M in natural column order (identity) and after gathering W's columns by
 * perm (X's columns gathered the same way, so the unpruned product is unchanged); each pruned
 * output is compared with the unpruned one. nmp_gpu_spmm_eval computes the same columns with
 * fp32 GEMMs on the device (errors = 1) on the same inputs. */
typedef struct nmp_layer_err {
    double err_identity, err_perm;   /* ||Y_pruned - Y||_F / ||Y||_F */
    double kept_identity, kept_perm; /* sum |w| the prune keeps */
    int64_t violations;              /* groups over N nonzeros after the prunes (0) */
} nmp_layer_err;

/* x (rows x cols, row-major) = N(0, 1) draws of nmp_rng seeded with seed, in row-major order: the
 * token inputs of the evaluator (nmp_gpu_spmm_eval draws X the same way when d->x is NULL). */
nmp_err nmp_layer_inputs(int64_t rows, int64_t cols, uint64_t seed, float *x);
/* The error columns above for w (any view: a transposed one for weights stored in x out) and x
 * (tokens x w->cols, row-major); perm NULL = identity. Products accumulate in double and are
 * rounded to fp32. NMP_ERR_ARG for a bad shape or perm (w->cols % nm.m != 0), NMP_ERR_NOMEM. */
nmp_err nmp_layer_error(const nmp_matrix *w, const float *x, int64_t tokens, const int32_t *perm,
                        nmp_pattern nm, nmp_layer_err *out);

/* What this build and machine offer. nmp_gpu_count is 0 in a build without CUDA. */
int nmp_gpu_built(void);          /* 1 when compiled with CUDA */
int nmp_gpu_has_cusparselt(void); /* 1 when compiled with cuSPARSELt's header (loaded at use) */
int nmp_gpu_count(void);          /* CUDA devices present (0 on any error) */
/* 1 once a sticky CUDA error (an illegal memory access, a launch failure) has left this
 * process's CUDA context unusable: every later device call would fail, so the GPU entries refuse
 * with NMP_ERR_GPU; only a fresh process can use the device again. */
int nmp_gpu_is_lost(void);

/* A CUDA build links no GPU library: the CUDA runtime is linked statically (it loads the driver,
 * libcuda.so.1, itself) and cuBLASLt and cuSPARSELt are loaded with dlopen at first GPU use, so
 * every CPU command runs where none is installed. nmp_gpu_libs_load loads them (once per process;
 * after a failure a later call searches again), looking for each in this order:
 *   1. dir (may be NULL): dir/<file>, dir/lib/<file>
 *   2. NMP_CUBLASLT / NMP_CUSPARSELT: the library's file or its folder
 *   3. pip wheels (nvidia/cu13/lib, nvidia/cusparselt/lib, nvidia/cublas/lib) under the
 *      site-packages folders in NMP_PYTHON_SITE (colon-separated; when set, only those), else
 *      under PYTHONPATH, $VIRTUAL_ENV, $CONDA_PREFIX, the python3 of each PATH folder, ~/.local,
 *      the build machine's python3 and /usr/local/lib/python3.X, /usr/lib/python3
 *   4. the system: dlopen's own search (LD_LIBRARY_PATH, ld.so.cache), $CUDA_HOME/lib64,
 *      $CUDA_PATH/lib64, /usr/local/cuda/lib64
 * NMP_ERR_UNSUPPORTED with one line in msg naming what is missing and how to install it ("pip
 * install nvidia-cusparselt-cu13"); NMP_ERR_UNSUPPORTED "built without CUDA" otherwise. */
nmp_err nmp_gpu_libs_load(const char *dir, nmp_msg *msg);
/* Where the libraries were found, one line ("cuBLASLt <path>; cuSPARSELt <path>"). */
void nmp_gpu_libs_describe(char *buf, size_t len);
/* One line naming device 0, e.g. "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)".
 * NMP_ERR_GPU when none. */
nmp_err nmp_gpu_describe(char *buf, size_t len);

/* One layer Y = X W^T (X: tokens x k activations, W: n x k weights) on the device: gather
 * the columns of W and X by perm, prune W 2:4 by magnitude, check the pattern
 * (cusparseLtSpMMAPruneCheck), compress, pick cuSPARSELt's algorithm (cusparseLtMatmulSearch),
 * then time the sparse GEMM and the dense cuBLAS GEMM on the pruned W (CUDA events, warm-up,
 * median of reps). */
typedef struct nmp_spmm_desc {
    const float *w;      /* n x k row-major; NULL: random N(0, 1) from seed + 1 */
    const float *x;      /* tokens x k row-major; NULL: nmp_layer_inputs(tokens, k, seed) */
    const int32_t *perm; /* k entries, NULL = identity */
    int64_t n, k, tokens;
    nmp_dtype dtype;
    int warmup, reps;    /* 0: 10 and 50 */
    uint64_t seed;
    int errors;          /* also compute fp32 output errors of the pruned layer (3 fp32 GEMMs) */
} nmp_spmm_desc;

typedef struct nmp_spmm_report {
    char device[160];
    double sparse_ms, dense_ms;       /* medians */
    double sparse_tflops, dense_tflops; /* 2 n k tokens / time (dense-equivalent flops) */
    double speedup;                   /* dense_ms / sparse_ms */
    nmp_diff sparse_vs_dense;         /* sparse result against dense cuBLAS on the pruned W */
    double tolerance;                 /* nmp_dtype_tolerance(dtype) */
    int within_tolerance;             /* max_abs <= tolerance * max_ref and no NaN */
    int prune_valid;                  /* cusparseLtSpMMAPruneCheck accepted the pruned W */
    int64_t violations;               /* groups of 4 with > 2 nonzeros after the device prune */
    int alg_id;                       /* algorithm cusparseLtMatmulSearch picked */
    size_t compressed_bytes;
    /* with errors: rel. Frobenius error of the pruned layer's fp32 output against the unpruned
     * X W^T, without (identity) and with the permutation; -1 when not computed */
    double err_identity, err_perm;
    double kept_identity, kept_perm;  /* sum |W| kept by the prune, identity and permuted */
    int split_k;                      /* split-K of the configuration the search kept */
    /* bytes of cuSPARSELt workspace: what the plan asked for at init, what the search was given
     * (the largest any split-K setting asks for, at least 64 MiB), what the kept configuration
     * asks for after the search (the timed runs get max(search, final)) */
    size_t ws_init, ws_search, ws_final;
    int device_lost;                  /* the failure left the CUDA context unusable */
} nmp_spmm_report;

/* NMP_ERR_GPU (reason in msg) without a device or on a CUDA failure (then r->device_lost says
 * whether the context survived; once lost, every later call refuses); NMP_ERR_UNSUPPORTED when
 * the GPU libraries cannot be loaded (nmp_gpu_libs_load's reason) or without cuSPARSELt in this
 * build, or for fp32 (1:2 in cuSPARSELt); NMP_ERR_ARG for shapes cuSPARSELt refuses (n, k,
 * tokens multiples of 16, of 32 for int8 and e4m3). Random W and X when d->w or d->x is NULL:
 * nmp_layer_inputs(n, k, seed + 1) and nmp_layer_inputs(tokens, k, seed). */
nmp_err nmp_gpu_spmm_eval(const nmp_spmm_desc *d, nmp_spmm_report *r, nmp_msg *msg);


/* =====================================================================================
 * Checkpoints. Stable part: plans (nmp_plan_infer / nmp_plan_read / nmp_plan_check) and the
 * one call that permutes a checkpoint end to end (nmp_ckpt_permute). Advanced part (marked
 * below): the per-space building blocks it is made of (scoring problem, apply, verify).
 * ===================================================================================== */

/* ------------------------------------------------- checkpoint channel spaces */

/* A channel space is one permutation of a channel dimension shared by several tensors of a
 * checkpoint. Consumers have that dimension as an input axis: their columns are permuted and they
 * are scored together (every consumer's slice stacked by rows, the channel axis as columns, all
 * other axes flattened into rows). Producers have it as an output axis and are permuted to match
 * (weight rows, biases, norm scales and shifts, BatchNorm statistics). A reference selects
 * channels offset .. offset + size - 1 of one axis of one tensor. */
typedef enum nmp_role { NMP_ROLE_CONSUMER = 0, NMP_ROLE_PRODUCER } nmp_role;

/* What a reference is in the block computed by --verify (see nmp_space_verify):
 * u = W x + b; u = (u - mean) / sqrt(var + 1e-5); u = u * scale + shift; h = act(G x + gb) * u
 * when there is a gate, else h = act(u); y_c = C_c h for every consumer c. */
typedef enum nmp_use {
    NMP_USE_WEIGHT = 0, NMP_USE_BIAS, NMP_USE_GATE, NMP_USE_GATE_BIAS, NMP_USE_SCALE,
    NMP_USE_SHIFT, NMP_USE_MEAN, NMP_USE_VAR
} nmp_use;

typedef enum nmp_act { NMP_ACT_IDENTITY = 0, NMP_ACT_RELU, NMP_ACT_GELU, NMP_ACT_SILU } nmp_act;

typedef struct nmp_ref {
    char *tensor;   /* owned by the plan */
    nmp_role role;
    nmp_use use;
    int axis;
    int64_t offset;
} nmp_ref;

/* What a solve found for one space (filled by nmp_plan_solve; all 0 when not solved). */
typedef struct nmp_space_stats {
    int64_t rows, cols;
    char solver[32];
    nmp_status status;
    double identity, kept, bound, row_bound, efficacy, seconds;
    double verify_rel;  /* max relative difference found by verification; < 0: not verified */
} nmp_space_stats;

typedef struct nmp_space {
    char *name;      /* owned */
    int64_t size;    /* channels in the space */
    nmp_act act;
    int64_t nrefs;
    nmp_ref *refs;   /* owned */
    char *skip;      /* owned; non-NULL: the space is left alone, for this reason */
    int32_t *perm;   /* owned; size entries, NULL = identity */
    int solved;      /* nonzero: stats are meaningful */
    nmp_space_stats stats;
} nmp_space;

/* A plan: the channel spaces of one checkpoint. Release with nmp_plan_free (accepts NULL). */
typedef struct nmp_plan {
    char *arch;      /* owned; "bert", "gpt2", "llama", "resnet", or what a plan file says */
    nmp_pattern nm;  /* the pattern the perms were found for; 0:0 when none yet */
    int64_t count;
    nmp_space *spaces;
    int heads;       /* attention heads when known (nmp_plan_infer; set it for a plan read from
                        a file), else 0; nmp_plan_check then keeps value spaces within a head */
    int kv_heads;    /* key/value heads (0: = heads) */
    /* filled by nmp_ckpt_permute for its report (0 / NULL otherwise): */
    double time_limit;      /* the solve's wall-time limit per space; > 0: the perms depend on
                               the machine's speed (not reproducible); 0: fixed work */
    uint64_t seed;          /* the solve's seed */
    int threads;            /* the threads it ran with (0 asked for OpenMP's default: resolved);
                               the perms are reproducible per (seed, threads) */
    int objective;          /* the nmp_saliency_kind the spaces were scored (and pruned) with */
    int64_t npruned;
    struct nmp_pruned *pruned; /* owned; what --prune zeroed, one entry per tensor */
} nmp_plan;

/* One tensor pruned by nmp_ckpt_permute: name, shape as rows x cols (cols = the input axis the
 * N:M groups run along), the fraction of nonzero weights after pruning and of sum |w| kept. */
typedef struct nmp_pruned {
    char *tensor;   /* owned by the plan */
    int64_t rows, cols;
    double density, kept_abs;
} nmp_pruned;

/* The skip reason of "<layer>attn_v" spaces inferred without head counts. */
#define NMP_PLAN_NO_HEADS "attention heads unknown: the value path is not split into heads"

void nmp_plan_free(nmp_plan *plan);
const char *nmp_act_name(nmp_act a);   /* "identity", "relu", "gelu", "silu" */
const char *nmp_use_name(nmp_use u);   /* "weight", "bias", "gate", "gate_bias", "scale", ... */

typedef struct nmp_plan_opts {
    const char *arch;   /* "auto" (or NULL), "bert", "gpt2", "llama", "resnet" */
    int heads;          /* attention heads, 0 when unknown (then one skipped space
                           "<layer>attn_v" per layer, reason NMP_PLAN_NO_HEADS) */
    int kv_heads;       /* key/value heads (GQA), 0 = heads */
    int residual;       /* nonzero: also the residual stream (bert, gpt2, llama), off by default */
} nmp_plan_opts;

/* Infers the channel spaces of a checkpoint from its tensor names. Spaces whose tensors are not
 * float get a skip reason. With o->residual, one more space "residual" (last) of the hidden
 * size: every weight reading the stream is a consumer (query/key/value, MLP inputs, pooler,
 * LM head), every tensor writing or normalising it a producer (embeddings, block output
 * projections and their biases, every LayerNorm/RMSNorm scale and shift); float tensors outside
 * the layers that the preset does not know and that have a hidden-size axis are refused.
 * NMP_ERR_FORMAT (reason in msg) when the arch is not recognised or a coupled tensor is missing
 * or misshaped; NMP_ERR_ARG for an unknown arch name (or residual with resnet); NMP_ERR_NOMEM. */
nmp_err nmp_plan_infer(const nmp_st *st, const nmp_plan_opts *o, nmp_plan **out, nmp_msg *msg);

/* Reads a plan (or a report, which is a plan with perms and stats) from a JSON file; perms given
 * in the file are read and validated as bijections. NMP_ERR_IO, NMP_ERR_FORMAT ("<file>: <what>"),
 * NMP_ERR_NOMEM. */
nmp_err nmp_plan_read(const char *path, nmp_plan **out, nmp_msg *msg);
/* The plan as JSON text (with perms and stats where present); *text released with nmp_free. */
nmp_err nmp_plan_dumps(const nmp_plan *plan, char **text);
/* Writes nmp_plan_dumps's text atomically. */
nmp_err nmp_plan_write(const nmp_plan *plan, const char *path, nmp_msg *msg);

/* Checks every space that is not skipped against the checkpoint: tensors exist and are float,
 * axes in range, offset + size within the axis, at least one consumer and one producer; a
 * producer "<p>weight" whose "<p>bias" (1-D, as many channels) exists has that bias in the same
 * space at the same offset; with plan->heads, attention value spaces (v_proj / value / c_attn
 * rows, o_proj / output.dense / c_proj columns) stay inside one key/value head; when a preset
 * recognises the checkpoint (nmp_plan_infer with the plan's arch and heads, else auto), a space
 * that touches the channels of an inferred space holds all of that space's tensors, shifted
 * alike (a gate left out of a gated MLP is refused). Then marks spaces whose size is not a
 * multiple of nm.m or is below 2 * nm.m as skipped. Errors: NMP_ERR_FORMAT with
 * "<file>: <tensor>: <reason>" in msg; NMP_ERR_NOMEM. */
nmp_err nmp_plan_check(nmp_plan *plan, const nmp_st *st, nmp_pattern nm, nmp_msg *msg);

/* Every value of every float tensor an active space references is finite, else NMP_ERR_FORMAT
 * "<file>: <tensor>: NaN at index k ([i, j]) (space s)" for the first one (flat index, then the
 * multi-index). NMP_ERR_NOMEM. */
nmp_err nmp_plan_check_values(const nmp_plan *plan, const nmp_st *st, nmp_msg *msg);

/* ------------------------------------------------- checkpoint permute: one call */

/* Verification: on VERIFY_SAMPLES random inputs (float64) each permuted block must agree with
 * the original within NMP_VERIFY_TOL (max |difference| / max |original output|); a permutation
 * only reorders sums of the same products, so anything above is a wrong coupling. */
#define NMP_VERIFY_TOL 1e-9
#define NMP_VERIFY_SAMPLES 4

/* Where nmp_ckpt_permute (or nmp_plan_solve) is: called when each space of a stage starts, before
 * each tensor is written, and during a solve a few times a second. A nonzero return stops the
 * call: nothing is written, the old destination and report are left as they were, and the
 * result says interrupted. The library installs no signal handlers: a program that wants Ctrl-C
 * or SIGTERM to stop cleanly sets a flag in its handler and returns it from here. */
typedef struct nmp_ckpt_progress {
    const char *stage;  /* "solve", "verify" or "write" (static text) */
    int64_t space;      /* index in plan->spaces of the space at work; -1 for none */
    int64_t count;      /* plan->count */
    const char *name;   /* that space's name, "" for none */
    double elapsed;     /* seconds since this stage started */
    const char *file;   /* "write" and "verify" of the written file: the temporary being
                           written or checked before it replaces the destination; else NULL */
} nmp_ckpt_progress;

typedef int (*nmp_ckpt_progress_fn)(const nmp_ckpt_progress *p, void *user);

/* Saliency of a checkpoint weight W (rows j = output channels, cols c = input channels), with
 * a[c] = ||x_c||_2, the norm of input channel c over calibration tokens (an activations file,
 * docs/activations.md):
 *   abs    s = |W(j, c)|
 *   wanda  s = |W(j, c)| * a[c]                                     (Sun et al., 2023)
 *   ria    s = (|W(j, c)| / sum_k |W(j, k)| + |W(j, c)| / sum_k |W(k, c)|) * sqrt(a[c])
 *                                                                   (Zhang et al., ICLR 2024)
 * The sums run over the whole tensor (all of its input channels, all of its output rows). */
typedef enum nmp_saliency_kind { NMP_SAL_ABS = 0, NMP_SAL_WANDA, NMP_SAL_RIA } nmp_saliency_kind;

typedef struct nmp_saliency {
    nmp_saliency_kind kind;
    const nmp_st *acts; /* wanda, ria: the activations file (one F32/F16/BF16/F64 vector per
                           weight, named as the weight, as long as its input axis); else NULL */
} nmp_saliency;

const char *nmp_saliency_name(nmp_saliency_kind k); /* "abs", "wanda", "ria" */
nmp_err nmp_saliency_parse(const char *s, nmp_saliency_kind *out); /* NMP_ERR_ARG if unknown */

/* What --prune zeroes (nmp_permute_opts.prune). */
enum {
    NMP_PRUNE_NONE = 0,
    NMP_PRUNE_SPACES = 1, /* the consumers' slices of every active space */
    NMP_PRUNE_ALL = 2     /* every 2-D float weight whose input axis divides by m (axis 1; axis
                             0 for gpt2's Conv1D), unless its name matches an exclude pattern */
};

/* The default excludes of NMP_PRUNE_ALL (fnmatch globs on tensor names): embeddings (token,
 * position, type) and the LM head, which 2:4 deployments keep dense. NULL-terminated. */
extern const char *const nmp_prune_exclude_default[];

/* The solve budget of permute without a time limit: auto's "effort" (fixed work per space,
 * scaled by its size by auto itself), unless par sets one. */
#define NMP_PERMUTE_EFFORT 0.015

typedef struct nmp_permute_opts {
    nmp_pattern nm;      /* pattern the spaces are solved and pruned for (default 2:4) */
    int solve;           /* nonzero (default): solve every active space, replacing its perm; 0:
                            apply the perms the plan holds (every active space needs one) */
    const char *solver;  /* NULL (default): "auto" when this build has it, else "swap" */
    nmp_params par;      /* seed (solvers and verification), time_limit per space (its
                            problem's build included: a build that uses it up leaves the
                            identity, status NMP_STATUS_TIME_LIMIT), threads; its progress
                            fields are ignored (see progress below) */
    int prune;           /* NMP_PRUNE_*: also zero the N:M-pruned weights (by o->saliency) */
    int verify;          /* check every space (NMP_VERIFY_TOL) before the output is committed */
    const char *report;  /* NULL or a path: the report (nmp_plan_write's JSON, with perms and
                            stats) is written there, committed right after the checkpoint */
    nmp_ckpt_progress_fn progress; /* NULL: none */
    void *progress_user;
    nmp_saliency saliency;       /* what the spaces are scored and pruned by (default abs) */
    const char *const *prune_exclude; /* NMP_PRUNE_ALL: more globs to exclude (beyond
                                         nmp_prune_exclude_default), prune_nexclude of them */
    int prune_nexclude;
    double effort;               /* auto's effort when par sets none and has no time limit
                                    (default NMP_PERMUTE_EFFORT) */
} nmp_permute_opts;

void nmp_permute_opts_init(nmp_permute_opts *o); /* the defaults above, nmp_params_init */

typedef struct nmp_permute_result {
    int interrupted;       /* the progress callback stopped the call: nothing was written */
    double solve_seconds;  /* wall time of the solves (0 without solving) */
    double verify_seconds; /* wall time of verification */
    double seconds;        /* the whole call */
    double verify_max_rel; /* largest relative difference verification found; -1: not run */
} nmp_permute_result;

/* Solves every active space of a checked plan (nmp_plan_check with o->nm): builds its scoring
 * problem (nmp_space_problem), runs o->solver from the identity, stores perm and stats, and sets
 * plan->nm. *interrupted = 1 (NMP_OK) when o->progress stopped it; the perms are then partial.
 * Errors: those of nmp_space_problem and nmp_solve (msg names the space). */
nmp_err nmp_plan_solve(const nmp_st *st, nmp_plan *plan, const nmp_permute_opts *o,
                       int *interrupted, nmp_msg *msg);

/* Permutes checkpoint `in` by a checked plan into path, in this order: refuse non-finite values
 * (nmp_plan_check_values), solve (o->solve), with prune and verify verify the perms on `in`,
 * write a temporary beside path ("<path>.nmperm-tmp.<pid>.XXXXXX"), without prune and with
 * verify verify that temporary against `in` (every block computed from the original tensors and
 * from the written ones), write the report's temporary, then rename the checkpoint over path and
 * the report over o->report. Any failure or a stop by the callback removes the temporaries and
 * leaves path and o->report as they were (only kill -9 or a crash can leave a temporary; the
 * next write of the same path removes it). A failed verification is NMP_ERR_INTERNAL ("space s:
 * the permuted block differs ..."): a bug or a corrupted write, never the caller's input. The
 * stats of each space (verify_rel too) are stored in the plan.
 * A sharded `in` (nmp_st_is_sharded) is written to the folder path as nmp_st_write describes
 * (same shards, companion files, index last; NMP_ERR_ARG when path is the input's folder): every
 * shard goes to a temporary, verification reads the temporaries as one sharded checkpoint (a
 * space may span shards), and only then are they renamed, the index last; the progress `file`
 * is the first shard's temporary. Resident memory: mapped pages are given back after each space
 * (solve, verify) and each written tensor, so the peak is about one space's tensors (input and
 * output) plus its scoring problem, well under the largest shard plus twice the largest tensor. */
nmp_err nmp_ckpt_permute(const nmp_st *in, nmp_plan *plan, const nmp_permute_opts *o,
                         const char *path, nmp_permute_result *res, nmp_msg *msg);

/* ------------------------------------------ advanced: the building blocks of nmp_ckpt_permute */

/* The scoring problem of a space (objective abs): every consumer's slice, stacked by rows.
 * Release with nmp_problem_free. */
nmp_err nmp_space_problem(const nmp_st *st, const nmp_space *sp, nmp_pattern nm,
                          nmp_problem **out, nmp_msg *msg);
/* The same with a saliency (nmp_saliency): each consumer's slice scored by sal, the activation
 * vector of a consumer read at the tensor's name. NMP_ERR_FORMAT "<acts>: <tensor>: no entry
 * (consumer of space s)" or "... N values, expected C" when the file does not fit. */
nmp_err nmp_space_problem_sal(const nmp_st *st, const nmp_space *sp, nmp_pattern nm,
                              const nmp_saliency *sal, nmp_problem **out, nmp_msg *msg);

/* Writes `in` to path with the perm of every space that has one applied to all its references,
 * and with prune, the consumers' slices pruned to N:M (the smallest |w| of every group of m
 * consecutive channels zeroed; each group is then checked to hold at most n nonzeros).
 * Untouched tensors are byte-identical. Atomic (nmp_st_write). */
nmp_err nmp_plan_apply(const nmp_st *in, const nmp_plan *plan, int prune, nmp_pattern nm,
                       const char *path, nmp_msg *msg);

/* Checks on `samples` random inputs (float64, seeded) that the block of space plan->spaces[self]
 * computes the same on checkpoint a as on checkpoint b. A space with exactly one producer weight
 * is checked as one block (nmp_use); any other space (the residual stream) tensor by tensor, x'
 * being x permuted by the space: a consumer W gives W_b x' == W_a x, a producer weight W gives
 * (W_b q) == (W_a q)' for random q on its other axes, and a 1-D producer t (bias, scale, shift,
 * ...) gives N(x') op t_b == (N(x) op t_a)' with N a LayerNorm over the space and op + or *,
 * i.e. LN_b(x') == P LN_a(x). With virtual_perm, b is read through the space's perm (b may then
 * be the unpermuted input itself); without, b is a file the whole plan was applied to, and the
 * permutations other spaces made to the same tensors (other axes, e.g. a conv that consumes one
 * space and produces the next, or o_proj: head columns, residual rows) are undone when reading
 * it. *max_rel gets max |y_a - y_b| / max |y_a| (tensor by tensor: the largest). NMP_ERR_FORMAT
 * when a tensor is missing in b or misshaped, or the space has no producer (nothing permutes
 * its input, so no check could be meaningful; nmp_plan_check refuses such spaces). */
nmp_err nmp_space_verify(const nmp_plan *plan, int64_t self, const nmp_st *a, const nmp_st *b,
                         int virtual_perm, uint64_t seed, int samples, double *max_rel,
                         nmp_msg *msg);

/* ---------------------------- batch runs (nmp_batch.c, nmp_batch_list.c, nmp_journal.c) */

/* A batch runs solvers over many inputs: every .npy matrix is one job per solver, every channel
 * space of a safetensors checkpoint one job per solver (and, when asked, one job per checkpoint
 * and solver that writes the permuted checkpoint). Jobs have stable ids, so that listing, sorting
 * and sharding give the same answer on every machine that sees the same inputs:
 *   "<rel>@<solver>"          a .npy, or a checkpoint's write job (or a checkpoint that failed)
 *   "<rel>:<space>@<solver>"  a channel space
 * with rel the input's path relative to the common folder of all inputs. */
typedef enum nmp_batch_kind {
    NMP_BATCH_MATRIX = 0, /* a .npy matrix */
    NMP_BATCH_SPACE,      /* one channel space of a checkpoint */
    NMP_BATCH_WRITE       /* write a checkpoint with the perms its space jobs found */
} nmp_batch_kind;

typedef struct nmp_batch_job {
    char *id;         /* see above; all strings owned by the list */
    char *path;       /* the input file (absolute) */
    char *rel;        /* path relative to the common root */
    char *space;      /* NMP_BATCH_SPACE: the space name; else NULL */
    char *solver;
    char *output;     /* output path relative to OUTDIR: perms/<rel>[/<space>].<solver>.npy, or
                       * checkpoints/<rel>.<solver>.safetensors for a write job */
    char *error;      /* non-NULL: the input could not be listed; the job is reported as failed */
    nmp_batch_kind kind;
    int64_t index;    /* position of the space in its checkpoint's plan (model order), else 0 */
    int64_t rows, cols; /* the scoring problem's shape; 0 when unknown */
    double cost;      /* estimated core-seconds (nmp_batch_cost) */
    int64_t group;    /* jobs of one group always land on the same shard */
} nmp_batch_job;

typedef struct nmp_batch_list {
    char *root;            /* common folder of the inputs (absolute) */
    int64_t count;
    nmp_batch_job *jobs;   /* sorted: input (natural order, "l2" before "l10"), model order,
                            * solver order as given; a write job after its spaces */
} nmp_batch_list;

typedef struct nmp_batch_opts {
    const char *const *solvers; /* solver names, in the order given */
    int nsolvers;
    nmp_pattern nm;             /* spaces smaller than 2m or not divisible by m are skipped */
    nmp_plan_opts plan;         /* for checkpoints; heads 0: from config.json beside the file */
    int write_checkpoints;      /* nonzero: add a write job per (checkpoint, solver) */
    const char *exclude;        /* a folder never walked (the output folder), or NULL */
} nmp_batch_opts;

/* Lists the jobs of inputs: files, folders (walked recursively in name order; .npy,
 * .safetensors and .safetensors.index.json files are taken, the shard files an index names are
 * not), or manifests (any other file: one path per line, relative to the manifest's folder; empty
 * lines and lines starting with '#' ignored). A path given twice counts once. A bad input (missing,
 * unreadable, malformed, no free space) becomes a job with error set, named after the input.
 * Release with nmp_batch_list_free (accepts NULL). NMP_ERR_ARG for no inputs or no solvers,
 * NMP_ERR_IO for an unreadable manifest or folder, NMP_ERR_NOMEM. */
nmp_err nmp_batch_list_inputs(const char *const *inputs, int ninputs, const nmp_batch_opts *o,
                              nmp_batch_list **out, nmp_msg *msg);
void nmp_batch_list_free(nmp_batch_list *list);

/* Estimated core-seconds of a job on a rows x cols problem with auto's default work (about one
 * core-second up to 512 x 512, 20 at 2048 x 2048); used to balance shards and split budgets. */
double nmp_batch_cost(int64_t rows, int64_t cols);

/* strcmp with runs of digits compared as numbers: "layers.2" < "layers.10". */
int nmp_batch_name_cmp(const char *a, const char *b);

/* shard[k] (k < list->count) = the shard in 0..n-1 of job k: whole groups by decreasing cost
 * (ties: smaller first job index) to the least loaded shard (ties: lower index), so shards are
 * balanced by estimated cost and every machine computes the same split. NMP_ERR_ARG for n < 1. */
nmp_err nmp_batch_shard(const nmp_batch_list *list, int n, int *shard);

/* What one solve job found. */
typedef struct nmp_batch_result {
    int64_t rows, cols;
    nmp_result res;          /* status, score (kept), bound, seconds (the solve), iterations */
    double identity, row_bound, efficacy; /* efficacy in [0, 1] */
    double lp_bound;         /* colgen LP bound with bound_seconds > 0 (NaN when not computed) */
    int lp_complete;         /* the LP was solved to completion */
    double load_seconds;     /* reading the input and building the problem */
} nmp_batch_result;

typedef struct nmp_batch_run_opts {
    nmp_pattern nm;
    nmp_objective objective;     /* NMP_OBJ_ABS or NMP_OBJ_SQ (checkpoint spaces: abs only) */
    nmp_params par;              /* seed, threads, solver values; time_limit see job_seconds */
    double job_seconds;          /* > 0: the whole job's time: the solve gets 88 % of what
                                  * loading left, less 20 ms for writing (solvers overshoot) */
    double bound_seconds;        /* > 0: also the colgen LP bound, with this time limit */
    nmp_plan_opts plan;          /* for checkpoints (heads 0: config.json beside the file) */
} nmp_batch_run_opts;

/* Runs one solve job: loads the matrix (space NULL) or the checkpoint's space, solves from the
 * identity, writes the permutation atomically to perm_path (folders created). NMP_ERR_* with a
 * reason in msg naming the input. */
nmp_err nmp_batch_run(const char *path, const char *space, const char *solver,
                      const nmp_batch_run_opts *o, const char *perm_path, nmp_batch_result *r,
                      nmp_msg *msg);

/* Writes checkpoint `path` permuted to out_path (atomically, folders created): every free space
 * of its plan takes the perm in "<perm_prefix><space>.<solver>.npy" (space names with '/' as
 * '_'). NMP_ERR_FORMAT when a perm is missing or of the wrong size. */
nmp_err nmp_batch_write_checkpoint(const char *path, const nmp_plan_opts *plan, nmp_pattern nm,
                                   const char *perm_prefix, const char *solver,
                                   const char *out_path, nmp_msg *msg);

/* Creates the folders of path up to its last '/' (mkdir -p of its parent). NMP_ERR_IO. */
nmp_err nmp_batch_mkdirs(const char *path, nmp_msg *msg);
/* Writes size bytes to path atomically (temporary, fsync, rename), folders created. */
nmp_err nmp_batch_write_file(const char *path, const void *data, size_t size, nmp_msg *msg);
/* Copies a file atomically (folders created). */
nmp_err nmp_batch_copy_file(const char *from, const char *to, nmp_msg *msg);

/* A journal: an append-only file of JSON lines, each fsync'd when written. A line cut short by a
 * crash (no final newline, or not a JSON value) can only be the last one: reading reports it as
 * torn and opening for append cuts it off. */
typedef struct nmp_journal nmp_journal;

/* Reads the complete lines (without '\n') into *lines (count *count; release with
 * nmp_batch_lines_free). *torn = 1 when a torn last line was dropped. A missing file gives 0 lines.
 * NMP_ERR_FORMAT "<path>: line N: not JSON" for a bad line before the last; NMP_ERR_IO. */
nmp_err nmp_journal_read(const char *path, char ***lines, int64_t *count, int *torn,
                         nmp_msg *msg);
void nmp_batch_lines_free(char **lines, int64_t count);
/* Opens for appending, creating the file (with truncate, empty), and cuts off a torn last line.
 * Holds a write lock (fcntl) until closed: NMP_ERR_IO "in use by another run" when another
 * process has it open. With the lock held, removes every output temporary
 * ("*.nmperm-tmp.<pid>.XXXXXX") under the journal's folder: only a killed run (whose workers died
 * with it) can have left one. Release with nmp_journal_close (accepts NULL). */
nmp_err nmp_journal_open(const char *path, int truncate, nmp_journal **out, nmp_msg *msg);
/* Appends line + '\n' in one write, then fsync. line must hold no newline. */
nmp_err nmp_journal_append(nmp_journal *j, const char *line, nmp_msg *msg);
void nmp_journal_close(nmp_journal *j);

/* Rows x cols of a 2-D .npy from its header alone (the data are not read). */
nmp_err nmp_npy_read_shape(const char *path, int64_t *rows, int64_t *cols, nmp_msg *msg);

#ifdef __cplusplus
}
#endif

#endif /* NMPERM_H */
