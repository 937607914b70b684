/* png.h: a streaming PNG writer for 8-bit RGB images: rows go in one at a time, so an image of any size
 * needs one row of memory. The zlib stream uses stored (uncompressed) deflate blocks of up to 65535
 * bytes, one per IDAT chunk, with the CRC-32 and Adler-32 checksums PNG and zlib require.
 */
#ifndef WASM_APPS_MANDELBROT_PNG_H
#define WASM_APPS_MANDELBROT_PNG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PNG_BLOCK_MAX 65535

typedef struct {
    FILE *stream;
    int64_t width;
    uint32_t adler_a, adler_b;
    int zlib_header_sent;
    size_t used;
    uint8_t block[PNG_BLOCK_MAX + 4]; /* + room for the Adler-32 after the last block */
} png_writer;

/* Writes the signature and header. */
void png_begin(png_writer *png, FILE *stream, int64_t width, int64_t height);
/* Appends one row of 3 * width RGB bytes. */
void png_row(png_writer *png, const uint8_t *rgb);
/* Writes the last block, the zlib checksum and the end chunk (the stream stays open). */
void png_end(png_writer *png);

uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t len);

#endif
