/* sample.c: splitmix64 seeded by sha256, and stratified sampling (see sample.h). */
#include "sample.h"

#include "sha256.h"

void sample_seed(sample_rng *rng, const char *seed, size_t len) {
    uint8_t digest[SHA256_DIGEST_SIZE];
    sha256(seed, len, digest);
    uint64_t state = 0;
    for (int i = 0; i < 8; i++) state = state << 8 | digest[i];
    rng->state = state;
}

uint64_t sample_next(sample_rng *rng) {
    uint64_t z = (rng->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t sample_below(sample_rng *rng, uint64_t n) {
    uint64_t limit = UINT64_MAX - UINT64_MAX % n; /* accept only [0, limit): a multiple of n */
    uint64_t x;
    do x = sample_next(rng);
    while (x >= limit);
    return x % n;
}

uint64_t sample_stratum(sample_rng *rng, uint64_t span, uint64_t k, uint64_t j) {
    uint64_t size = span / k, larger = span % k;
    uint64_t start = j * size + (j < larger ? j : larger);
    return start + sample_below(rng, size + (j < larger ? 1 : 0));
}
