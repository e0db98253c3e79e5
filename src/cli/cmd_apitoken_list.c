/* cmd_apitoken_list.c - `lxcm api-token list`: the names of the API tokens. */
#include "cli/cli.h"

#include "cli/cmdrun.h"

/* clang-format off */
static const struct output_column apitoken_list_columns[] = {
    {'n', "name", "NAME", "the token's name", "name", NULL},
    {'r', "role", "ROLE", "admin, operator or viewer ('-' from a server without roles)",
     "role", NULL},
    {'c', "created", "CREATED", "the token's age", "created_at", output_cell_age},
    {'a', "audit-actor", "AUDIT ACTOR", "who its requests are in the audit log: token: and "
     "the first 12 hex digits of the token's SHA-256", "audit_actor", NULL},
    {0, NULL, NULL, NULL, NULL, NULL},
};
/* clang-format on */

static const struct cmdrun_list apitoken_list = {
    .bad = "the server did not send a list of tokens",
    .columns = {apitoken_list_columns, "nrca"},
};

const struct cli_command cmd_apitoken_list =
    CMDRUN_LIST_ENTRY("api-token list", "List the API tokens by name",
		      "The secrets are never shown again.\n", "/1.0/auth/tokens", &apitoken_list);
