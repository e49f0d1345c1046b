/* api: the Uploads and Files calls — JSON bodies out, typed objects back. A server's answer
 * is checked field by field before it is trusted: ids must be short and path-safe, numbers
 * numbers; anything else is -EPROTO with a message saying what was wrong. */
#ifndef UP_API_H
#define UP_API_H

#include "uploadfs.h"

#include <json-c/json.h>

/* An id a server sent is safe to put in a URL path: [A-Za-z0-9_-], 1..UP_ID_MAX-1. */
bool up_id_valid(const char *id);

int up_upload_from_json(json_object *o, struct up_upload *out, struct up_error *err);
int up_file_from_json(json_object *o, struct up_file *out, struct up_error *err);
int up_part_from_json(json_object *o, struct up_part *out, struct up_error *err);

#endif
