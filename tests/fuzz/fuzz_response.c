/* libFuzzer: every parser of a server's answer (Upload, File, Part, error envelope). */
#include "api.h"
#include "errors.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	struct up_error err;
	up_error_from_response(&err, 400, s, size, "sk-secret");
	json_object *o = json_tokener_parse(s);
	struct up_upload u;
	struct up_file f;
	struct up_part p;
	if (up_upload_from_json(o, &u, &err) == 0)
		up_upload_clear(&u);
	if (up_file_from_json(o, &f, &err) == 0)
		up_file_clear(&f);
	up_part_from_json(o, &p, &err);
	json_object_put(o);
	free(s);
	return 0;
}
