/*
 * metrics_text.h - a strict, bounded parser of the Prometheus text
 * exposition format 0.0.4, for the metrics clusters send in heartbeats
 * (server_metrics: what each LXD member answers at GET /1.0/metrics).
 *
 * The text is peer input: every dimension has a named cap, and anything
 * the format does not allow is an error for the whole text (the caller
 * counts and skips it) rather than a guess. Accepted: comment lines
 * (# HELP, # TYPE, anything after '#'), empty lines, and sample lines
 *
 *   name{label="value",...} value [timestamp_ms]
 *
 * with names [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*
 * (not "__name__", no name twice), values with the escapes \\ \" \n only,
 * an optional trailing comma in the label set, blanks (space or tab)
 * between the parts, a float value (decimal or exponent; NaN, +Inf, -Inf,
 * Inf) and an optional integer timestamp. Lines end with "\n"; the last
 * one may lack it. No NUL, no CR.
 */
#ifndef LXCM_METRICS_TEXT_H
#define LXCM_METRICS_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "common/slice.h"

#define METRICS_TEXT_MAX_LINE 65536	 /* bytes of one line */
#define METRICS_TEXT_MAX_LABELS 32	 /* labels of one sample */
#define METRICS_TEXT_MAX_NAME 256	 /* metric and label names */
#define METRICS_TEXT_MAX_SAMPLES 200000 /* samples of one text */

struct metrics_text_label {
	struct slice name;
	struct slice value; /* unescaped; valid during the callback only */
};

struct metrics_text_sample {
	struct slice name;
	struct metrics_text_label labels[METRICS_TEXT_MAX_LABELS];
	size_t nlabels;
	double value;
	int has_timestamp;
	int64_t timestamp_ms;
};

/* Called for each sample in order; a non-zero return stops the parse with that value. */
typedef int (*metrics_text_fn)(const struct metrics_text_sample *s, void *arg);

/*
 * Parses text (len bytes, no NUL needed). Returns the number of samples
 * (fn may be NULL: a validation pass), or -EINVAL for a malformed line,
 * -E2BIG past a cap, -ENOMEM, or fn's non-zero return. *err_line (may be
 * NULL) gets the 1-based line of the error.
 */
long metrics_text_parse(const char *text, size_t len, metrics_text_fn fn, void *arg,
			size_t *err_line);

#endif
