/* purpose: the purposes a file can be uploaded with, and which of them OpenAI serves the
 * content of — the one list of the project (the mount's option and xattr, the server). */
#ifndef UP_PURPOSE_H
#define UP_PURPOSE_H

#include <stdbool.h>
#include <stddef.h>

bool up_purpose_valid(const char *p);
/* Content of these can be downloaded from OpenAI (batch, vision). */
bool up_purpose_downloadable(const char *p);
/* The purposes as text for messages, separated by ", " and quoted with ' if asked:
 * "assistants, batch, ..." or "'assistants', 'batch', ...". Returns out. */
#define UP_PURPOSE_NAMES_MAX 96
char *up_purpose_names(char out[UP_PURPOSE_NAMES_MAX], bool quoted);

#endif
