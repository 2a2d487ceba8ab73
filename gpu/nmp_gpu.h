/* nmp_gpu.h: launchers of the device kernels (nmp_gpu_kernels.cu) and the cuSPARSELt/cuBLAS layer
 * (nmp_cusparselt.cu), callable from C; internal to gpu/ */
#ifndef NMP_GPU_H
#define NMP_GPU_H

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "nmp_internal.h" /* C declarations: keep C linkage when a .cu includes them */

/* One GPU library loaded at first use (nmp_gpu_dl.c): what it is, its file name, the environment
 * variable that may name it (a file or a folder), the wheel that ships it and the folders under a
 * site-packages folder where wheels put it (NULL-terminated). */
typedef struct nmp_gpu_lib {
    const char *what;            /* "cuSPARSELt" */
    const char *soname;          /* "libcusparseLt.so.0" */
    const char *env;             /* "NMP_CUSPARSELT" */
    const char *wheel;           /* "nvidia-cusparselt-cu13" */
    const char *const *layouts;  /* { "nvidia/cu13/lib", ..., NULL } */
} nmp_gpu_lib;

/* dlopen of lib in the search order of nmp_gpu_dl.c (dir first, may be NULL); path (len bytes)
 * gets the file loaded. NULL with NMP_ERR_UNSUPPORTED's one-line reason in msg (what is missing,
 * how to install it) when no candidate loads. The handle is never closed. */
void *nmp_gpu_dl_open(const nmp_gpu_lib *lib, const char *dir, char *path, size_t len,
                      nmp_msg *msg);
void *nmp_gpu_dl_sym(void *handle, const char *name); /* dlsym; NULL when absent */

#ifdef NMP_HAVE_CUDA
/* After a failed CUDA call: 1 when the context is unusable (a sticky error such as an illegal
 * memory access: every later call fails with it); then nmp_gpu_is_lost answers 1 from now on. */
int nmp_gpu_check_lost(void);

/* Uploads be->pb to device 0 and replaces the entries gpu/ implements; be->dev holds the device
 * state and be->release frees it. NMP_ERR_GPU (reason in msg) when the device cannot take it. */
nmp_err nmp_gpu_backend_open(nmp_backend *be, nmp_msg *msg);
#endif

/* Kernels: all take device pointers, run on the default stream and return a cudaError_t as int
 * (0 = cudaSuccess) from the launch; s is the column-major saliency (rows x cols). The window
 * kernel needs 2m <= 14 (nmasks <= 1716); pricing needs m <= 8. */
int nmp_gpu_score_groups(const float *s, int64_t rows, int64_t groups, int m, int n,
                         const int32_t *perm, double *out);
int nmp_gpu_swap_deltas(const float *s, int64_t rows, int m, int n, const int32_t *perm,
                        int64_t a, const int64_t *b, int64_t count, double *out);
int nmp_gpu_window(const float *s, int64_t rows, int64_t groups, int m, int n,
                   const int32_t *perm, const uint32_t *masks, int nmasks, double *gain,
                   uint32_t *mask);
/* binom: (cols + 1) x 9 table of C(a, b) for b <= 8; best: (cols * chunks) pairs of (rc, rank)
 * with chunks = nmp_gpu_pricing_chunks(cols, m). */
int64_t nmp_gpu_pricing_chunks(int64_t cols, int m);
int nmp_gpu_pricing(const float *s, int64_t rows, int64_t cols, int m, int n, const double *y,
                    const int64_t *binom, double *best_rc, int64_t *best_rank);

/* Evaluator kernels: out(j, k) = in(j, perm[k]) for rows x cols float; N:M magnitude prune in
 * place (same rule as nmp_prune_nm); violations counted into *count (device int64). */
int nmp_gpu_gather(const float *in, int64_t rows, int64_t cols, const int32_t *perm, float *out);
int nmp_gpu_prune(float *w, int64_t rows, int64_t cols, int m, int n);
int nmp_gpu_violations(const float *w, int64_t rows, int64_t cols, int m, int n,
                       unsigned long long *count);
/* dst (count values of dtype) = src * scale, rounded to nearest (int8: saturated to +-127). */
int nmp_gpu_convert(const float *src, int64_t count, nmp_dtype dtype, float scale, void *dst);
/* dst = float(src) / scale for an output of dtype's GEMM (fp16, bf16, int32, bf16). */
int nmp_gpu_output_to_f32(const void *src, int64_t count, nmp_dtype dtype, float scale,
                          float *dst);
/* max |src| into *out (device float, zeroed first by the caller). */
int nmp_gpu_absmax(const float *src, int64_t count, float *out);

#ifdef __cplusplus
}
#endif

#endif /* NMP_GPU_H */
