/* app.h: the operations of a gWASM app (docs/wasm-apps.md) and the dispatch that runs them.
 *
 * An app gives its compute and benchmark handlers and its plan's callbacks (requestor.h); the
 * requestor-side operations are shared. Its main.c is then
 *   int main(int argc, char **argv) { return app_main(argc, argv, &APP); }
 */
#ifndef WASM_APPS_APP_H
#define WASM_APPS_APP_H

#include "guest.h"
#include "requestor.h"

typedef struct {
    guest_handler compute;
    guest_handler benchmark;
    requestor_plan plan;
} gwasm_app;

/* Runs the operation named by argv[1] (guest_main with the operation table of every app). */
int app_main(int argc, char **argv, const gwasm_app *app);

#endif
