/* nmp_gpu_kernels.cu: device kernels of the GPU backend (group scores, swap deltas, stripe-pair
 * windows, pricing enumeration) and of the 2:4 evaluator (gather, prune, convert) */
#include "nmp_gpu.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <math.h>

#define GM 8        /* largest group size the kernels hold in registers */
#define THREADS 128

/* Sum of the n largest of v[0..GM-1] (unused entries -inf): an insertion network with
 * compile-time indices only, so v and top stay in registers. */
__device__ __forceinline__ float topn(const float (&v)[GM], int n)
{
    float top[GM];
#pragma unroll
    for (int k = 0; k < GM; k++)
        top[k] = -INFINITY;
#pragma unroll
    for (int t = 0; t < GM; t++) {
        float x = v[t];
#pragma unroll
        for (int k = 0; k < GM; k++) {
            const float hi = fmaxf(top[k], x);
            x = fminf(top[k], x);
            top[k] = hi;
        }
    }
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < GM; k++)
        if (k < n)
            sum += top[k];
    return sum;
}

__device__ __forceinline__ double block_sum(double x, double *shared)
{
    for (int o = 16; o > 0; o >>= 1)
        x += __shfl_down_sync(0xffffffffu, x, o);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0)
        shared[warp] = x;
    __syncthreads();
    double total = 0;
    if (threadIdx.x == 0)
        for (int w = 0; w < (int)(blockDim.x / 32); w++)
            total += shared[w];
    __syncthreads();
    return total; /* valid in thread 0 */
}

/* out[g] = sum_j topn(s(j, perm[g*m .. g*m+m-1])): one block per group, threads over rows */
__global__ void k_score_groups(const float *__restrict__ s, int64_t rows, int m, int n,
                               const int32_t *__restrict__ perm, double *out)
{
    __shared__ double red[THREADS / 32];
    const int64_t g = blockIdx.x;
    const float *c[GM];
#pragma unroll
    for (int t = 0; t < GM; t++)
        c[t] = t < m ? s + (int64_t)perm[g * m + t] * rows : nullptr;
    double acc = 0;
    for (int64_t j = threadIdx.x; j < rows; j += blockDim.x) {
        float v[GM];
#pragma unroll
        for (int t = 0; t < GM; t++)
            v[t] = t < m ? c[t][j] : -INFINITY;
        acc += topn(v, n);
    }
    acc = block_sum(acc, red);
    if (threadIdx.x == 0)
        out[g] = acc;
}

/* out[t] = sum_j [topn(g with slot a := col b) - topn(g)] + [topn(h with slot b := col a) -
 * topn(h)], g = a / m, h = b[t] / m; one block per t */
__global__ void k_swap_deltas(const float *__restrict__ s, int64_t rows, int m, int n,
                              const int32_t *__restrict__ perm, int64_t a,
                              const int64_t *__restrict__ bs, double *out)
{
    __shared__ double red[THREADS / 32];
    const int64_t b = bs[blockIdx.x], g = a / m, h = b / m;
    if (g == h) {
        if (threadIdx.x == 0)
            out[blockIdx.x] = 0.0;
        return;
    }
    const int xa = (int)(a - g * m), xb = (int)(b - h * m);
    const float *cg[GM], *ch[GM];
#pragma unroll
    for (int t = 0; t < GM; t++) {
        cg[t] = t < m ? s + (int64_t)perm[g * m + t] * rows : nullptr;
        ch[t] = t < m ? s + (int64_t)perm[h * m + t] * rows : nullptr;
    }
    double acc = 0;
    for (int64_t j = threadIdx.x; j < rows; j += blockDim.x) {
        float vg[GM], vh[GM], wg[GM], wh[GM];
#pragma unroll
        for (int t = 0; t < GM; t++) {
            vg[t] = t < m ? cg[t][j] : -INFINITY;
            vh[t] = t < m ? ch[t][j] : -INFINITY;
        }
        float va = 0.0f, vb = 0.0f; /* selects, so the arrays stay in registers */
#pragma unroll
        for (int t = 0; t < GM; t++) {
            va = t == xa ? vg[t] : va;
            vb = t == xb ? vh[t] : vb;
        }
#pragma unroll
        for (int t = 0; t < GM; t++) {
            wg[t] = t == xa ? vb : vg[t];
            wh[t] = t == xb ? va : vh[t];
        }
        acc += (double)((topn(wg, n) - topn(vg, n)) + (topn(wh, n) - topn(vh, n)));
    }
    acc = block_sum(acc, red);
    if (threadIdx.x == 0)
        out[blockIdx.x] = acc;
}

