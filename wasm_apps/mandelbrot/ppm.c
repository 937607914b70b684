/* ppm.c: binary PPM tiles (see ppm.h). */
#include "ppm.h"

#include <errno.h>
#include <string.h>

#include "files.h"

void ppm_header(sbuf *out, int64_t width, int64_t height) {
    sbuf_printf(out, "P6\n%lld %lld\n255\n", (long long)width, (long long)height);
}

FILE *ppm_open(const char *path, int64_t width, int64_t height, long *header_len, sbuf *why) {
    long long size;
    if (file_size(path, &size) != 0) {
        sbuf_printf(why, "unreadable %s: %s", TILE_FILE, strerror(errno));
        return NULL;
    }
    sbuf header;
    sbuf_init(&header);
    ppm_header(&header, width, height);
    long long expected = (long long)header.len + 3LL * width * height;
    FILE *stream = NULL;
    char found[64] = {0};
    if (size != expected) {
        sbuf_printf(why, "%s has %lld bytes, a %lldx%lld tile has %lld", TILE_FILE, size, (long long)width,
                    (long long)height, expected);
    } else if (!(stream = fopen(path, "rb"))) {
        sbuf_printf(why, "unreadable %s: %s", TILE_FILE, strerror(errno));
    } else if (fread(found, 1, header.len, stream) != header.len || memcmp(found, header.data, header.len) != 0) {
        sbuf_printf(why, "%s header is not that of a %lldx%lld binary PPM", TILE_FILE, (long long)width,
                    (long long)height);
        fclose(stream);
        stream = NULL;
    }
    *header_len = (long)header.len;
    sbuf_free(&header);
    return stream;
}

int ppm_read_row(FILE *stream, long header_len, int64_t width, int64_t y, uint8_t *rgb) {
    size_t row = (size_t)(3 * width);
    if (fseek(stream, header_len + (long)(y * (int64_t)row), SEEK_SET) != 0) return -1;
    return fread(rgb, 1, row, stream) == row ? 0 : -1;
}
