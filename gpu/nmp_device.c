/* nmp_device.c: device selection for the scoring backend (cpu, gpu, auto) and, in a build
 * without CUDA, the GPU API answering "none". Compiled in every build: the only place above the
 * core that knows whether gpu/ is there, so the core never calls into gpu/. */
#include "nmp_gpu.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

nmp_err nmp_backend_init(nmp_backend *be, const nmp_problem *pb, const char *device,
                         nmp_msg *msg)
{
    nmp_backend_init_cpu(be, pb);
    const char *env = getenv("NMP_BACKEND");
    const bool want_gpu = device && strcmp(device, "gpu") == 0;
    if (device && strcmp(device, "auto") != 0 && strcmp(device, "cpu") != 0 && !want_gpu)
        return nmp_fail(msg, NMP_ERR_ARG, "device '%s': expected auto, cpu or gpu", device);
    if ((device && strcmp(device, "cpu") == 0) || (!want_gpu && env && strcmp(env, "cpu") == 0))
        return NMP_OK;
#ifdef NMP_HAVE_CUDA
    if (nmp_gpu_count() < 1)
        return want_gpu ? nmp_fail(msg, NMP_ERR_GPU, "no CUDA device found") : NMP_OK;
    const nmp_err e = nmp_gpu_backend_open(be, msg);
    if (e != NMP_OK && !want_gpu) {
        nmp_backend_init_cpu(be, pb); /* auto: fall back to the reference */
        return NMP_OK;
    }
    return e;
#else
    if (want_gpu)
        return nmp_fail(msg, NMP_ERR_UNSUPPORTED, "built without CUDA");
    return NMP_OK;
#endif
}

/* ------------------------------------------------- without CUDA: the GPU API answers "none" */

#ifndef NMP_HAVE_CUDA
int nmp_gpu_built(void) { return 0; }
int nmp_gpu_has_cusparselt(void) { return 0; }
int nmp_gpu_count(void) { return 0; }
int nmp_gpu_is_lost(void) { return 0; }

nmp_err nmp_gpu_libs_load(const char *dir, nmp_msg *msg)
{
    (void)dir;
    return nmp_fail(msg, NMP_ERR_UNSUPPORTED, "built without CUDA");
}

void nmp_gpu_libs_describe(char *buf, size_t len)
{
    if (buf && len)
        snprintf(buf, len, "built without CUDA");
}

nmp_err nmp_gpu_describe(char *buf, size_t len)
{
    if (buf && len)
        buf[0] = '\0';
    return NMP_ERR_GPU;
}

nmp_err nmp_gpu_spmm_eval(const nmp_spmm_desc *d, nmp_spmm_report *r, nmp_msg *msg)
{
    (void)d;
    if (r)
        memset(r, 0, sizeof *r);
    return nmp_fail(msg, NMP_ERR_GPU, "no CUDA device found (built without CUDA)");
}
#endif
