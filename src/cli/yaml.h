/*
 * yaml.h - a small YAML emitter for what the management API sends: a JSON
 * value (objects, arrays, strings, numbers, booleans, null) written as a
 * block-style YAML document that YAML 1.1 and 1.2 readers both read back as
 * the same value.
 *
 * Mappings keep the server's key order; a sequence inside a mapping is not
 * indented further (as lxc's YAML, go-yaml, prints it); empty containers
 * are written "{}" and "[]". A string is written plain only when it cannot
 * be read as anything else (a number, a boolean, null, a timestamp, an
 * indicator); a multi-line string of printable text (a PEM certificate) as
 * a literal block ("|", "|-"), as go-yaml does; any other string
 * double-quoted, with every control character escaped, so the output is
 * safe on a terminal.
 */
#ifndef LXCM_CLI_YAML_H
#define LXCM_CLI_YAML_H

#include <stdio.h>

#include <jansson.h>

/* Writes v and a final newline to out. 0, or -EIO when out failed. */
int yaml_emit(FILE *out, json_t *v);

#endif