/* Pair p = (g, h), g < h, from its index (rows of the upper triangle). */
__device__ __forceinline__ void pair_of(int64_t p, int64_t groups, int64_t *g, int64_t *h)
{
    /* g = largest with g*G - g(g+1)/2 <= p: solve the quadratic, then fix rounding */
    const double G = (double)groups;
    int64_t x = (int64_t)floor(((2 * G - 1) - sqrt((2 * G - 1) * (2 * G - 1) - 8.0 * p)) / 2);
    x = x < 0 ? 0 : x;
    while (x > 0 && x * groups - x * (x + 1) / 2 > p)
        x--;
    while ((x + 1) * groups - (x + 1) * (x + 2) / 2 <= p)
        x++;
    *g = x;
    *h = p - (x * groups - x * (x + 1) / 2) + x + 1;
}

/* One block per pair of groups: each thread holds one row's 2m window values in registers, and
 * for every split mask adds its row's value into acc[mask] (a warp sum, then one shared double
 * atomic per warp). Then the first maximum over masks. The block never re-reads device memory
 * for another mask: the window's bytes are read once. */
__global__ void k_window(const float *__restrict__ s, int64_t rows, int64_t groups, int m, int n,
                         const int32_t *__restrict__ perm, const uint32_t *__restrict__ masks,
                         int nmasks, double *gain, uint32_t *best_mask)
{
    extern __shared__ double acc[]; /* nmasks values */
    __shared__ double bv[THREADS];
    __shared__ int bi[THREADS];
    int64_t g, h;
    pair_of(blockIdx.x, groups, &g, &h);
    for (int q = threadIdx.x; q < nmasks; q += blockDim.x)
        acc[q] = 0.0;
    const float *c[2 * GM];
#pragma unroll
    for (int t = 0; t < 2 * GM; t++)
        c[t] = t < m ? s + (int64_t)perm[g * m + t] * rows
                     : (t < 2 * m ? s + (int64_t)perm[h * m + t - m] * rows : nullptr);
    __syncthreads();
    const int lane = threadIdx.x % 32;
    for (int64_t j0 = 0; j0 < rows; j0 += blockDim.x) {
        const int64_t j = j0 + threadIdx.x;
        const bool live = j < rows;
        float v[2 * GM];
#pragma unroll
        for (int t = 0; t < 2 * GM; t++)
            v[t] = live && t < 2 * m ? c[t][j] : 0.0f;
        for (int q = 0; q < nmasks; q++) {
            const uint32_t mk = masks[q];
            float va[GM], vb[GM];
#pragma unroll
            for (int k = 0; k < GM; k++)
                va[k] = vb[k] = -INFINITY;
            /* split v by mask: the t-th set bit fills va's next slot; done with selects over
             * compile-time slots so nothing leaves registers */
            int na = 0, nb = 0;
#pragma unroll
            for (int t = 0; t < 2 * GM; t++) {
                if (t < 2 * m) {
                    const bool in_a = (mk >> t) & 1u;
#pragma unroll
                    for (int k = 0; k < GM; k++) {
                        va[k] = (in_a && na == k) ? v[t] : va[k];
                        vb[k] = (!in_a && nb == k) ? v[t] : vb[k];
                    }
                    na += in_a;
                    nb += !in_a;
                }
            }
            float x = live ? topn(va, n) + topn(vb, n) : 0.0f;
            for (int o = 16; o > 0; o >>= 1)
                x += __shfl_down_sync(0xffffffffu, x, o);
            if (lane == 0)
                atomicAdd(&acc[q], (double)x);
        }
    }
    __syncthreads();
    double best = -INFINITY;
    int arg = nmasks;
    for (int q = threadIdx.x; q < nmasks; q += blockDim.x)
        if (acc[q] > best) {
            best = acc[q];
            arg = q;
        }
    bv[threadIdx.x] = best;
    bi[threadIdx.x] = arg;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) {
            const double ov = bv[threadIdx.x + w];
            const int oi = bi[threadIdx.x + w];
            if (ov > bv[threadIdx.x] || (ov == bv[threadIdx.x] && oi < bi[threadIdx.x])) {
                bv[threadIdx.x] = ov;
                bi[threadIdx.x] = oi;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        gain[blockIdx.x] = bv[0] - acc[0];
        best_mask[blockIdx.x] = masks[bi[0]];
    }
}

