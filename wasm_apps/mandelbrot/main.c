/* main.c: entry point of mandelbrot.wasm: `app <operation>` with the request on stdin. */
#include "mandelbrot.h"

int main(int argc, char **argv) { return app_main(argc, argv, &MANDELBROT); }
