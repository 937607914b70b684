/* claim.h: checking a provider's claimed result for one nonce range (apps/tutorialapp check_claim).
 *
 * The claim must describe the assigned range; a claimed nonce must lie in it, its hash must match and it
 * must meet the difficulty; then nonces below the claim (or the whole range if no nonce was claimed) are
 * spot-checked: min(span, 4096, max(64, span / 16)) of them, one from each stratum of the span, drawn
 * from a generator seeded by the subtask id (so a re-check checks the same nonces).
 */
#ifndef WASM_APPS_TUTORIAL_CLAIM_H
#define WASM_APPS_TUTORIAL_CLAIM_H

#include <stdint.h>

#include "json.h"
#include "plan.h"
#include "sbuf.h"

#define MAX_SPOT_CHECKS 4096

/* Returns 1 when the claim passes (storing whether it holds a nonce, and which), else 0 with `why`. */
int claim_check(const pow_plan *plan, size_t index, const json_value *claim, const char *seed, int *has_nonce,
                int64_t *nonce, sbuf *why);

#endif