#define PRICE_PER_THREAD 16

/* Pricing: block (x, i) enumerates, in lexicographic rank order, the (m-1)-subsets of
 * {i+1, .., cols-1} with ranks [x * THREADS * PER, (x+1) * THREADS * PER); each thread unranks
 * its first subset once and steps to the next PER - 1 times. rc = sum_j topn - y(S); the first
 * maximum (lowest rank) of the block goes to best_rc/best_rank[i * chunks + x]. */
__global__ void k_pricing(const float *__restrict__ s, int64_t rows, int64_t cols, int m, int n,
                          const double *__restrict__ y, const int64_t *__restrict__ binom,
                          int64_t chunks, double *best_rc, int64_t *best_rank)
{
    __shared__ double bv[THREADS];
    __shared__ int64_t bi[THREADS];
    const int64_t i = blockIdx.y, x = blockIdx.x;
    const int k = m - 1;
    const int64_t len = cols - 1 - i; /* choose k of len */
    const int64_t total = len >= k ? binom[len * 9 + k] : 0;
    int64_t r = (x * THREADS + threadIdx.x) * PRICE_PER_THREAD;
    double best = -INFINITY;
    int64_t arg = -1;
    if (r < total) {
        int32_t sub[GM]; /* offsets 0..len-1 of the k members, ascending */
        int64_t rr = r, off = 0;
#pragma unroll
        for (int q = 0; q < GM; q++) {
            if (q < k) {
                for (;;) {
                    const int64_t cnt = binom[(len - off - 1) * 9 + (k - q - 1)];
                    if (rr < cnt)
                        break;
                    rr -= cnt;
                    off++;
                }
                sub[q] = (int32_t)off++;
            } else {
                sub[q] = 0;
            }
        }
        for (int step = 0; step < PRICE_PER_THREAD && r < total; step++, r++) {
            const float *c[GM];
            double ys = y[i];
            c[0] = s + i * rows;
#pragma unroll
            for (int q = 1; q < GM; q++) {
                const int64_t col = i + 1 + sub[q - 1];
                c[q] = q < m ? s + col * rows : nullptr;
                ys += q < m ? y[col] : 0.0;
            }
            double acc = 0;
            for (int64_t j0 = 0; j0 < rows; j0 += 64) {
                float part = 0;
                const int64_t j1 = j0 + 64 < rows ? j0 + 64 : rows;
                for (int64_t j = j0; j < j1; j++) {
                    float v[GM];
#pragma unroll
                    for (int q = 0; q < GM; q++)
                        v[q] = q < m ? c[q][j] : -INFINITY;
                    part += topn(v, n);
                }
                acc += part;
            }
            const double rc = acc - ys;
            if (rc > best) {
                best = rc;
                arg = r;
            }
            /* next combination of k offsets within 0..len-1 */
            int q = k - 1;
#pragma unroll
            for (int t = GM - 1; t >= 0; t--)
                if (t == q && q >= 0 && sub[t] == len - k + t)
                    q--;
            if (q < 0)
                break;
#pragma unroll
            for (int t = 0; t < GM; t++) {
                if (t == q)
                    sub[t]++;
                else if (t > q && t < k)
                    sub[t] = sub[q] + (t - q);
            }
        }
    }
    bv[threadIdx.x] = best;
    bi[threadIdx.x] = arg;
    __syncthreads();
    for (int w = blockDim.x / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) {
            const double ov = bv[threadIdx.x + w];
            const int64_t oi = bi[threadIdx.x + w];
            if (oi >= 0 && (ov > bv[threadIdx.x] ||
                            (ov == bv[threadIdx.x] && (bi[threadIdx.x] < 0 || oi < bi[threadIdx.x])))) {
                bv[threadIdx.x] = ov;
                bi[threadIdx.x] = oi;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        best_rc[i * chunks + x] = bv[0];
        best_rank[i * chunks + x] = bi[0];
    }
}

/* ------------------------------------------------------------- evaluator */

__global__ void k_gather(const float *__restrict__ in, int64_t rows, int64_t cols,
                         const int32_t *__restrict__ perm, float *out)
{
    const int64_t idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= rows * cols)
        return;
    const int64_t j = idx / cols, k = idx % cols;
    out[idx] = in[j * cols + (perm ? perm[k] : k)];
}

