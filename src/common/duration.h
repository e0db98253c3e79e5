/*
 * duration.h - durations as people write them in flags and config files:
 * a whole number and one unit, `90s`, `15m`, `12h`, `7d`.
 *
 * The one parser of durations in the tree (--session-idle, --session-max,
 * and whatever flag takes a duration next), so every flag accepts the same
 * spellings and refuses the same mistakes: no sign, no space, no fraction,
 * no unit missing or repeated, nothing past DURATION_MAX_S (100 years),
 * which also keeps the seconds far from overflow when added to a time.
 */
#ifndef LXCM_DURATION_H
#define LXCM_DURATION_H

#include <stdint.h>

#include "common/slice.h"

#define DURATION_MAX_S (100LL * 365 * 86400)
#define DURATION_TEXT_MAX 24 /* "3153600000s" and a NUL, with room */

/* Seconds in text ("90s", "15m", "12h", "7d"): 0 with *out_s set, or -EINVAL (out untouched). */
int duration_parse(struct slice text, int64_t *out_s);
/* Writes s in the largest unit that divides it ("12h", "90s"); 0 or -ENOSPC. */
int duration_format(int64_t s, char *out, size_t outlen);

#endif
