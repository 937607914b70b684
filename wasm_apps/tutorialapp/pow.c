/* pow.c: the proof-of-work kernel (see pow.h). Also built natively by bench/pow_native_vs_wasm.py. */
#include "pow.h"

#include <string.h>

void pow_prepare(pow_text *text, const char *data, size_t len) {
    sha256_init(&text->prefix);
    sha256_update(&text->prefix, data, len);
}

/* Writes the decimal digits of n (as Python's str(int)) into buf; returns their count. */
static size_t decimal(int64_t n, char buf[24]) {
    char tmp[24];
    size_t len = 0, out = 0;
    uint64_t magnitude = n < 0 ? 0 - (uint64_t)n : (uint64_t)n;
    do {
        tmp[len++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (n < 0) buf[out++] = '-';
    while (len) buf[out++] = tmp[--len];
    return out;
}

void pow_digest(const pow_text *text, int64_t nonce, uint8_t digest[SHA256_DIGEST_SIZE]) {
    char digits[24];
    size_t len = decimal(nonce, digits);
    sha256_ctx ctx = text->prefix;
    sha256_update(&ctx, digits, len);
    sha256_final(&ctx, digest);
}

int pow_leading_zero_bits(const uint8_t digest[SHA256_DIGEST_SIZE]) {
    int bits = 0;
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++) {
        if (digest[i] == 0) {
            bits += 8;
            continue;
        }
        for (unsigned mask = 0x80; !(digest[i] & mask); mask >>= 1) bits++;
        break;
    }
    return bits;
}

int pow_meets(const pow_text *text, int64_t nonce, int64_t difficulty) {
    uint8_t digest[SHA256_DIGEST_SIZE];
    pow_digest(text, nonce, digest);
    return pow_leading_zero_bits(digest) >= difficulty;
}

int pow_search(const pow_text *text, int64_t difficulty, int64_t start, int64_t end, int64_t *found) {
    for (int64_t nonce = start; nonce < end; nonce++) {
        if (pow_meets(text, nonce, difficulty)) {
            *found = nonce;
            return 1;
        }
    }
    return 0;
}
