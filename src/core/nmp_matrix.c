/* nmp_matrix.c: strided float32 views and owned arrays */
#include "nmp_internal.h"

#include <math.h>

nmp_matrix nmp_matrix_view(const float *data, int64_t rows, int64_t cols)
{
    nmp_matrix a = { data, rows, cols, cols, 1 };
    return a;
}

nmp_matrix nmp_matrix_transpose(nmp_matrix a)
{
    nmp_matrix t = { a.data, a.cols, a.rows, a.cs, a.rs };
    return t;
}

nmp_err nmp_matrix_check(const nmp_matrix *a, nmp_msg *msg)
{
    if (!a || !a->data)
        return nmp_fail(msg, NMP_ERR_ARG, "matrix has no data");
    if (a->rows < 1 || a->cols < 1)
        return nmp_fail(msg, NMP_ERR_ARG, "empty matrix (%lld x %lld)", (long long)a->rows,
                        (long long)a->cols);
    for (int64_t j = 0; j < a->rows; j++)
        for (int64_t i = 0; i < a->cols; i++) {
            const float v = nmp_matrix_at(a, j, i);
            if (!isfinite(v))
                return nmp_fail(msg, NMP_ERR_ARG, "%s at row %lld, col %lld",
                                isnan(v) ? "NaN" : "Inf", (long long)j, (long long)i);
        }
    return NMP_OK;
}

nmp_matrix nmp_array_view(const nmp_array *a)
{
    return nmp_matrix_view(a->data, a->rows, a->cols);
}

void nmp_array_free(nmp_array *a)
{
    if (!a)
        return;
    nmp_free(a->data);
    a->data = NULL;
    a->rows = a->cols = 0;
}
