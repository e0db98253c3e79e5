/*
 * duration.h - durations as people write them in flags, config files and
 * the CLI: whole numbers with a unit, `90s`, `15m`, `12h`, `7d`, `2w`, and
 * sums of those such as `1h30m`.
 *
 * The one parser of durations in the tree (--session-idle, --session-max,
 * `lxcm token create --expiry`), so everything accepts the same spellings
 * and refuses the same mistakes: no sign, no space, no fraction, no unit
 * missing, no capital unit, nothing past DURATION_MAX_S (about 100 years),
 * which also keeps the seconds far from overflow when added to a time.
 */
#ifndef LXCM_DURATION_H
#define LXCM_DURATION_H

#include <stdint.h>

#include "common/slice.h"

#define DURATION_MAX_S (100LL * 366 * 86400)
#define DURATION_TEXT_MAX 24 /* "3153600000s" and a NUL, with room */

/* Seconds in text ("90s", "15m", "12h", "7d", "1h30m"; "0s" is 0): 0, or -EINVAL (out untouched). */
int duration_parse(struct slice text, int64_t *out_s);
/* Writes s in the largest unit that divides it ("12h", "90s"); 0 or -ENOSPC. */
int duration_format(int64_t s, char *out, size_t outlen);

#endif
