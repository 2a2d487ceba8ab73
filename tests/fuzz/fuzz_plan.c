/* fuzz_plan.c: libFuzzer harness of the plan and report JSON reader: the input is a whole plan
 * (as 'nmperm plan' prints) or report (as 'nmperm permute --report' writes) file. nmp_plan_read;
 * then the text nmp_plan_dumps makes of it must read back to the same text, and the plan goes
 * through nmp_plan_check, nmp_space_problem and nmp_space_verify (through its perms) against a
 * fixed small checkpoint (FUZZ_CKPT, a LLaMA-shaped one, as --plan and apply use it). Findings
 * are sanitizer reports or a broken invariant (__builtin_trap). */
#include "fuzz_file.h" /* first: it asks for memfd_create (_GNU_SOURCE) */

#include "nmperm.h"

#ifndef FUZZ_CKPT
#error "build with -DFUZZ_CKPT=\"path of the checkpoint the plans are checked against\""
#endif

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static fuzz_file file, again;
static nmp_st *ckpt;

static void check_msg(nmp_err e, const nmp_msg *msg, const char *path)
{
    if (e == NMP_OK || e == NMP_ERR_NOMEM)
        return;
    CHECK(msg->text[0] != '\0');
    CHECK(strchr(msg->text, '\n') == NULL);
    CHECK(strstr(msg->text, path) != NULL);
}

/* dumps(read(dumps(plan))) == dumps(plan) */
static void round_trip(const nmp_plan *plan)
{
    char *text = NULL, *text2 = NULL;
    nmp_plan *back = NULL;
    nmp_msg msg = { "" };
    if (nmp_plan_dumps(plan, &text) != NMP_OK)
        goto out;
    const char *path = fuzz_file_set(&again, (const uint8_t *)text, strlen(text));
    const nmp_err e = nmp_plan_read(path, &back, &msg);
    CHECK(e == NMP_OK || e == NMP_ERR_NOMEM);
    if (e != NMP_OK || nmp_plan_dumps(back, &text2) != NMP_OK)
        goto out;
    CHECK(strcmp(text, text2) == 0);
out:
    nmp_free(text);
    nmp_free(text2);
    nmp_plan_free(back);
}

static void against_ckpt(nmp_plan *plan)
{
    const nmp_pattern nm = { 2, 4 };
    nmp_msg msg = { "" };
    if (nmp_plan_check(plan, ckpt, nm, &msg) != NMP_OK)
        return;
    for (int64_t s = 0; s < plan->count; s++) {
        const nmp_space *sp = &plan->spaces[s];
        if (sp->skip)
            continue;
        nmp_problem *pb = NULL;
        if (nmp_space_problem(ckpt, sp, nm, &pb, &msg) != NMP_OK)
            continue;
        CHECK(nmp_problem_cols(pb) == sp->size);
        nmp_problem_free(pb);
        double rel = -1;
        if (sp->perm && nmp_space_verify(plan, s, ckpt, ckpt, 1, 0, 1, &rel, &msg) == NMP_OK)
            CHECK(rel >= 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (file.path[0] == '\0') {
        nmp_msg msg = { "" };
        if (nmp_st_open(FUZZ_CKPT, &ckpt, &msg) != NMP_OK) {
            fprintf(stderr, "fuzz_plan: %s\n", msg.text);
            abort();
        }
        fuzz_file_open(&file, "fuzz-plan.json");
        fuzz_file_open(&again, "fuzz-plan-again.json");
    }
    const char *path = fuzz_file_set(&file, data, size);
    nmp_plan *plan = NULL;
    nmp_msg msg = { "" };
    const nmp_err e = nmp_plan_read(path, &plan, &msg);
    check_msg(e, &msg, path);
    if (e != NMP_OK) {
        CHECK(plan == NULL);
        return 0;
    }
    round_trip(plan);
    against_ckpt(plan);
    nmp_plan_free(plan);
    return 0;
}
