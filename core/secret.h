/* secret: reading API keys from files that only their owner can read, and wiping them. */
#ifndef UP_SECRET_H
#define UP_SECRET_H

#include <stddef.h>

/* Reads the key in path (surrounding white space trimmed) into a new string (*out, free
 * with up_secret_free). Refuses with -EPERM a file that group or others can read or write,
 * -EINVAL an empty or multi-line one. why (optional) gets a one-line reason. */
int up_secret_read_file(const char *path, char **out, char *why, size_t whylen);

/* Overwrites and frees a key. */
void up_secret_free(char *key);

#endif
