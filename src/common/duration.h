/*
 * duration.h - durations as people write them in flags and commands:
 * "90s", "15m", "12h", "7d", "2w", or several parts, largest first or not,
 * "1h30m". The one parser of the tree: the CLI's --expiry and the
 * server's --audit-retention, --session-idle and --session-max use it.
 */
#ifndef LXCM_DURATION_H
#define LXCM_DURATION_H

#include <stdint.h>

#include "common/slice.h"

/* Longest duration accepted: about 100 years. */
#define DURATION_MAX ((int64_t)100 * 366 * 86400)
#define DURATION_MAX_S DURATION_MAX
/* Room for any duration_format text ("3153600000s") and its NUL. */
#define DURATION_TEXT_MAX 24

/*
 * Parses one or more <digits><unit> parts, unit s, m, h, d or w, into
 * seconds. 0, or -EINVAL for anything else: an empty text, a number
 * without a unit, a sign, a space, a total of zero or above DURATION_MAX.
 */
int duration_parse(struct slice s, int64_t *secs);

/*
 * Writes secs the short way back, in the largest unit that divides it
 * ("90d", "15m", "2s"; "0s" for 0). out should hold 24 bytes; 0 or -ENOSPC.
 */
int duration_format(int64_t secs, char *out, size_t len);

#endif
