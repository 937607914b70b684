/* sha256.h: SHA-256 (FIPS 180-4), incremental. A context may be copied to resume from a common prefix. */
#ifndef WASM_APPS_SHA256_H
#define WASM_APPS_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32
#define SHA256_HEX_SIZE 65 /* 64 hex digits and a NUL */

typedef struct {
    uint32_t state[8];
    uint64_t length; /* bytes absorbed so far */
    uint8_t block[64];
    size_t used; /* bytes waiting in `block` */
} sha256_ctx;

void sha256_init(sha256_ctx *ctx);
/* The compression function on one 64-byte block, for callers that pad messages themselves; the _words
 * form takes the block as 16 big-endian words already. */
void sha256_compress(uint32_t state[8], const uint8_t block[64]);
void sha256_compress_words(uint32_t state[8], const uint32_t words[16]);
void sha256_update(sha256_ctx *ctx, const void *data, size_t len);
void sha256_final(sha256_ctx *ctx, uint8_t digest[SHA256_DIGEST_SIZE]);
/* One-shot digest of `len` bytes. */
void sha256(const void *data, size_t len, uint8_t digest[SHA256_DIGEST_SIZE]);
/* Lower-case hex of a digest. */
void sha256_hex(const uint8_t digest[SHA256_DIGEST_SIZE], char hex[SHA256_HEX_SIZE]);

#endif
