/* app.c: the operation table every app shares (see app.h). */
#include "app.h"

#include <stddef.h>

int app_main(int argc, char **argv, const gwasm_app *app) {
    const guest_operation operations[] = {
        {"create_task", requestor_create_task},
        {"next_subtask", requestor_next_subtask},
        {"verify", requestor_verify},
        {"next_subtasks", requestor_next_subtasks},
        {"verify_batch", requestor_verify_batch},
        {"discard_subtasks", requestor_discard_subtasks},
        {"has_pending_subtasks", requestor_has_pending_subtasks},
        {"abort_task", requestor_abort_task},
        {"abort_subtask", requestor_abort_subtask},
        {"benchmark", app->benchmark},
        {"compute", app->compute},
        {NULL, NULL},
    };
    return guest_main(argc, argv, operations, &app->plan);
}
