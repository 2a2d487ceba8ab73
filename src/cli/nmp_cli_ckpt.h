/* nmp_cli_ckpt.h: the checkpoint subcommands of nmperm: plan, permute, apply (nmp_cli_ckpt.c) */
#ifndef NMP_CLI_CKPT_H
#define NMP_CLI_CKPT_H

#include "nmp_cli.h"

/* Each takes the arguments after the command name (c->k = 2) and returns the exit code. */
int nmp_cli_plan(cli_args *c);
int nmp_cli_permute(cli_args *c);
int nmp_cli_apply(cli_args *c);

#endif /* NMP_CLI_CKPT_H */
