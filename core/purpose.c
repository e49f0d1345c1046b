#include "purpose.h"

#include <stdio.h>
#include <string.h>

static const char *const purposes[] = {"assistants", "batch",	  "fine-tune",
				       "vision",     "user_data", "evals"};
static const char *const downloadable[] = {"batch", "vision"};

static bool in(const char *p, const char *const *list, size_t n)
{
	for (size_t i = 0; p && i < n; i++)
		if (strcmp(p, list[i]) == 0)
			return true;
	return false;
}

bool up_purpose_valid(const char *p)
{
	return in(p, purposes, sizeof purposes / sizeof purposes[0]);
}

bool up_purpose_downloadable(const char *p)
{
	return in(p, downloadable, sizeof downloadable / sizeof downloadable[0]);
}

char *up_purpose_names(char out[UP_PURPOSE_NAMES_MAX], bool quoted)
{
	size_t off = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof purposes / sizeof purposes[0]; i++) {
		int n = snprintf(out + off, UP_PURPOSE_NAMES_MAX - off, "%s%s%s%s", i ? ", " : "",
				 quoted ? "'" : "", purposes[i], quoted ? "'" : "");
		if (n < 0 || (size_t)n >= UP_PURPOSE_NAMES_MAX - off)
			break; /* cannot happen: the list fits */
		off += (size_t)n;
	}
	return out;
}
