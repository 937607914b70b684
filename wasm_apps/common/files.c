/* files.c: whole-file reads and crash-safe writes (see files.h). */
#include "files.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sbuf.h"
#include "util.h"

int stream_read_all(FILE *stream, size_t max, char **data, size_t *len) {
    sbuf buf;
    sbuf_init(&buf);
    char chunk[16384];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, stream)) > 0) {
        if (buf.len + got > max) {
            sbuf_free(&buf);
            errno = EFBIG;
            return -1;
        }
        sbuf_append(&buf, chunk, got);
    }
    if (ferror(stream)) {
        int saved = errno ? errno : EIO;
        sbuf_free(&buf);
        errno = saved;
        return -1;
    }
    *len = buf.len;
    *data = sbuf_take(&buf);
    sbuf_free(&buf);
    return 0;
}

int file_read_all(const char *path, size_t max, char **data, size_t *len) {
    FILE *stream = fopen(path, "rb");
    if (!stream) return -1;
    int rc = stream_read_all(stream, max, data, len);
    int saved = errno;
    fclose(stream);
    errno = saved;
    return rc;
}

static char *tmp_path(const char *path) {
    sbuf tmp;
    sbuf_init(&tmp);
    sbuf_printf(&tmp, "%s.tmp", path);
    return sbuf_take(&tmp);
}

FILE *file_begin(const char *path) {
    char *tmp = tmp_path(path);
    FILE *stream = fopen(tmp, "wb");
    free(tmp);
    return stream;
}

int file_commit(FILE *stream, const char *path) {
    char *tmp = tmp_path(path);
    int failed = ferror(stream);
    if (fclose(stream) != 0) failed = 1;
    int rc = -1;
    if (failed) {
        if (!errno) errno = EIO;
        unlink(tmp);
    } else if (rename(tmp, path) == 0) {
        rc = 0;
    }
    free(tmp);
    return rc;
}

void file_abandon(FILE *stream, const char *path) {
    int saved = errno;
    char *tmp = tmp_path(path);
    fclose(stream);
    unlink(tmp);
    free(tmp);
    errno = saved;
}

int file_write_atomic(const char *path, const void *data, size_t len) {
    FILE *stream = file_begin(path);
    if (!stream) return -1;
    fwrite(data, 1, len, stream);
    return file_commit(stream, path);
}

int file_copy(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb");
    if (!in) return -1;
    FILE *out = file_begin(dst);
    if (!out) {
        int saved = errno;
        fclose(in);
        errno = saved;
        return -1;
    }
    char chunk[16384];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, in)) > 0) fwrite(chunk, 1, got, out);
    int read_failed = ferror(in);
    fclose(in);
    if (read_failed) {
        errno = EIO;
        file_abandon(out, dst);
        return -1;
    }
    return file_commit(out, dst);
}

int file_remove(const char *path) {
    if (unlink(path) == 0 || errno == ENOENT) return 0;
    return -1;
}

int dir_make(const char *path) {
    if (mkdir(path, 0755) == 0 || errno == EEXIST) return 0;
    return -1;
}

int file_size(const char *path, long long *size) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    if (!S_ISREG(st.st_mode)) {
        errno = EINVAL;
        return -1;
    }
    *size = (long long)st.st_size;
    return 0;
}
