/* main.c: entry point of tutorialapp.wasm: `app <operation>` with the request on stdin. */
#include "tutorialapp.h"

int main(int argc, char **argv) { return app_main(argc, argv, &TUTORIALAPP); }
