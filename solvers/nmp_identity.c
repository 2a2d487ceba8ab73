/* nmp_identity.c: the identity permutation, the baseline every gain is measured against */
#include "nmp_solvers.h"

static const nmp_param_desc identity_params[] = { { 0 } };

static nmp_err identity_create(const nmp_problem *pb, const nmp_params *par, void **state,
                               nmp_msg *msg)
{
    (void)par;
    (void)msg;
    *state = (void *)pb;
    return NMP_OK;
}

/* Keeps the start: the identity when the caller starts from it. */
static nmp_err identity_solve(void *state, int32_t *perm, nmp_result *res)
{
    (void)state;
    (void)perm;
    res->status = NMP_STATUS_FEASIBLE;
    return NMP_OK;
}

static void identity_destroy(void *state)
{
    (void)state;
}

const nmp_solver_ops nmp_identity_ops = {
    "identity", "keep the start permutation (the identity by default)", identity_params,
    identity_create, identity_solve, identity_destroy, 0,
};