/* keep w[t] iff fewer than n entries of its group beat it (|w| larger, or equal and earlier) */
__global__ void k_prune(float *w, int64_t ngroups, int m, int n)
{
    const int64_t g = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= ngroups)
        return;
    float *p = w + g * m;
    float mag[NMP_MAX_M];
    for (int t = 0; t < m; t++)
        mag[t] = fabsf(p[t]);
    for (int t = 0; t < m; t++) {
        int beaten = 0;
        for (int u = 0; u < m; u++)
            beaten += mag[u] > mag[t] || (mag[u] == mag[t] && u < t);
        if (beaten >= n)
            p[t] = 0.0f;
    }
}

__global__ void k_violations(const float *w, int64_t ngroups, int m, int n,
                             unsigned long long *count)
{
    const int64_t g = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= ngroups)
        return;
    int nz = 0;
    for (int t = 0; t < m; t++)
        nz += w[g * m + t] != 0.0f;
    if (nz > n)
        atomicAdd(count, 1ull);
}

__global__ void k_convert(const float *src, int64_t count, int dtype, float scale, void *dst)
{
    const int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= count)
        return;
    const float v = src[k] * scale;
    switch (dtype) {
    case NMP_DTYPE_F16: ((__half *)dst)[k] = __float2half_rn(v); break;
    case NMP_DTYPE_BF16: ((__nv_bfloat16 *)dst)[k] = __float2bfloat16_rn(v); break;
    case NMP_DTYPE_I8: ((int8_t *)dst)[k] = (int8_t)fmaxf(-127.0f, fminf(127.0f, rintf(v))); break;
    case NMP_DTYPE_E4M3: ((__nv_fp8_e4m3 *)dst)[k] = __nv_fp8_e4m3(v); break;
    default: ((float *)dst)[k] = v; break;
    }
}

__global__ void k_output(const void *src, int64_t count, int dtype, float inv_scale, float *dst)
{
    const int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= count)
        return;
    float v;
    switch (dtype) {
    case NMP_DTYPE_F16: v = __half2float(((const __half *)src)[k]); break;
    case NMP_DTYPE_I8: v = (float)((const int32_t *)src)[k]; break;
    case NMP_DTYPE_BF16:
    case NMP_DTYPE_E4M3: v = __bfloat162float(((const __nv_bfloat16 *)src)[k]); break;
    default: v = ((const float *)src)[k]; break;
    }
    dst[k] = v * inv_scale;
}

__global__ void k_absmax(const float *src, int64_t count, float *out)
{
    float mx = 0.0f;
    for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < count;
         k += (int64_t)gridDim.x * blockDim.x)
        mx = fmaxf(mx, fabsf(src[k]));
    for (int o = 16; o > 0; o >>= 1)
        mx = fmaxf(mx, __shfl_down_sync(0xffffffffu, mx, o));
    if (threadIdx.x % 32 == 0) /* non-negative floats order as their bit patterns */
        atomicMax((unsigned int *)out, __float_as_uint(mx));
}

