/* png.c: streaming PNG writer with stored deflate blocks, CRC-32 and Adler-32 (see png.h). */
#include "png.h"

#include <string.h>

uint32_t crc32_update(uint32_t crc, const uint8_t *data, size_t len) {
    static uint32_t table[256];
    static int ready;
    if (!ready) {
        for (uint32_t n = 0; n < 256; n++) {
            uint32_t c = n;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        ready = 1;
    }
    crc = ~crc;
    for (size_t i = 0; i < len; i++) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static void put32(uint8_t *out, uint32_t v) {
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
}

/* Writes one chunk: length, type, the data given in two pieces, CRC over type and data. */
static void chunk(FILE *stream, const char type[4], const uint8_t *a, size_t a_len, const uint8_t *b,
                  size_t b_len) {
    uint8_t word[4];
    put32(word, (uint32_t)(a_len + b_len));
    fwrite(word, 1, 4, stream);
    fwrite(type, 1, 4, stream);
    uint32_t crc = crc32_update(0, (const uint8_t *)type, 4);
    if (a_len) {
        fwrite(a, 1, a_len, stream);
        crc = crc32_update(crc, a, a_len);
    }
    if (b_len) {
        fwrite(b, 1, b_len, stream);
        crc = crc32_update(crc, b, b_len);
    }
    put32(word, crc);
    fwrite(word, 1, 4, stream);
}

void png_begin(png_writer *png, FILE *stream, int64_t width, int64_t height) {
    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    png->stream = stream;
    png->width = width;
    png->adler_a = 1;
    png->adler_b = 0;
    png->zlib_header_sent = 0;
    png->used = 0;
    fwrite(signature, 1, sizeof signature, stream);
    uint8_t ihdr[13];
    put32(ihdr, (uint32_t)width);
    put32(ihdr + 4, (uint32_t)height);
    ihdr[8] = 8;  /* bit depth */
    ihdr[9] = 2;  /* colour type: RGB */
    ihdr[10] = 0; /* deflate */
    ihdr[11] = 0; /* adaptive filtering (every row uses filter 0, none) */
    ihdr[12] = 0; /* no interlace */
    chunk(stream, "IHDR", ihdr, sizeof ihdr, NULL, 0);
}

/* Emits the buffered bytes as one stored block in one IDAT chunk (plus the zlib header / trailer). */
static void flush_block(png_writer *png, int final) {
    uint8_t head[2 + 5];
    size_t head_len = 0;
    if (!png->zlib_header_sent) {
        head[head_len++] = 0x78; /* deflate, 32K window */
        head[head_len++] = 0x01; /* no dictionary, fastest; (0x78 * 256 + 0x01) % 31 == 0 */
        png->zlib_header_sent = 1;
    }
    uint16_t len = (uint16_t)png->used, nlen = (uint16_t)~len;
    head[head_len++] = final ? 1 : 0; /* BFINAL, BTYPE 00 (stored) */
    head[head_len++] = (uint8_t)len;
    head[head_len++] = (uint8_t)(len >> 8);
    head[head_len++] = (uint8_t)nlen;
    head[head_len++] = (uint8_t)(nlen >> 8);
    size_t data_len = png->used;
    if (final) { /* the Adler-32 of all uncompressed data ends the zlib stream */
        put32(png->block + png->used, png->adler_b << 16 | png->adler_a);
        data_len += 4;
    }
    chunk(png->stream, "IDAT", head, head_len, png->block, data_len);
    png->used = 0;
}

static void feed(png_writer *png, const uint8_t *data, size_t len) {
    while (len) {
        size_t take = PNG_BLOCK_MAX - png->used < len ? PNG_BLOCK_MAX - png->used : len;
        memcpy(png->block + png->used, data, take);
        for (size_t i = 0; i < take; i++) {
            png->adler_a = (png->adler_a + data[i]) % 65521;
            png->adler_b = (png->adler_b + png->adler_a) % 65521;
        }
        png->used += take;
        data += take;
        len -= take;
        if (png->used == PNG_BLOCK_MAX) flush_block(png, 0);
    }
}

void png_row(png_writer *png, const uint8_t *rgb) {
    static const uint8_t filter_none = 0;
    feed(png, &filter_none, 1);
    feed(png, rgb, (size_t)(3 * png->width));
}

void png_end(png_writer *png) {
    flush_block(png, 1);
    chunk(png->stream, "IEND", NULL, 0, NULL, 0);
}
