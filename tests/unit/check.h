/* check: a minimal TAP harness for the C unit tests (one "ok N - name" line per case). */
#ifndef UP_CHECK_H
#define UP_CHECK_H

#include <stdio.h>
#include <stdlib.h>

struct check_case {
	const char *name;
	void (*fn)(int *failed);
};

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			printf("#   %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);        \
			*failed = 1;                                                               \
			return;                                                                    \
		}                                                                                  \
	} while (0)

#define CASE(name) static void name(int *failed)

static inline int check_run(const struct check_case *cases, size_t n)
{
	int bad = 0;
	printf("1..%zu\n", n);
	for (size_t i = 0; i < n; i++) {
		int failed = 0;
		cases[i].fn(&failed);
		printf("%s %zu - %s\n", failed ? "not ok" : "ok", i + 1, cases[i].name);
		fflush(stdout);
		bad |= failed;
	}
	return bad ? 1 : 0;
}

#define CHECK_MAIN(...)                                                                            \
	int main(void)                                                                             \
	{                                                                                          \
		static const struct check_case cases[] = {__VA_ARGS__};                            \
		return check_run(cases, sizeof cases / sizeof cases[0]);                           \
	}

#define T(fn)                                                                                      \
	{                                                                                          \
#fn, fn                                                                            \
	}

#endif
