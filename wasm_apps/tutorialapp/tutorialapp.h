/* tutorialapp.h: the tutorialapp gWASM module (proof of work, like apps/tutorialapp). */
#ifndef WASM_APPS_TUTORIALAPP_H
#define WASM_APPS_TUTORIALAPP_H

#include "app.h"

#define RESULT_FILE "result.json"

/* The app: the plan's callbacks in requestor.c, compute and benchmark in provider.c. */
extern const gwasm_app TUTORIALAPP;

void op_compute(guest_call *call);
void op_benchmark(guest_call *call);

#endif
