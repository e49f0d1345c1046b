/* parse: strict parsing of the numbers and sizes a user types (options, server flags).
 * Sizes are a plain byte count or a count with a K, M or G suffix (powers of 1024). */
#ifndef UP_PARSE_H
#define UP_PARSE_H

#include <stdint.h>

/* "123", "8M", "1g": returns 0 and *out, or -EINVAL (garbage, empty, negative) / -ERANGE. */
int up_parse_size(const char *s, uint64_t *out);

/* A decimal unsigned integer with no sign, no suffix and no trailing characters. */
int up_parse_u64(const char *s, uint64_t *out);

/* A finite decimal number, e.g. "0.25". */
int up_parse_double(const char *s, double *out);

#endif
