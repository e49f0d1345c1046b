/* Sizes, counts and fractions as a user types them. */
#include "check.h"
#include "parse.h"
#include "purpose.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

CASE(sizes_with_suffixes)
{
	uint64_t v;
	CHECK(up_parse_size("0", &v) == 0 && v == 0);
	CHECK(up_parse_size("123", &v) == 0 && v == 123);
	CHECK(up_parse_size("1K", &v) == 0 && v == 1024);
	CHECK(up_parse_size("8M", &v) == 0 && v == 8u << 20);
	CHECK(up_parse_size("8m", &v) == 0 && v == 8u << 20);
	CHECK(up_parse_size("64MiB", &v) == 0 && v == 64u << 20);
	CHECK(up_parse_size("2GB", &v) == 0 && v == 2ull << 30);
	CHECK(up_parse_size("8G", &v) == 0 && v == 8ull << 30);
}

CASE(sizes_rejected)
{
	uint64_t v = 7;
	CHECK(up_parse_size("", &v) == -EINVAL);
	CHECK(up_parse_size(NULL, &v) == -EINVAL);
	CHECK(up_parse_size("-1", &v) == -EINVAL);
	CHECK(up_parse_size(" 1", &v) == -EINVAL);
	CHECK(up_parse_size("1T", &v) == -EINVAL);
	CHECK(up_parse_size("1MX", &v) == -EINVAL);
	CHECK(up_parse_size("M", &v) == -EINVAL);
	CHECK(up_parse_size("1.5M", &v) == -EINVAL);
	CHECK(up_parse_size("99999999999999999999", &v) == -ERANGE);
	CHECK(up_parse_size("17179869184G", &v) == -ERANGE);
	CHECK(v == 7);
}

CASE(counts_and_fractions)
{
	uint64_t v;
	double d;
	CHECK(up_parse_u64("42", &v) == 0 && v == 42);
	CHECK(up_parse_u64("4K", &v) == -EINVAL);
	CHECK(up_parse_u64("+4", &v) == -EINVAL);
	CHECK(up_parse_double("0.25", &d) == 0 && d == 0.25);
	CHECK(up_parse_double("1", &d) == 0 && d == 1.0);
	CHECK(up_parse_double("nan", &d) == -EINVAL);
	CHECK(up_parse_double("inf", &d) == -EINVAL);
	CHECK(up_parse_double("0.5x", &d) == -EINVAL);
	CHECK(up_parse_double("", &d) == -EINVAL);
}

CASE(one_purpose_list)
{
	char names[UP_PURPOSE_NAMES_MAX];
	CHECK(strcmp(up_purpose_names(names, false),
		     "assistants, batch, fine-tune, vision, user_data, evals") == 0);
	CHECK(strcmp(up_purpose_names(names, true),
		     "'assistants', 'batch', 'fine-tune', 'vision', 'user_data', 'evals'") == 0);
	CHECK(up_purpose_valid("fine-tune") && up_purpose_valid("evals"));
	CHECK(!up_purpose_valid("fine_tune") && !up_purpose_valid("") && !up_purpose_valid(NULL));
	CHECK(up_purpose_downloadable("batch") && up_purpose_downloadable("vision"));
	CHECK(!up_purpose_downloadable("fine-tune") && !up_purpose_downloadable("user_data"));
}

CHECK_MAIN(T(sizes_with_suffixes), T(sizes_rejected), T(counts_and_fractions),
	   T(one_purpose_list))
