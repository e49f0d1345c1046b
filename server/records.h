/* records: the store's objects as JSON — the API's shapes of uploads, parts and files, their
 * records under --data (uploads/<id>.json, files/<id>.json; written tmp + rename), and
 * loading them back at start (a torn record is skipped with a log line). */
#ifndef SRV_RECORDS_H
#define SRV_RECORDS_H

#include "store_impl.h"

#include <json-c/json.h>
#include <stdbool.h>

/* The API's objects; record: with the fields only the server's own records keep. */
json_object *srv_file_json(const struct file *f, bool record);
json_object *srv_upload_json(const struct upload *u, bool record);
json_object *srv_part_json(const struct part *p, const char *upload_id);

/* Writes the record (lock held); 0 or a negative errno. */
int srv_persist_upload(struct srv_store *st, const struct upload *u);
int srv_persist_file(struct srv_store *st, const struct file *f);

/* Adds a part to the upload's array (kept in sequence order by the caller). */
int srv_part_push(struct upload *u, const struct part *p);

void srv_upload_free(struct upload *u);
void srv_file_free(struct file *f);

/* At open: every record into st->files or st->uploads, sorted; a pending upload's parts
 * from its directory (unfinished ones removed). */
int srv_load_files(struct srv_store *st);
int srv_load_uploads(struct srv_store *st);
int srv_load_parts(struct srv_store *st, struct upload *u);

#endif