/* ------------------------------------------------------------- launchers */

static unsigned blocks_for(int64_t count)
{
    return (unsigned)((count + THREADS - 1) / THREADS);
}

static int last_error(void)
{
    return (int)cudaGetLastError();
}

extern "C" {

int nmp_gpu_score_groups(const float *s, int64_t rows, int64_t groups, int m, int n,
                         const int32_t *perm, double *out)
{
    if (groups > 0)
        k_score_groups<<<(unsigned)groups, THREADS>>>(s, rows, m, n, perm, out);
    return last_error();
}

int nmp_gpu_swap_deltas(const float *s, int64_t rows, int m, int n, const int32_t *perm,
                        int64_t a, const int64_t *b, int64_t count, double *out)
{
    if (count > 0)
        k_swap_deltas<<<(unsigned)count, THREADS>>>(s, rows, m, n, perm, a, b, out);
    return last_error();
}

int nmp_gpu_window(const float *s, int64_t rows, int64_t groups, int m, int n,
                   const int32_t *perm, const uint32_t *masks, int nmasks, double *gain,
                   uint32_t *mask)
{
    const int64_t pairs = groups * (groups - 1) / 2;
    if (pairs > 0)
        k_window<<<(unsigned)pairs, THREADS, (size_t)nmasks * sizeof(double)>>>(
            s, rows, groups, m, n, perm, masks, nmasks, gain, mask);
    return last_error();
}

int64_t nmp_gpu_pricing_chunks(int64_t cols, int m)
{
    int64_t c = 1; /* C(cols - 1, m - 1) */
    for (int t = 0; t < m - 1; t++)
        c = c * (cols - 1 - t) / (t + 1);
    const int64_t per_block = (int64_t)THREADS * PRICE_PER_THREAD;
    return c < 1 ? 1 : (c + per_block - 1) / per_block;
}

int nmp_gpu_pricing(const float *s, int64_t rows, int64_t cols, int m, int n, const double *y,
                    const int64_t *binom, double *best_rc, int64_t *best_rank)
{
    const int64_t chunks = nmp_gpu_pricing_chunks(cols, m);
    const dim3 grid((unsigned)chunks, (unsigned)cols);
    k_pricing<<<grid, THREADS>>>(s, rows, cols, m, n, y, binom, chunks, best_rc, best_rank);
    return last_error();
}

int nmp_gpu_gather(const float *in, int64_t rows, int64_t cols, const int32_t *perm, float *out)
{
    k_gather<<<blocks_for(rows * cols), THREADS>>>(in, rows, cols, perm, out);
    return last_error();
}

int nmp_gpu_prune(float *w, int64_t rows, int64_t cols, int m, int n)
{
    const int64_t ngroups = rows * cols / m;
    k_prune<<<blocks_for(ngroups), THREADS>>>(w, ngroups, m, n);
    return last_error();
}

int nmp_gpu_violations(const float *w, int64_t rows, int64_t cols, int m, int n,
                       unsigned long long *count)
{
    const int64_t ngroups = rows * cols / m;
    k_violations<<<blocks_for(ngroups), THREADS>>>(w, ngroups, m, n, count);
    return last_error();
}

int nmp_gpu_convert(const float *src, int64_t count, nmp_dtype dtype, float scale, void *dst)
{
    k_convert<<<blocks_for(count), THREADS>>>(src, count, (int)dtype, scale, dst);
    return last_error();
}

int nmp_gpu_output_to_f32(const void *src, int64_t count, nmp_dtype dtype, float scale,
                          float *dst)
{
    k_output<<<blocks_for(count), THREADS>>>(src, count, (int)dtype, 1.0f / scale, dst);
    return last_error();
}

int nmp_gpu_absmax(const float *src, int64_t count, float *out)
{
    k_absmax<<<1024, THREADS>>>(src, count, out);
    return last_error();
}

} /* extern "C" */
